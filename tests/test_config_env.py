"""bot.config as a container runs it: an unreadable file says what to run; the Celery stack's environment wins."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from bot.config import ConfigError, load_config

TOKEN = "MTIzNDU2Nzg5.GabcDE.secret-part-of-the-token"
NOBODY = 65534


def load(path: Path) -> str:
    try:
        load_config(path, {"DISCORD_TOKEN": TOKEN})
    except ConfigError as error:
        return str(error)
    return "loaded"


def load_as_another_user(path: Path) -> tuple[str, int]:
    """load(path) by a user other than the file's owner, and that user's id. As root (who reads
    anything) it runs in a forked child that has dropped to `nobody`."""
    if os.geteuid() != 0:
        return load(path), os.getuid()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: modules are already imported, so only the configuration file is opened
        try:
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            os.write(write, load(path).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        message = pipe.read().decode()
    os.waitpid(pid, 0)
    return message, NOBODY


def test_an_unreadable_configuration_says_which_chmod_to_run() -> None:
    with tempfile.TemporaryDirectory() as folder:  # not pytest's tmp_path: its parents are private to root
        os.chmod(folder, 0o755)
        check_unreadable(Path(folder) / "config.toml")


def check_unreadable(path: Path) -> None:
    path.write_text('prefix = "?"\n', encoding="utf-8")
    path.chmod(0o600 if os.geteuid() == 0 else 0o000)  # root's 0600 file, as `cp` under umask 077 makes it
    message, uid = load_as_another_user(path)
    assert message == (f"{path}: permission denied — the bot runs as user id {uid}, which may not read it; make "
                       "it readable: `chmod 644 config.toml` (on the host, next to compose.yaml, when it runs in "
                       "Docker)")
    path.chmod(0o644)
    assert load_as_another_user(path)[0] == "loaded"


def test_the_celery_stack_sets_backend_and_workers_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("workers = 1\n[jobs]\nbackend = \"inprocess\"\n", encoding="utf-8")
    plain = load_config(path, {"DISCORD_TOKEN": TOKEN})
    assert (plain.jobs.backend, plain.workers) == ("inprocess", 1)
    stack = load_config(path, {"DISCORD_TOKEN": TOKEN, "STYLIZE_JOBS_BACKEND": "celery", "STYLIZE_WORKERS": "3"})
    assert (stack.jobs.backend, stack.workers) == ("celery", 3)


@pytest.mark.parametrize(("env", "message"), [
    ({"STYLIZE_WORKERS": "0"}, "STYLIZE_WORKERS must be a whole number of at least 1, not '0'"),
    ({"STYLIZE_WORKERS": "two"}, "STYLIZE_WORKERS must be a whole number of at least 1, not 'two'"),
    ({"STYLIZE_JOBS_BACKEND": "rq"}, "jobs.backend must be one of inprocess, celery, not 'rq'"),
])
def test_a_wrong_stack_setting_is_refused_by_name(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, {"DISCORD_TOKEN": TOKEN, **env})
