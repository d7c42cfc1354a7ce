"""One-off experiments outside ``dvc repro``: ``python -m experiments.NAME`` from the repository root."""
