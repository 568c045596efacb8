"""The Dockerfile, .dockerignore and compose.yaml agree with the project and with each other.

No Docker engine is needed: these read the files. (.ci/lint runs hadolint and the Compose schema.)
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from bot import check, health

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = (ROOT / "Dockerfile").read_text(encoding="utf-8")
IGNORE = [line.strip() for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
          if line.strip() and not line.startswith("#")]
COMPOSE = (ROOT / "compose.yaml").read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_package_of_the_wheel_reaches_the_build() -> None:
    packages = PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    for package in packages:
        assert f"!{package}/" in IGNORE, f"{package}/ is not sent to the Docker build"
        assert re.search(rf"^COPY {package}/ {package}/$", DOCKERFILE, re.M), f"{package}/ is not copied"
    readme = PYPROJECT["project"]["readme"]
    assert f"!{readme}" in IGNORE and re.search(rf"^COPY {readme} ", DOCKERFILE, re.M)  # the build backend reads it


def test_the_build_context_is_an_allow_list_that_leaves_secrets_out() -> None:
    assert IGNORE[0] == "*"
    allowed = [line[1:].rstrip("/") for line in IGNORE if line.startswith("!")]
    for secret in ("config.toml", ".env", ".git", ".venv", "bench", "tests"):
        assert secret not in allowed


def test_dependencies_come_from_the_lock_without_dev_tools() -> None:
    syncs = re.findall(r"^RUN (uv sync .*)$", DOCKERFILE, re.M)
    assert syncs == ["uv sync --frozen --no-dev --no-install-project", "uv sync --frozen --no-dev --no-editable"]
    assert "COPY pyproject.toml uv.lock ./" in DOCKERFILE


def test_both_stages_share_one_pinned_base_image() -> None:
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.M)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base.group(1))
    assert re.findall(r"^FROM (\S+)", DOCKERFILE, re.M) == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]


def test_runtime_is_non_root_with_a_real_health_check() -> None:
    users = re.findall(r"^USER (\S+)$", DOCKERFILE, re.M)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert 'CMD ["python", "-m", "bot.health"]' in DOCKERFILE
    assert f"STYLIZE_HEALTH_FILE={health.DEFAULT_PATH}" in DOCKERFILE
    assert "- /tmp" in COMPOSE  # the health file's folder stays writable under read_only: true


def test_config_path_is_the_same_in_the_image_and_compose() -> None:
    cmd = re.search(r"^CMD (\[.*\])$", DOCKERFILE, re.M)
    assert cmd and cmd.group(1) == '["stylize-bot", "--config", "/config/config.toml"]'
    assert "target: /config/config.toml" in COMPOSE and "read_only: true" in COMPOSE


def test_the_check_finds_its_pictures_in_the_image() -> None:
    assert "COPY examples/ examples/" in DOCKERFILE and "WORKDIR /app" in DOCKERFILE
    assert "STYLIZE_EXAMPLES=/app/examples" in DOCKERFILE
    for name in (check.CONTENT_IMAGE, check.STYLE_IMAGE):
        assert (ROOT / "examples" / name).is_file()
    assert "!examples/" in IGNORE


def test_compose_has_a_gpu_service_and_a_cpu_one_behind_a_profile() -> None:
    assert re.search(r"^  bot:\n    <<: \*stylize\n    deploy:", COMPOSE, re.M)
    assert "driver: nvidia" in COMPOSE and "capabilities: [gpu]" in COMPOSE
    assert re.search(r"^  bot-cpu:\n    <<: \*stylize\n    profiles: \[cpu\]", COMPOSE, re.M)
    assert "restart: unless-stopped" in COMPOSE and "env_file: .env" in COMPOSE
