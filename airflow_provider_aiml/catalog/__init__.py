"""The API's model catalog, read the way the checks need it.

``entry`` reads a catalog item (capabilities, limits, pricing), ``schema`` a model's OpenAPI document (the
parameters it takes and their ranges), ``reasoning`` turns the one reasoning switch into each family's wire
keys, ``profile`` checks a request against all of them, and ``cache`` keeps what was read (in the process and on
disk, revalidated by ETag). Nothing here does network I/O: the hook fetches, these modules decide.
"""
