"""README.md must tell the truth about the hyperparameters: its table is generated from the declaration."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from params_table import table  # noqa: E402


def test_readme_hyperparameter_table_matches_the_declaration() -> None:
    assert table() in (ROOT / "README.md").read_text(encoding="utf-8"), \
        "README.md is out of date: paste the output of `uv run python scripts/params_table.py`"
