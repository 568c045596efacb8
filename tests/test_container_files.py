"""The Dockerfile, .dockerignore and compose.yaml agree with the project and with each other.

No Docker engine is needed: these read the files. (.ci/lint runs hadolint and the Compose schema.)
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

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
    syncs = re.findall(r"^(?:RUN |\s+)(uv sync .*)$", DOCKERFILE, re.M)
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
    assert "chmod 644" in COMPOSE  # the bot's user (not the file's owner) must be able to read it


def test_the_check_finds_its_pictures_in_the_image() -> None:
    assert "COPY examples/ examples/" in DOCKERFILE and "WORKDIR /app" in DOCKERFILE
    assert "STYLIZE_EXAMPLES=/app/examples" in DOCKERFILE
    for name in (check.CONTENT_IMAGE, check.STYLE_IMAGE):
        assert (ROOT / "examples" / name).is_file()
    assert "!examples/" in IGNORE


# --- compose.yaml, read as Compose reads it -----------------------------------------------------------

SERVICES = yaml.safe_load(COMPOSE)["services"]  # `<<: *anchor` merge keys resolved, as Compose does
ENV_EXAMPLE = (ROOT / ".env.example").read_text(encoding="utf-8")
# What each COMPOSE_PROFILES choice that .env.example offers must start, and nothing else.
STACKS = {"gpu": {"bot"}, "cpu": {"bot-cpu"}, "celery": {"redis", "bot-celery", "worker"},
          "celery,flower": {"redis", "bot-celery", "worker", "flower"}}


def enabled(profiles: str) -> set[str]:
    """The services that plain `docker compose up`/`down`/`logs`/`restart`/`ps` act on with COMPOSE_PROFILES=
    `profiles`: Compose's documented rule — a service without `profiles` is always enabled, one with
    `profiles` only when one of them is active (docs.docker.com/reference/compose-file/profiles/)."""
    active = set(filter(None, profiles.split(",")))
    return {name for name, service in SERVICES.items()
            if not service.get("profiles") or active & set(service["profiles"])}


def test_the_choices_in_env_example_are_the_stacks_compose_knows() -> None:
    offered = re.findall(r"^#   (\S+) {2,}", ENV_EXAMPLE, re.M)
    assert offered == list(STACKS)
    default = re.search(r"^COMPOSE_PROFILES=(\S+)$", ENV_EXAMPLE, re.M)
    assert default and default.group(1) in STACKS


def test_every_service_is_in_a_profile_so_nothing_starts_unchosen() -> None:
    assert all(service.get("profiles") for service in SERVICES.values())
    assert enabled("") == set()  # no .env: `docker compose up` starts nothing rather than a guess


def test_plain_commands_act_on_exactly_the_chosen_stack() -> None:
    for choice, services in STACKS.items():
        assert enabled(choice) == services, choice
        bots = {name for name in services if "DISCORD_TOKEN" in SERVICES[name].get("environment", {})}
        assert len(bots) == 1, f"{choice}: {bots} (two bots on one token answer everything twice)"
        for name in services:  # Compose refuses to run a service whose dependency is not enabled
            assert set(SERVICES[name].get("depends_on", {})) <= services, (choice, name)


def gpus(service: dict) -> list[dict]:
    devices = service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    return [device for device in devices if device.get("driver") == "nvidia"]


def test_only_the_gpu_stacks_reserve_gpus_and_the_cpu_stack_runs_on_any_host() -> None:
    assert not any(gpus(SERVICES[name]) for name in STACKS["cpu"])
    assert [device["count"] for device in gpus(SERVICES["bot"])] == [1]
    assert all("gpu" in device["capabilities"] for name in SERVICES for device in gpus(SERVICES[name]))


def test_the_number_of_gpu_workers_is_one_setting_with_one_by_default() -> None:
    setting = "${STYLIZE_GPU_WORKERS:-1}"
    worker, bot = SERVICES["worker"], SERVICES["bot-celery"]
    assert [device["count"] for device in gpus(worker)] == [setting]  # N GPUs for N worker processes
    assert worker["environment"]["STYLIZE_GPU_WORKERS"] == setting and worker["command"] == ["stylize-gpu-workers"]
    assert bot["environment"]["STYLIZE_WORKERS"] == setting and bot["environment"]["STYLIZE_JOBS_BACKEND"] == "celery"
    assert re.search(r"^STYLIZE_GPU_WORKERS=1$", ENV_EXAMPLE, re.M)
    assert "COPY --chmod=0755 docker/gpu-workers /usr/local/bin/stylize-gpu-workers" in DOCKERFILE
    assert "!docker/" in IGNORE


def test_the_workers_batch_settings_come_from_env_with_the_bots_defaults() -> None:
    """The GPU workers read STYLIZE_BATCH_SIZE / STYLIZE_BATCH_WAIT (bot/jobs/worker.py); compose passes them
    from .env, defaulting to the bot's [jobs] batch_size and batch_wait, so the two can be set to match."""
    from bot.config import Jobs
    from bot.jobs import worker

    source = Path(worker.__file__).read_text(encoding="utf-8")
    environment = SERVICES["worker"]["environment"]
    for name, default in (("STYLIZE_BATCH_SIZE", Jobs().batch_size), ("STYLIZE_BATCH_WAIT", Jobs().batch_wait)):
        assert f'os.environ.get("{name}")' in source, name
        assert environment[name] == f"${{{name}:-{default}}}", name
        assert re.search(rf"^{name}={default}$", ENV_EXAMPLE, re.M), name


