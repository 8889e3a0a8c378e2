"""Files attached to a prompt: where they are read from, how images are fitted and how PDFs become pages.

Imported when a task runs, never by a DAG file: Pillow and PDFium load only then.
"""
