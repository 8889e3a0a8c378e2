"""Batch enrichment: many chat completions inside one task, with bounded concurrency, limits, budgets and resume."""
