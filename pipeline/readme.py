"""Copy the report stage's at-a-glance block (results/at_a_glance.md) into README.md.

    python -m pipeline.readme      # after dvc repro; tests check the two agree

The block sits between ``<!-- at-a-glance: start -->`` and ``<!-- at-a-glance: end -->``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.io import write_text

START, END = "<!-- at-a-glance: start -->", "<!-- at-a-glance: end -->"


def with_block(readme: str, block: str) -> str:
    """``readme`` with the text between the markers replaced by ``block``."""
    if START not in readme or END not in readme:
        raise ValueError(f"README has no {START} ... {END} markers")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block.strip()}\n{END}{tail}"


def main(readme: str = "README.md", block: str = "results/at_a_glance.md") -> int:
    try:
        text = with_block(Path(readme).read_text(), Path(block).read_text())
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    write_text(readme, text)
    print(f"{readme}: at-a-glance block updated from {block}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