def test_secrets_come_from_env_and_nothing_is_published_beyond_this_machine() -> None:
    url = "redis://:${REDIS_PASSWORD:-}@redis:6379/0"
    for name in ("bot-celery", "worker", "flower"):
        assert SERVICES[name]["environment"]["STYLIZE_REDIS_URL"] == url, name
    assert SERVICES["redis"]["environment"] == {"REDIS_PASSWORD": "${REDIS_PASSWORD:-}"}
    assert '--requirepass "$$REDIS_PASSWORD"' in SERVICES["redis"]["command"][-1]
    assert SERVICES["flower"]["environment"]["FLOWER_BASIC_AUTH"] == "${FLOWER_BASIC_AUTH:-}"
    for name in ("redis", "flower"):  # each refuses to start without its secret instead of running open
        assert re.match(r'\[ -n "\$\$(REDIS_PASSWORD|FLOWER_BASIC_AUTH)" \] \|\| \{', SERVICES[name]["command"][-1])
    assert "ports" not in SERVICES["redis"]
    for name, service in SERVICES.items():
        assert all(str(port).startswith("127.0.0.1:") for port in service.get("ports", [])), name
        token = service.get("environment", {}).get("DISCORD_TOKEN")
        assert token in (None, "${DISCORD_TOKEN:-}"), name
    for key in ("DISCORD_TOKEN", "REDIS_PASSWORD", "FLOWER_BASIC_AUTH"):
        assert re.search(rf"^{key}=$", ENV_EXAMPLE, re.M), key  # the example holds no secret either


def test_the_bots_keep_their_files_on_a_volume_owned_by_the_bot_user() -> None:
    user = re.findall(r"^USER (\d+):", DOCKERFILE, re.M)[-1]
    made = DOCKERFILE.index(f"&& mkdir /data && chown {user}:{user} /data")
    assert made < DOCKERFILE.index("VOLUME /data")  # a new volume copies the folder's owner only if it exists first
    assert "STYLIZE_DATA_DIR=/data" in DOCKERFILE
    for name in ("bot", "bot-cpu", "bot-celery"):
        volumes = SERVICES[name]["volumes"]
        assert {"type": "volume", "source": "bot-data", "target": "/data"} in volumes, name
        assert SERVICES[name]["read_only"] is True
    assert "bot-data" in yaml.safe_load(COMPOSE)["volumes"]
    assert SERVICES["worker"]["volumes"] == []  # the workers get neither config.toml nor the bot's files


def test_one_version_in_pyproject_the_image_label_and_the_changelog() -> None:
    version = PYPROJECT["project"]["version"]
    assert re.search(rf'^\s+org\.opencontainers\.image\.version="{re.escape(version)}"', DOCKERFILE, re.M)
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.findall(r"^## (\S+)", changelog, re.M)[0] == version, "CHANGELOG.md's newest entry is not this version"


def test_the_venv_is_the_last_layer_of_the_image() -> None:
    """Small layers first: the venv changes with every release (and a copy-on-write-less storage driver
    copies the whole file system for each layer after it)."""
    runtime = DOCKERFILE[DOCKERFILE.index("AS runtime"):]
    layers = re.findall(r"^(?:COPY|RUN|WORKDIR)\b.*$", runtime, re.M)
    assert layers[-1] == "COPY --from=builder /opt/venv /opt/venv", layers
