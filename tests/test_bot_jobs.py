"""bot.jobs (in-process backend): fair order, caps, positions, cancel, timeouts, failure isolation and shutdown.

A fake runner stands in for the engine so every step is under the test's control; one test runs
the real engine through the same backend.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import defaultdict

import pytest
from PIL import Image

from bot.jobs import SHUTDOWN, Admission, InProcessBackend, Job, QueueFull, Status, engine_runner
from engine import Cancelled, OutOfMemory, Progress, Result, Settings

TINY = Settings.parse({"size": 64, "steps": 2, "scales": 1})


class FakeRunner:
    """Reports one step (with a preview if asked), then blocks until the test releases the job or the
    backend cancels it; the result is the content picture. Also used by the end-to-end tests."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._started: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self._release: dict[str, threading.Event] = {}
        self.failures: dict[str, BaseException] = {}
        self.ran: list[str] = []
        self._all = threading.Event()

    def release(self, job: Job) -> None:
        self._release.setdefault(job.id, threading.Event()).set()

    def release_all(self) -> None:
        """Let every job, running or still to come, finish."""
        self._all.set()

    async def started(self, job: Job) -> None:
        await asyncio.wait_for(self._started[job.id].wait(), 5)

    def __call__(self, job: Job, report, cancel: threading.Event) -> Result:
        self.ran.append(job.id)
        report(Progress(1, job.settings.steps, 1, 1, (8, 8), {"total": 1.0}, 0.01,
                        preview=job.content if job.settings.preview else None))
        self.loop.call_soon_threadsafe(self._started[job.id].set)
        release = self._release.setdefault(job.id, threading.Event())
        while not (release.wait(0.005) or self._all.is_set()):
            if cancel.is_set():
                raise Cancelled()
        if job.id in self.failures:
            raise self.failures[job.id]
        return Result(image=job.content, settings=job.settings, device="fake", elapsed=0.01,
                      steps=job.settings.steps, losses={"total": 1.0})


def job(user: int, settings: Settings = TINY) -> Job:
    return Job(user_id=user, channel_id=10, guild_id=20, message_id=30, content=Image.new("RGB", (8, 8)),
               styles=(Image.new("RGB", (8, 8)),), settings=settings)


@pytest.fixture
async def runner() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
async def backend(runner: FakeRunner):
    backend = InProcessBackend(runner, workers=1, queue_size=3, per_user=2, grace=5)
    await backend.start()
    yield backend
    for j in await backend.jobs():
        runner.release(j)
    await backend.close()


async def test_runs_and_delivers(backend: InProcessBackend, runner: FakeRunner) -> None:
    a = job(1, Settings.parse({"preview": True}, TINY))
    assert await backend.submit(a) == 1
    await runner.started(a)
    assert await backend.position(a.id) == 0
    snapshot = await backend.snapshot(a.id)
    assert snapshot.status is Status.RUNNING and snapshot.position is None
    assert snapshot.progress.step == 1 and snapshot.preview is a.content
    runner.release(a)
    done = await backend.result(a.id)
    assert done.status is Status.DONE and done.result.device == "fake" and done.error is None
    assert await backend.position(a.id) is None and await backend.snapshot(a.id) is None


async def test_users_take_turns_and_positions_move(backend: InProcessBackend, runner: FakeRunner) -> None:
    a1, a2, b1 = job(1), job(1), job(2)
    await backend.submit(a1)
    await runner.started(a1)
    assert await backend.submit(a2) == 1
    assert await backend.submit(b1) == 1  # a newcomer goes before a heavy user's second job
    assert [await backend.position(j.id) for j in (a1, b1, a2)] == [0, 1, 2]
    listed = await backend.jobs()
    assert [j.id for j in listed] == [a1.id, b1.id, a2.id]
    assert [j.status for j in listed] == [Status.RUNNING, Status.QUEUED, Status.QUEUED]
    assert listed[0] is not a1  # copies, not the live records
    runner.release(a1)
    await backend.result(a1.id)
    await runner.started(b1)  # a1 finishing does not put a2 back in front of b1
    assert [await backend.position(j.id) for j in (b1, a2)] == [0, 1]
    for j in (b1, a2):
        runner.release(j)
        assert (await backend.result(j.id)).status is Status.DONE
    assert runner.ran == [a1.id, b1.id, a2.id]


