"""The job queue, behind `JobBackend` so the cog never knows where the painting happens.

Nothing here knows about Discord: a Job carries plain ids, pictures and Settings. The in-process
backend runs `workers` jobs at a time in its own threads (the engine blocks, the event loop must
not) and picks the next job fairly: users take turns, each user's own jobs stay in order. The
Celery backend (bot.celery_backend) implements the same interface with GPU worker processes on
other machines; both paint through `engine_runner` and settle a job's outcome with `settle`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import secrets
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from PIL import Image

from engine import Cancelled, EngineError, Progress, Result, Settings, stylize

log = logging.getLogger(__name__)

SHUTDOWN = "the bot is shutting down — try again when it is back"
UNEXPECTED = "something went wrong on my side — it has been logged; try again, maybe with other settings"


class Status(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (Status.DONE, Status.FAILED, Status.CANCELLED)


@dataclass(eq=False)
class Job:
    """One request: who asked where, the pictures, the settings, and (filled in) how it went."""

    user_id: int
    channel_id: int
    guild_id: int | None
    message_id: int | None  # the command message (None for slash commands)
    content: Image.Image
    styles: tuple[Image.Image, ...]
    settings: Settings
    id: str = field(default_factory=lambda: secrets.token_hex(4))
    status: Status = Status.QUEUED
    progress: Progress | None = None  # latest report from the engine
    preview: Image.Image | None = None  # latest epoch preview (settings.preview)
    result: Result | None = None
    error: str | None = None  # why it failed or was cancelled, for the user
    given: frozenset[str] = frozenset()  # settings the user set themselves (the result echo marks them)
    status_message_id: int | None = None  # the bot's status message, once posted (see JobBackend.track)


@dataclass(frozen=True)
class Snapshot:
    """What a status message shows: where the job is and how far it got."""

    status: Status
    position: int | None  # 1-based place in line while queued
    progress: Progress | None
    preview: Image.Image | None
    note: str | None = None  # something the user should know, e.g. "retrying on another worker"


class QueueFull(Exception):
    """submit() refused the job (or the queue cannot be reached); str(e) tells the user why and what to do."""


class Detached(Exception):
    """result() will not answer in this run of the bot: the job lives on in the backend's store, and
    the next run gets it back from recover() and delivers it then."""


Runner = Callable[[Job, Callable[[Progress], None], threading.Event], Result]
"""Paints one job (blocking, in a worker thread): report progress, raise Cancelled when the event is set."""


class JobBackend(ABC):
    """Where jobs wait and run. Every method is called on the bot's event loop."""

    @abstractmethod
    async def start(self) -> None:
        """Begin taking jobs."""

    @abstractmethod
    async def close(self, reason: str = SHUTDOWN) -> None:
        """Cancel running jobs, end waiting ones as CANCELLED with `reason`, stop. Idempotent.

        A backend whose jobs outlive the bot (Celery) leaves them alone instead: pending result()
        calls raise Detached, and recover() hands the jobs to the next run."""

    async def recover(self) -> list[Job]:
        """Jobs a previous run of the bot left pending (queued, running or finished but not delivered),
        now followed by this backend: snapshot() and result() work for them. Called once, after start();
        may wait until the backend's store is reachable. Default: none (jobs die with the process)."""
        return []

    async def track(self, job_id: str, status_message_id: int) -> None:
        """Remember the job's status message, so that a later run can edit it (see recover). Default: no-op."""

    @abstractmethod
    async def submit(self, job: Job) -> int:
        """Queue `job`; return its 1-based position. Raises QueueFull (per-user limit, queue cap)."""

    @abstractmethod
    async def cancel(self, job_id: str, reason: str) -> bool:
        """Cancel a waiting or running job (`reason` becomes its error); False if it is not pending."""

    @abstractmethod
    async def position(self, job_id: str) -> int | None:
        """1-based place in line while waiting, 0 while running, None once finished or unknown."""

    @abstractmethod
    async def jobs(self) -> list[Job]:
        """Copies of the pending jobs: running ones first, then waiting ones in the order they will run."""

    @abstractmethod
    async def snapshot(self, job_id: str) -> Snapshot | None:
        """Status, position and latest progress of a pending job (None once it is handed over)."""

    @abstractmethod
    async def result(self, job_id: str) -> Job:
        """Wait until the job ends, then hand over the finished copy (once: the backend forgets it)."""

    @abstractmethod
    def alive(self) -> bool:
        """Whether jobs can still run (for the health report); cheap, called from the event loop."""


