"""The in-process backend's batches (bot.jobs.Batching): who joins, how long a batch waits, how each job
of a batch ends. Fake runners stand in for the engine (see test_bot_jobs.FakeRunner); one test runs the
real engine's batches."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from bot.app import make_backend
from bot.config import ConfigError, Jobs, parse_config
from bot.jobs import Batching, InProcessBackend, Job, Status, engine_batching, engine_runner
from engine import Result, Settings

from test_bot_jobs import TINY, FakeRunner, job


class Painted:
    """A runner and a batch runner over one FakeRunner, recording the batches in the order they ran
    (a job painted alone is a batch of one)."""

    def __init__(self, runner: FakeRunner) -> None:
        self.runner = runner
        self.batches: list[list[str]] = []

    def one(self, job: Job, report, cancel: threading.Event) -> Result:
        self.batches.append([job.id])
        return self.runner(job, report, cancel)

    def many(self, calls) -> None:
        """The batch's jobs side by side: each ends on its own (cancelled, failed or released)."""
        self.batches.append([job.id for job, _, _, _ in calls])
        with ThreadPoolExecutor(len(calls)) as pool:
            for job, report, cancel, done in calls:
                pool.submit(self._paint, job, report, cancel, done)

    def _paint(self, job: Job, report, cancel: threading.Event, done) -> None:
        try:
            done(self.runner(job, report, cancel))
        except Exception as error:
            done(error)


def shape(job: Job) -> str:
    return job.settings.optimizer  # the test's stand-in for engine.batch_key


async def backend(painted: Painted, *, size: int = 4, wait: float = 0.0, per_user: int = 3,
                  fits=lambda jobs: True) -> InProcessBackend:
    started = InProcessBackend(painted.one, workers=1, queue_size=10, per_user=per_user, grace=5,
                               batching=Batching(painted.many, shape, size=size, wait=wait, fits=fits))
    await started.start()
    return started


async def queued_behind_a_blocker(jobs: InProcessBackend, runner: FakeRunner, *waiting: Job) -> Job:
    """Occupy the only worker, then queue `waiting`: the next batch is formed from all of them at once."""
    blocker = job(99, Settings.parse({"optimizer": "adam"}, TINY))
    await jobs.submit(blocker)
    await runner.started(blocker)
    for one in waiting:
        await jobs.submit(one)
    return blocker


async def finish(jobs: InProcessBackend, runner: FakeRunner, *submitted: Job) -> list[Job]:
    runner.release_all()
    done = [await asyncio.wait_for(jobs.result(one.id), 10) for one in submitted]
    await jobs.close()
    return done


async def test_jobs_of_one_shape_in_line_run_as_one_batch_and_other_shapes_never_join() -> None:
    runner = FakeRunner()
    painted = Painted(runner)
    jobs = await backend(painted)
    a, b, c = job(1), job(2, Settings.parse({"optimizer": "adam"}, TINY)), job(3)
    blocker = await queued_behind_a_blocker(jobs, runner, a, b, c)
    done = await finish(jobs, runner, blocker, a, b, c)
    assert painted.batches == [[blocker.id], [a.id, c.id], [b.id]]
    assert all(one.status is Status.DONE for one in done)


async def test_the_fair_order_decides_who_joins_a_batch() -> None:
    """User 1 queued two jobs before user 2's one: the fair order is a1, b1, a2, so a batch of two is a1 and
    b1 — user 1 cannot fill it ahead of user 2."""
    runner = FakeRunner()
    painted = Painted(runner)
    jobs = await backend(painted, size=2)
    a1, a2, b1 = job(1), job(1), job(2)
    blocker = await queued_behind_a_blocker(jobs, runner, a1, a2, b1)
    await finish(jobs, runner, blocker, a1, a2, b1)
    assert painted.batches[1:] == [[a1.id, b1.id], [a2.id]]


async def test_a_batch_predicted_not_to_fit_is_split() -> None:
    runner = FakeRunner()
    painted = Painted(runner)
    jobs = await backend(painted, fits=lambda batch: len(batch) <= 2)
    queued = [job(n) for n in range(1, 4)]
    blocker = await queued_behind_a_blocker(jobs, runner, *queued)
    await finish(jobs, runner, blocker, *queued)
    assert painted.batches[1:] == [[queued[0].id, queued[1].id], [queued[2].id]]


async def test_a_batch_waits_for_jobs_to_arrive_but_never_longer_than_its_moment() -> None:
    runner = FakeRunner()
    painted = Painted(runner)
    jobs = await backend(painted, size=2, wait=3600)  # a full batch stops waiting at once
    a, b = job(1), job(2)
    await jobs.submit(a)
    await asyncio.sleep(0.05)  # the worker has taken `a` and waits for company
    await jobs.submit(b)
    await finish(jobs, runner, a, b)
    assert painted.batches == [[a.id, b.id]]

    runner = FakeRunner()
    painted = Painted(runner)
    jobs = await backend(painted, size=4, wait=0.2)
    alone = job(1)
    await jobs.submit(alone)
    await asyncio.wait_for(runner.started(alone), 5)  # far less than forever: it stopped waiting
    await finish(jobs, runner, alone)
    assert painted.batches == [[alone.id]]


