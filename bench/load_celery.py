"""Load check for the Celery backend: many tiny jobs from many users through a few real workers.

    .venv/bin/python bench/load_celery.py [--jobs 50] [--users 10] [--workers 2] [--steps 4]

Starts a throwaway Redis server (tests/celery_harness.py: the dev group's Valkey, or redis-server) on a
free loopback port and `--workers` real `stylize-worker` processes (CPU, torch on one thread each), then
plays `--users` users who each send their share of the jobs in one burst — user 0 all of theirs first,
then user 1, … — which is the worst case for a first-come-first-served queue. Checks and prints:

* every job answered exactly once (one result per job, each painted once: one claim per job),
* per-user fairness: a job never started after a job of a later round (that user's n-th job) that
  was released to the workers only after it had been submitted,
* where each user's first job started, against where plain FIFO would have put it,
* throughput and latency (submit → result in the bot) percentiles.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import redis
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bot.jobs.worker import Keys  # noqa: E402
from bot.jobs.celery import CeleryBackend  # noqa: E402
from bot.jobs import Job, Status  # noqa: E402
from celery_harness import start_redis, start_workers  # noqa: E402
from engine import Settings  # noqa: E402


async def run(jobs: int, users: int, workers: int, steps: int) -> int:
    folder = Path(tempfile.mkdtemp(prefix="stylize-load-"))
    server = start_redis(folder)
    began = time.perf_counter()
    pool = start_workers(server, folder, count=workers, gated=False)
    print(f"redis-server on port {server.port}; {workers} workers ready in {time.perf_counter() - began:.1f} s")
    keys = Keys("load")
    backend = CeleryBackend(server.url, prefix=keys.prefix, workers=workers, queue_size=jobs,
                            per_user=-(-jobs // users), poll=0.05)
    await backend.start()
    r = redis.Redis.from_url(server.url)
    settings = Settings.parse({"size": 64, "steps": steps, "scales": 1})
    photo = Image.new("RGB", (80, 60), (200, 120, 40))
    style = Image.effect_noise((32, 32), 64).convert("RGB")
    seen: dict[str, dict[str, str]] = {}
    watching = True

    async def watch() -> None:  # records vanish once delivered: keep what the workers wrote
        while watching:
            ids = list(submitted)
            pipe = r.pipeline(transaction=False)
            for job_id in ids:
                pipe.hgetall(keys.job(job_id))
            for job_id, fields in zip(ids, pipe.execute()):
                if fields:
                    seen.setdefault(job_id, {}).update({k.decode(): v.decode() for k, v in fields.items()})
            await asyncio.sleep(0.02)

    submitted: dict[str, tuple[int, int, float]] = {}  # id -> (user, round, submit time)
    answers: dict[str, list[Job]] = {}
    latency: dict[str, float] = {}

    async def collect(job_id: str) -> None:
        done = await asyncio.wait_for(backend.result(job_id), 600)
        latency[job_id] = time.perf_counter() - submitted[job_id][2]
        answers.setdefault(job_id, []).append(done)

    watcher = asyncio.create_task(watch())
    start = time.perf_counter()
    waiters = []
    per_user = -(-jobs // users)
    for user in range(users):
        for n in range(per_user):
            if len(submitted) == jobs:
                break
            job = Job(user_id=user, channel_id=1, guild_id=None, message_id=None, content=photo, styles=(style,),
                      settings=settings)
            submitted[job.id] = (user, n, time.perf_counter())
            await backend.submit(job)
            waiters.append(asyncio.create_task(collect(job.id)))
    await asyncio.gather(*waiters)
    elapsed = time.perf_counter() - start
    watching = False
    await watcher
    await backend.close()
    r.close()
    pool.stop()
    server.stop()

    problems = []
    statuses = [answers[j][0].status for j in submitted if j in answers]
    once = all(len(answers.get(j, [])) == 1 for j in submitted)
    claims = {j: sum(w.output().count(f"job {j}: painting") for w in pool.items) for j in submitted}
    if not once or len(statuses) != jobs or any(s is not Status.DONE for s in statuses):
        problems.append("not every job was answered exactly once with a picture")
    if any(c != 1 for c in claims.values()):
        problems.append(f"jobs painted more or less than once: {[j for j, c in claims.items() if c != 1]}")

    started = sorted(submitted, key=lambda j: float(seen[j]["started"]))
    inversions = []
    for i, early in enumerate(started):  # `late` started after `early`: fine unless late's round is lower
        for late in started[i + 1:]:
            if (submitted[late][1] < submitted[early][1]
                    and float(seen[early]["released"]) > float(seen[late]["created"])):
                inversions.append((early, late))
    if inversions:
        problems.append(f"{len(inversions)} fairness inversions, e.g. {inversions[:3]}")

    first_place = {}
    for place, job_id in enumerate(started, start=1):
        first_place.setdefault(submitted[job_id][0], place)
    fifo_place = {user: user * per_user + 1 for user in range(users)}
    values = sorted(latency.values())
    p95 = values[min(len(values) - 1, round(0.95 * len(values)) - 1)]
    print(f"{jobs} jobs ({settings.size} px, {steps} steps) from {users} users through {workers} workers")
    print(f"answered exactly once: {once and len(statuses) == jobs}; all DONE: "
          f"{all(s is Status.DONE for s in statuses)}; painted once each: {all(c == 1 for c in claims.values())}")
    print(f"fairness inversions: {len(inversions)}; rounds in start order: "
          + "".join(str(submitted[j][1]) for j in started))
    print("start place of each user's first job (fair | FIFO): "
          + ", ".join(f"u{u}: {first_place[u]}|{fifo_place[u]}" for u in range(users)))
    print(f"wall {elapsed:.1f} s, throughput {jobs / elapsed:.2f} jobs/s")
    print(f"latency submit→result: p50 {statistics.median(values):.1f} s, p95 {p95:.1f} s, max {values[-1]:.1f} s")
    for problem in problems:
        print("PROBLEM:", problem)
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=50)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()
    return asyncio.run(run(args.jobs, args.users, args.workers, args.steps))


if __name__ == "__main__":
    sys.exit(main())
