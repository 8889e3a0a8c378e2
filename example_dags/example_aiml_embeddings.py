"""Embed product descriptions, then find the two most alike: vectors to XCom, similarity computed downstream.

``@task.aiml_embed`` turns the texts a function returns into vectors, batched into few requests sent
concurrently. For thousands of texts or whole folders, give ``output_path`` and the vectors go to a JSON Lines
file instead of XCom (see the embeddings guide). The texts here are files from ``files/texts``; a glob or
``s3://bucket/descriptions/*.txt`` works the same.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, task

TEXTS = Path(__file__).parent / "files" / "texts"

with DAG(
    dag_id="example_aiml_embeddings",
    description="Embed product descriptions and report the most similar pair.",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["aiml", "example"],
) as dag:
    # --8<-- [start:embed]
    @task
    def load_descriptions() -> dict[str, str]:
        """Stand-in for reading the catalog: product name -> description."""
        return {path.stem: path.read_text().strip() for path in sorted(TEXTS.glob("*.txt"))}

    @task.aiml_embed(dimensions=256)
    def embed_descriptions(descriptions: dict[str, str]) -> list[str]:
        """The texts to embed; the task returns one vector per text, in this order."""
        return list(descriptions.values())

    @task
    def most_similar(descriptions: dict[str, str], vectors: list[list[float]]) -> dict[str, Any]:
        """The pair of products whose descriptions are closest (cosine similarity)."""
        names = list(descriptions)
        best = max(
            ((cosine(vectors[i], vectors[j]), names[i], names[j]) for i in range(len(names)) for j in range(i)),
        )
        return {"pair": [best[2], best[1]], "similarity": round(best[0], 4)}

    descriptions = load_descriptions()
    most_similar(descriptions, embed_descriptions(descriptions))
    # --8<-- [end:embed]


def cosine(left: list[float], right: list[float]) -> float:
    """Cosine similarity of two vectors."""
    dot = sum(a * b for a, b in zip(left, right, strict=True))
    return dot / (math.sqrt(sum(a * a for a in left)) * math.sqrt(sum(b * b for b in right)))