class InProcessBackend(JobBackend):
    """`workers` threads in this process running `runner`; fair order, per-user limit and queue cap."""

    def __init__(self, runner: Runner, *, workers: int = 1, queue_size: int = 20, per_user: int = 2,
                 timeout: float | None = None, grace: float = 30.0) -> None:
        self._runner = runner
        self._workers = workers
        self._queue_size = queue_size
        self._per_user = per_user
        self._timeout = timeout
        self._grace = grace  # how long close() waits for running jobs to notice their cancel event
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
        mine = sum(j.user_id == job.user_id for j in (*self._waiting, *self._running.values()))
        if mine >= self._per_user:
            raise QueueFull(f"You already have {mine} job{'s' if mine > 1 else ''} in the queue — wait for "
                            "one to finish, or cancel one.")
        if len(self._waiting) >= self._queue_size:
            raise QueueFull(f"The queue is full ({self._queue_size} jobs waiting) — try again in a few minutes.")
        job.status = Status.QUEUED
        self._rounds[job.id] = mine
        self._cancel[job.id] = threading.Event()
        self._done[job.id] = asyncio.get_running_loop().create_future()
        self._waiting.append(job)
        async with self._wakeup:
            self._wakeup.notify()
        return self._order().index(job) + 1

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
                job = self._order()[0]
                self._waiting.remove(job)
                self._running[job.id] = job
                job.status = Status.RUNNING
            await self._run(job)

    async def _run(self, job: Job) -> None:
        """Run one job to its end; whatever happens, the worker lives on and the job gets an outcome."""
        loop = asyncio.get_running_loop()
        cancel = self._cancel[job.id]
        timer = loop.call_later(self._timeout, self._expire, job) if self._timeout else None
        try:
            result = await loop.run_in_executor(self._executor, self._runner, job, partial(_record, job), cancel)
        except Cancelled:
            if job.id in self._expired:
                self._finish(job, Status.FAILED, error=timeout_error(self._timeout))
            else:
                self._finish(job, Status.CANCELLED, error=job.error or "the job was cancelled")
        except Exception as error:
            status, why = settle(job, error)
            self._finish(job, status, error=why)
        else:
            self._finish(job, Status.DONE, result=result)
        finally:
            if timer is not None:
                timer.cancel()

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


def _record(job: Job, progress: Progress) -> None:
    """Called in the worker thread: only store the snapshot; the status task on the loop reads it."""
    job.progress = progress
    if progress.preview is not None:
        job.preview = progress.preview


def settle(job: Job, error: Exception) -> tuple[Status, str]:
    """How a job that raised `error` ends, and what its owner reads (our own faults are logged)."""
    if isinstance(error, Cancelled):
        return Status.CANCELLED, job.error or "the job was cancelled"
    if isinstance(error, EngineError):
        return Status.FAILED, str(error)
    log.error("job %s failed unexpectedly", job.id, exc_info=error)
    return Status.FAILED, UNEXPECTED


def timeout_error(seconds: float | None) -> str:
    return f"it took longer than the {_duration(seconds)} limit — try a smaller size or fewer steps"


def _duration(seconds: float | None) -> str:
    seconds = seconds or 0
    return f"{seconds / 60:g}-minute" if seconds >= 60 else f"{seconds:g}-second"


def engine_runner(device: str) -> Runner:
    """The real painter: engine.stylize on `device` ("auto", "cpu", "cuda:1"…)."""

    def run(job: Job, report: Callable[[Progress], None], cancel: threading.Event) -> Result:
        return stylize(job.content, job.styles, job.settings, device=device, progress=report, cancel=cancel)

    return run
