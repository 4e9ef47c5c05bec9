"""Shared by the benchmarks: a Markdown table from rows, and writing results files."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def markdown_table(rows: list[dict]) -> str:
    """Rows of dicts as a Markdown table (columns in first-seen order; missing cells empty)."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(row.get(k, "")) for k in keys) + " |" for row in rows]
    return "\n".join(lines)


def save_results(name: str, markdown: str, data: dict) -> None:
    """Print the Markdown and write results/NAME.md and results/NAME.json."""
    print(markdown)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{name}.md").write_text(markdown)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
