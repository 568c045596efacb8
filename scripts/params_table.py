"""Print docs/engine.md's hyperparameter table from the one declaration (engine.params.SPECS).

    uv run python scripts/params_table.py      # tests/test_readme.py checks docs/engine.md carries this output
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.params import SPECS, format_value  # noqa: E402


def table() -> str:
    lines = ["| name | default | range | meaning |", "|---|---|---|---|"]
    for spec in SPECS:
        names = " / ".join(f"`{n}`" for n in (spec.name, *spec.aliases))
        allowed = spec.describe_range().replace("|", r"\|")
        lines.append(f"| {names} | {format_value(spec.default)} | {allowed} | {spec.help} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