async def test_cancelling_one_job_of_a_batch_ends_only_that_job() -> None:
    runner = FakeRunner()
    painted = Painted(runner)
    jobs = await backend(painted)
    a, b = job(1), job(2)
    blocker = await queued_behind_a_blocker(jobs, runner, a, b)
    runner.release(blocker)
    await runner.started(a)
    assert await jobs.cancel(a.id, "changed my mind")
    cancelled = await asyncio.wait_for(jobs.result(a.id), 10)  # while `b` still paints
    [painted_b] = await finish(jobs, runner, b)
    assert painted.batches[1:] == [[a.id, b.id]]
    assert (cancelled.status, cancelled.error) == (Status.CANCELLED, "changed my mind")
    assert painted_b.status is Status.DONE


async def test_a_job_failing_in_a_batch_fails_alone() -> None:
    runner = FakeRunner()
    painted = Painted(runner)
    jobs = await backend(painted)
    a, b = job(1), job(2)
    runner.failures[a.id] = ValueError("boom")
    blocker = await queued_behind_a_blocker(jobs, runner, a, b)
    done = await finish(jobs, runner, a, b)
    assert [one.status for one in done] == [Status.FAILED, Status.DONE]
    assert painted.batches[1:] == [[a.id, b.id]] and blocker.id == painted.batches[0][0]


async def test_batch_size_one_paints_one_job_at_a_time() -> None:
    runner = FakeRunner()
    painted = Painted(runner)
    jobs = await backend(painted, size=1, wait=3600)
    a, b = job(1), job(2)
    blocker = await queued_behind_a_blocker(jobs, runner, a, b)
    await finish(jobs, runner, blocker, a, b)
    assert painted.batches == [[blocker.id], [a.id], [b.id]]


async def test_real_engine_batches_through_the_backend(one_torch_thread: None) -> None:
    jobs = InProcessBackend(engine_runner("cpu"), per_user=3, batching=engine_batching("cpu", 2, 3600))
    await jobs.start()
    style = Image.effect_noise((32, 32), 64).convert("RGB")
    submitted = [Job(user_id=n, channel_id=2, guild_id=None, message_id=None, styles=(style,), settings=TINY,
                     content=Image.new("RGB", (80, 60), colour)) for n, colour in enumerate([(200, 120, 40), (9, 9, 9)])]
    for one in submitted:
        await jobs.submit(one)
    done = [await jobs.result(one.id) for one in submitted]
    await jobs.close()
    for one in done:
        assert one.status is Status.DONE, one.error
        assert one.result.image.size == (64, 48) and one.result.steps == 2 and one.progress.step == 2
    assert done[0].result.image.tobytes() != done[1].result.image.tobytes()


def test_deterministic_jobs_and_animations_never_join_a_batch() -> None:
    """A batch-mate changes the rounding of a job's picture (tests/test_batch.py), so a job that asked for
    deterministic=true — same seed, same picture — paints alone, as an animation does."""
    batching = engine_batching("cpu", 4, 0.0)

    def paint(settings: Settings = TINY, frames: int = 0) -> Job:
        photo = Image.new("RGB", (80, 60))
        return Job(user_id=1, channel_id=2, guild_id=None, message_id=None, content=photo,
                   styles=(Image.new("RGB", (32, 32)),), settings=settings, frames=(photo,) * frames)

    assert batching.key(paint()) is not None
    assert batching.key(paint(Settings.parse({"deterministic": "true"}, TINY))) is None
    assert batching.key(paint(frames=2)) is None


def test_batching_is_configured_under_jobs() -> None:
    config = parse_config({"token": "t", "jobs": {"batch_size": 8, "batch_wait": 0.1}, "device": "cpu"})
    assert (config.jobs.batch_size, config.jobs.batch_wait) == (8, 0.1)
    assert (Jobs().batch_size, Jobs().batch_wait) == (1, 0.05)  # one job at a time unless asked
    with pytest.raises(ConfigError, match="batch_size"):
        parse_config({"token": "t", "jobs": {"batch_size": 0}})
    with pytest.raises(ConfigError, match="batch_wait"):
        parse_config({"token": "t", "jobs": {"batch_wait": -1}})
    batching = make_backend(config)._batching
    assert batching is not None and (batching.size, batching.wait) == (8, 0.1)
    assert make_backend(parse_config({"token": "t", "device": "cpu"}))._batching is None
