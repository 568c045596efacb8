"""The bot started where Discord cannot be reached: one line saying what failed and what to check."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import discord
import pytest

from bot.__main__ import main


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("base", [f"http://127.0.0.1:{closed_port()}/api/v10",  # connection refused
                                  "http://discord.invalid/api/v10"],  # no such host (DNS)
                         ids=["connection-refused", "no-such-host"])  # a port in the id differs per xdist worker
def test_no_route_to_discord_is_one_line_not_a_traceback(base: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         caplog: pytest.LogCaptureFixture,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(discord.http.Route, "BASE", base)
    monkeypatch.setenv("DISCORD_TOKEN", "MTIz.abc.def")
    monkeypatch.setenv("STYLIZE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("STYLIZE_HEALTH_FILE", str(tmp_path / "health.json"))
    monkeypatch.setattr("discord.utils.setup_logging", lambda **options: None)  # leave the root logger alone
    config = tmp_path / "config.toml"
    config.write_text("", encoding="utf-8")
    with caplog.at_level(logging.INFO):
        assert main(["--config", str(config)]) == 1
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None, [r.getMessage() for r in errors]
    line = errors[0].getMessage()
    assert line.startswith("cannot reach Discord (") and "\n" not in line
    assert "DNS, firewall and proxy" in line and "discord.com" in line
    assert "Traceback" not in capsys.readouterr().err
