"""`InProcessBackend`: `workers` threads of this process paint the jobs, picked fairly.

The engine blocks, the event loop must not: jobs run in the backend's own threads. The next job is
picked fairly: users take turns, each user's own jobs stay in order. With `batching`, a worker that
takes the next job also takes the jobs of the same shape behind it in that order (waiting a moment for
more to arrive) and paints them as one batch; each still ends on its own. A finished job waits for its
result() call (the bot's follower makes it at once) at most `keep` seconds: one nobody collects —
its follower died — is dropped with its pictures instead of being kept forever.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from engine import Cancelled, Progress, Result

from .base import (SHUTDOWN, Batching, Job, JobBackend, QueueFull, Runner, Snapshot, Status, queue_full, settle,
                   timeout_error, too_many)

UNCOLLECTED = 600.0  # seconds a finished job waits for result() before it is dropped


class InProcessBackend(JobBackend):
    """`workers` threads in this process running `runner` (or `batching`'s runner for batches of more than
    one); fair order, per-user limit and queue cap."""

    def __init__(self, runner: Runner, *, workers: int = 1, queue_size: int = 20, per_user: int = 2,
                 timeout: float | None = None, grace: float = 30.0, keep: float = UNCOLLECTED,
                 batching: Batching | None = None) -> None:
        self._runner = runner
        self._batching = batching
        self._workers = workers
        self._queue_size = queue_size
        self._per_user = per_user
        self._timeout = timeout
        self._grace = grace  # how long close() waits for running jobs to notice their cancel event
        self._keep = keep
        self._waiting: list[Job] = []  # submission order
        self._running: dict[str, Job] = {}
        self._rounds: dict[str, int] = {}
        self._cancel: dict[str, threading.Event] = {}
        self._expired: set[str] = set()
        self._done: dict[str, asyncio.Future[Job]] = {}
        self._wakeup: asyncio.Condition | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._executor: ThreadPoolExecutor | None = None
        self._closing = False

    async def start(self) -> None:
        self._wakeup = asyncio.Condition()
        self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix="stylize-worker")
        self._tasks = [asyncio.create_task(self._work(), name=f"stylize-worker-{n}") for n in range(self._workers)]

    async def close(self, reason: str = SHUTDOWN) -> None:
        if self._closing or self._wakeup is None:
            return
        self._closing = True
        for job in list(self._waiting):
            self._waiting.remove(job)
            self._finish(job, Status.CANCELLED, error=reason)
        for job in self._running.values():
            job.error = reason
            self._cancel[job.id].set()
        async with self._wakeup:
            self._wakeup.notify_all()
        _, late = await asyncio.wait(self._tasks, timeout=self._grace)
        for task in late:  # a runner that ignores its cancel event: stop waiting for it
            task.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    async def submit(self, job: Job) -> int:
        if self._closing or self._wakeup is None:
            raise QueueFull("I'm not taking jobs right now — " + SHUTDOWN)
        mine, waiting = await self.pending(job.user_id)
        if mine >= self._per_user:
            raise too_many(mine)
        if waiting >= self._queue_size:
            raise queue_full(self._queue_size)
        job.status = Status.QUEUED
        self._rounds[job.id] = mine
        self._cancel[job.id] = threading.Event()
        self._done[job.id] = asyncio.get_running_loop().create_future()
        self._waiting.append(job)
        async with self._wakeup:
            self._wakeup.notify_all()  # an idle worker, and a worker gathering a batch this job may join
        return self._order().index(job) + 1

    async def pending(self, user_id: int) -> tuple[int, int]:
        return sum(j.user_id == user_id for j in (*self._waiting, *self._running.values())), len(self._waiting)

    async def cancel(self, job_id: str, reason: str) -> bool:
        for job in self._waiting:
            if job.id == job_id:
                self._waiting.remove(job)
                self._finish(job, Status.CANCELLED, error=reason)
                return True
        job = self._running.get(job_id)
        if job is None or self._cancel[job_id].is_set():
            return False
        job.error = reason
        self._cancel[job_id].set()
        return True

    async def position(self, job_id: str) -> int | None:
        if job_id in self._running:
            return 0
        order = self._order()
        return next((n for n, job in enumerate(order, start=1) if job.id == job_id), None)

    async def jobs(self) -> list[Job]:
        return [dataclasses.replace(job) for job in (*self._running.values(), *self._order())]

    async def snapshot(self, job_id: str) -> Snapshot | None:
        job = self._running.get(job_id) or next((j for j in self._waiting if j.id == job_id), None)
        if job is None:
            future = self._done.get(job_id)
            if future is None:
                return None
            job = future.result()
        position = await self.position(job_id)
        return Snapshot(job.status, position or None, job.progress, job.preview)

    async def result(self, job_id: str) -> Job:
        future = self._done[job_id]
        job = await asyncio.shield(future)
        self._done.pop(job_id, None)
        return job

    def alive(self) -> bool:
        return bool(self._tasks) and not self._closing and all(not task.done() for task in self._tasks)

    def _order(self) -> list[Job]:
        """Waiting jobs in the order they will run: round-robin over users, FIFO within a user.

        A job's round is fixed when it is submitted: how many jobs its owner had waiting or running
        then. So a newcomer's first job goes before a heavy user's second, nobody's jobs overtake each
        other, and a place in line never gets worse because some job finished.
        """
        return sorted(self._waiting, key=lambda job: self._rounds[job.id])  # stable: FIFO within a round

    async def _work(self) -> None:
        assert self._wakeup is not None
        while True:
            async with self._wakeup:
                await self._wakeup.wait_for(lambda: self._waiting or self._closing)
                if self._closing:
                    return
                batch = await self._gather()
            await self._run(batch)

    def _take(self, job: Job) -> None:
        self._waiting.remove(job)
        self._running[job.id] = job
        job.status = Status.RUNNING

    async def _gather(self) -> list[Job]:
        """The next batch (called holding the wake-up condition): the head of the fair order, then the
        jobs of its shape in fair order behind it while the batch has room and fits, waiting for them
        at most the batching's moment (a job cancelled meanwhile is running already: it ends at its first step)."""
        assert self._wakeup is not None
        head = self._order()[0]
        self._take(head)
        batching = self._batching
        key = batching.key(head) if batching is not None and batching.size > 1 else None
        if batching is None or key is None:
            return [head]
        batch = [head]
        deadline = asyncio.get_running_loop().time() + batching.wait
        while True:
            for job in self._order():
                if len(batch) < batching.size and batching.key(job) == key and batching.fits([*batch, job]):
                    self._take(job)
                    batch.append(job)
            left = deadline - asyncio.get_running_loop().time()
            if len(batch) >= batching.size or left <= 0 or self._closing:
                break
            try:
                await asyncio.wait_for(self._wakeup.wait(), left)
            except TimeoutError:
                pass
        return batch

    async def _run(self, batch: list[Job]) -> None:
        """Run a batch (or one job) to its end; whatever happens, the worker lives on and each job gets its
        own outcome, as soon as it is known."""
        loop = asyncio.get_running_loop()
        timers = {job.id: loop.call_later(self._timeout, self._expire, job) for job in batch} if self._timeout else {}

        def conclude(job: Job, outcome: Result | BaseException) -> None:
            timer = timers.pop(job.id, None)
            if timer is not None:
                timer.cancel()
            if job.id not in self._running:  # ended already
                return
            if isinstance(outcome, Cancelled):
                if job.id in self._expired:
                    self._finish(job, Status.FAILED, error=timeout_error(self._timeout))
                else:
                    self._finish(job, Status.CANCELLED, error=job.error or "the job was cancelled")
            elif isinstance(outcome, BaseException):
                status, why = settle(job, outcome)
                self._finish(job, status, error=why)
            else:
                self._finish(job, Status.DONE, result=outcome)

        ending: BaseException = RuntimeError("the batch runner gave this job no outcome")
        try:
            if len(batch) == 1:
                job = batch[0]
                conclude(job, await loop.run_in_executor(self._executor, self._runner, job, partial(_record, job),
                                                         self._cancel[job.id]))
            else:
                assert self._batching is not None
                calls = [(job, partial(_record, job), self._cancel[job.id],
                          partial(loop.call_soon_threadsafe, conclude, job)) for job in batch]
                await loop.run_in_executor(self._executor, self._batching.runner, calls)
        except Exception as error:
            ending = error
        except asyncio.CancelledError:  # close() stopped waiting for a runner that ignored its cancel event
            ending = Cancelled()
            raise
        finally:
            for job in batch:  # a job the runner left without an outcome (it raised, or forgot it)
                conclude(job, ending)

    def _expire(self, job: Job) -> None:
        self._expired.add(job.id)
        self._cancel[job.id].set()

    def _finish(self, job: Job, status: Status, *, error: str | None = None, result: Result | None = None) -> None:
        self._running.pop(job.id, None)
        self._rounds.pop(job.id, None)
        self._cancel.pop(job.id, None)
        self._expired.discard(job.id)
        job.status, job.error, job.result = status, error, result
        future = self._done.get(job.id)
        if future is not None and not future.done():
            future.set_result(dataclasses.replace(job))
            asyncio.get_running_loop().call_later(self._keep, self._done.pop, job.id, None)


def _record(job: Job, progress: Progress) -> None:
    """Called in the worker thread: only store the snapshot; the status task on the loop reads it."""
    job.progress = progress
    if progress.preview is not None:
        job.preview = progress.preview