async def test_fifo_within_one_user_and_between_equals(runner: FakeRunner) -> None:
    backend = InProcessBackend(runner, queue_size=10, per_user=5)
    await backend.start()
    first = job(9)
    await backend.submit(first)
    await runner.started(first)
    queued = [job(1), job(2), job(1), job(3), job(2)]
    for j in queued:
        await backend.submit(j)
    order = [j.id for j in await backend.jobs()][1:]
    assert order == [queued[i].id for i in (0, 1, 3, 2, 4)]  # round 1: users 1, 2, 3; round 2: users 1, 2
    for j in (first, *queued):
        runner.release(j)
    await backend.close()


async def test_per_user_limit_counts_running_jobs(backend: InProcessBackend, runner: FakeRunner) -> None:
    a1, a2 = job(1), job(1)
    await backend.submit(a1)
    await runner.started(a1)
    await backend.submit(a2)
    with pytest.raises(QueueFull, match="You already have 2 jobs in the queue"):
        await backend.submit(job(1))
    assert await backend.submit(job(2)) == 1  # user 2's first job goes before user 1's second


async def test_pending_counts_what_submit_counts(backend: InProcessBackend, runner: FakeRunner) -> None:
    a1 = job(1)
    await backend.submit(a1)
    await runner.started(a1)
    await backend.submit(job(1))
    await backend.submit(job(2))
    assert await backend.pending(1) == (2, 2)  # running and waiting; two in line
    assert await backend.pending(3) == (0, 2)


async def test_admission_counts_jobs_still_loading(backend: InProcessBackend, runner: FakeRunner) -> None:
    """The bot holds a place before downloading: per_user and queue_size apply to loading jobs too."""
    admission = Admission(backend, per_user=2, queue_size=3)
    async with admission.hold(1), admission.hold(1):
        with pytest.raises(QueueFull, match="You already have 2 jobs in the queue"):
            async with admission.hold(1):
                pass
        async with admission.hold(2):
            with pytest.raises(QueueFull, match=r"The queue is full \(3 jobs waiting\)"):
                async with admission.hold(3):
                    pass
    async with admission.hold(1):  # places are given back
        await backend.submit(a := job(1))
        await runner.started(a)
    async with admission.hold(1):  # one pending, one loading
        with pytest.raises(QueueFull, match="You already have 2 jobs"):
            async with admission.hold(1):
                pass
    with pytest.raises(RuntimeError):
        async with admission.hold(4):
            raise RuntimeError("a failed download")
    async with admission.hold(4), admission.hold(4):  # a failure gives the place back too
        pass


async def test_global_queue_cap(backend: InProcessBackend, runner: FakeRunner) -> None:
    running = job(1)
    await backend.submit(running)
    await runner.started(running)
    for user in (2, 3, 4):
        await backend.submit(job(user))
    with pytest.raises(QueueFull, match=r"The queue is full \(3 jobs waiting\)"):
        await backend.submit(job(5))
    runner.release(running)
    await backend.result(running.id)
    assert await backend.submit(job(5)) == 3  # room again once the line moved


async def test_cancel_waiting_job(backend: InProcessBackend, runner: FakeRunner) -> None:
    a, b, c = job(1), job(2), job(3)
    await backend.submit(a)
    await runner.started(a)
    await backend.submit(b)
    await backend.submit(c)
    assert await backend.position(c.id) == 2
    assert await backend.cancel(b.id, "cancelled by <@2>")
    cancelled = await backend.result(b.id)
    assert cancelled.status is Status.CANCELLED and cancelled.error == "cancelled by <@2>"
    assert await backend.position(c.id) == 1
    assert not await backend.cancel(b.id, "again")
    assert not await backend.cancel("unknown", "no such job")
    runner.release(a)
    runner.release(c)
    assert (await backend.result(c.id)).status is Status.DONE
    assert runner.ran == [a.id, c.id]


async def test_cancel_running_job_then_next_runs(backend: InProcessBackend, runner: FakeRunner) -> None:
    a, b = job(1), job(2)
    await backend.submit(a)
    await backend.submit(b)
    await runner.started(a)
    assert await backend.cancel(a.id, "cancelled by <@9> (moderator)")
    assert not await backend.cancel(a.id, "twice")
    done = await backend.result(a.id)
    assert done.status is Status.CANCELLED and done.error == "cancelled by <@9> (moderator)"
    await runner.started(b)
    runner.release(b)
    assert (await backend.result(b.id)).status is Status.DONE


@pytest.mark.parametrize("failure, message", [
    (OutOfMemory("the CUDA ran out of memory at size=4096; try a smaller size or optimizer=adam"),
     "the CUDA ran out of memory at size=4096; try a smaller size or optimizer=adam"),
    (RuntimeError("boom"), "something went wrong on my side"),
    (ZeroDivisionError(), "something went wrong on my side"),
])
async def test_a_failing_job_does_not_stop_the_worker(backend: InProcessBackend, runner: FakeRunner,
                                                      failure: Exception, message: str,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    bad, good = job(1), job(2)
    runner.failures[bad.id] = failure
    await backend.submit(bad)
    await backend.submit(good)
    runner.release(bad)
    runner.release(good)
    failed = await backend.result(bad.id)
    assert failed.status is Status.FAILED and failed.error.startswith(message)
    assert (await backend.result(good.id)).status is Status.DONE
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert bool(logged) == (not isinstance(failure, OutOfMemory))  # only our own faults are logged


async def test_timeout_ends_the_job(runner: FakeRunner) -> None:
    backend = InProcessBackend(runner, timeout=0.05)
    await backend.start()
    slow, after = job(1), job(2)
    await backend.submit(slow)
    await backend.submit(after)
    failed = await backend.result(slow.id)
    assert failed.status is Status.FAILED and "longer than the 0.05-second limit" in failed.error
    runner.release(after)
    assert (await backend.result(after.id)).status is Status.DONE
    await backend.close()


async def test_finished_jobs_nobody_collects_expire(runner: FakeRunner) -> None:
    """A job whose follower died is dropped with its pictures after `keep` seconds, not kept forever."""
    backend = InProcessBackend(runner, keep=0.2)
    await backend.start()
    orphan = job(1)
    await backend.submit(orphan)
    runner.release(orphan)
    for _ in range(100):
        snapshot = await backend.snapshot(orphan.id)
        if snapshot.status.finished:
            break
        await asyncio.sleep(0.01)
    assert snapshot.status is Status.DONE  # finished, and waiting to be collected
    await asyncio.sleep(0.3)
    assert await backend.snapshot(orphan.id) is None
    await backend.close()


async def test_close_cancels_running_and_waiting(runner: FakeRunner) -> None:
    backend = InProcessBackend(runner, workers=1)
    await backend.start()
    running, waiting = job(1), job(2)
    await backend.submit(running)
    await backend.submit(waiting)
    await runner.started(running)
    results = asyncio.gather(backend.result(running.id), backend.result(waiting.id))
    assert backend.alive()
    await backend.close()
    assert not backend.alive()
    for finished in await results:
        assert finished.status is Status.CANCELLED and finished.error == SHUTDOWN
    assert runner.ran == [running.id]
    with pytest.raises(QueueFull, match="shutting down"):
        await backend.submit(job(3))
    await backend.close()  # idempotent


async def test_workers_run_side_by_side(runner: FakeRunner) -> None:
    backend = InProcessBackend(runner, workers=2, per_user=3)
    await backend.start()
    jobs = [job(1), job(2), job(3)]
    for j in jobs:
        await backend.submit(j)
    await runner.started(jobs[0])
    await runner.started(jobs[1])
    assert [await backend.position(j.id) for j in jobs] == [0, 0, 1]
    for j in jobs:
        runner.release(j)
        assert (await backend.result(j.id)).status is Status.DONE
    await backend.close()


async def test_real_engine_through_the_backend(one_torch_thread: None) -> None:
    backend = InProcessBackend(engine_runner("cpu"))
    await backend.start()
    photo = Image.new("RGB", (80, 60), (200, 120, 40))
    style = Image.effect_noise((32, 32), 64).convert("RGB")
    submitted = Job(user_id=1, channel_id=2, guild_id=None, message_id=None, content=photo, styles=(style,),
                    settings=TINY)
    await backend.submit(submitted)
    done = await backend.result(submitted.id)
    await backend.close()
    assert done.status is Status.DONE, done.error
    assert done.result.image.size == (64, 48) and done.result.steps == 2 and done.result.device == "cpu"
    assert done.progress.step == 2 and set(done.result.losses) >= {"content", "style", "total"}
