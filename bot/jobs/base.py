"""The job queue's interface, behind which the cog never knows where the painting happens.

Nothing here knows about Discord: a Job carries plain ids, pictures and Settings. Two backends
implement `JobBackend`: `bot.jobs.inprocess` runs jobs in this process's threads, `bot.jobs.celery`
hands them to GPU worker processes through Redis (`bot.jobs.worker` is the workers' half); both
paint through `engine_runner` and settle a job's outcome with `settle`.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import logging
import secrets
import threading
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from engine import (AnimationProgress, Cancelled, EngineError, Progress, Request, Result, Settings, animate, batch_key,
                    pick_device, stylize, stylize_batch)
from engine.memory import predict_batch_bytes

log = logging.getLogger(__name__)


SHUTDOWN = "the bot is shutting down — try again when it is back"
UNEXPECTED = "something went wrong on my side — it has been logged; try again, maybe with other settings"
EXPIRED = "this job expired or was lost — please send it again"  # its record left the job store


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
    mask: Image.Image | None = None  # spatial control: which region of the photo takes which style
    init: Image.Image | None = None  # the starting picture (⤴ Bigger: the result it enlarges), else the photo
    frames: tuple[Image.Image, ...] = ()  # an animation (animate=true): every frame, the first is `content`
    durations_ms: tuple[int, ...] = ()  # how long each frame shows; the painted animation keeps them
    id: str = field(default_factory=lambda: secrets.token_hex(8))  # 64 bits: stored, and in buttons
    status: Status = Status.QUEUED
    progress: Progress | None = None  # latest report from the engine
    preview: Image.Image | None = None  # latest epoch preview (settings.preview)
    result: Result | None = None
    error: str | None = None  # why it failed or was cancelled, for the user
    given: frozenset[str] = frozenset()  # settings the user set themselves (the result echo marks them)
    status_message_id: int | None = None  # the bot's status message, once posted (see JobBackend.track)

    @property
    def short(self) -> str:
        return short_id(self.id)


def short_id(job_id: str) -> str:
    """What users see and type (`cancel 1a2b3c4d`): the first 32 bits of the id."""
    return job_id[:8]


@dataclass(frozen=True)
class Snapshot:
    """What a status message shows: where the job is and how far it got."""

    status: Status
    position: int | None  # 1-based place in line while queued
    progress: Progress | None
    preview: Image.Image | None
    note: str | None = None  # something the user should know, e.g. "retrying on another worker"


@dataclass(frozen=True)
class ClipProgress(Progress):
    """An animation's progress: `step` and `total` count the steps of all frames; the rest is the current
    frame's (`frame` of `frames`, 1-based)."""

    frame: int = 1
    frames: int = 1

    @classmethod
    def of(cls, report: AnimationProgress) -> ClipProgress:
        still = report.still
        return cls(step=report.step, total=report.total, scale=still.scale, scales=still.scales, size=still.size,
                   losses=still.losses, elapsed=report.elapsed, preview=still.preview, frame=report.frame,
                   frames=report.frames)


class QueueFull(Exception):
    """submit() refused the job (or the queue cannot be reached); str(e) tells the user why and what to do."""


def too_many(mine: int) -> QueueFull:
    return QueueFull(f"You already have {mine} job{'s' if mine > 1 else ''} in the queue — wait for one to finish, "
                     "or cancel one.")


def queue_full(size: int) -> QueueFull:
    return QueueFull(f"The queue is full ({size} jobs waiting) — try again in a few minutes.")


class Detached(Exception):
    """result() will not answer in this run of the bot: the job lives on in the backend's store, and
    the next run gets it back from recover() and delivers it then."""


Runner = Callable[[Job, Callable[[Progress], None], threading.Event], Result]
"""Paints one job (blocking, in a worker thread): report progress, raise Cancelled when the event is set."""

Ending = Callable[[Result | Exception], None]
BatchRunner = Callable[[list[tuple[Job, Callable[[Progress], None], threading.Event, Ending]]], None]
"""Paints jobs of one batch key together (blocking): each (job, its progress report, its cancel event, its
ending) hands its ending its Result, or the exception that ended it (Cancelled once its event is set), the
moment that is known — a job cancelled or failed does not wait for the rest of its batch."""


@dataclass(frozen=True)
class Batching:
    """How a backend paints queued jobs of the same shape as one batch (engine.stylize_batch).

    The head of the fair order starts a batch; the jobs behind it in that order whose `key` equals its
    key join, up to `size` of them and as long as `fits` says the batch fits in memory (the rest wait
    for a later batch). A batch waits at most `wait` seconds for jobs to arrive. A key of None: the job
    is painted alone (animations)."""

    runner: BatchRunner
    key: Callable[[Job], Hashable | None]
    size: int = 1  # 1: one job at a time, as without batching
    wait: float = 0.05
    fits: Callable[[list[Job]], bool] = lambda jobs: True


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
    async def pending(self, user_id: int) -> tuple[int, int]:
        """(jobs of `user_id` waiting or running, jobs in line for all users): what submit() holds against
        per_user and queue_size. Raises QueueFull if the queue cannot be reached."""

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


class Admission:
    """Places in line held for jobs whose pictures are still downloading and decoding.

    The bot enters `hold(user_id)` before it fetches anything, and submits inside it. A user's pending jobs
    plus their jobs still loading count against per_user, the queue plus every loading job against
    queue_size, so a burst of commands downloads and decodes no more than the queue would take.
    """

    def __init__(self, backend: JobBackend, *, per_user: int, queue_size: int) -> None:
        self._backend = backend
        self._per_user = per_user
        self._queue_size = queue_size
        self._loading: Counter[int] = Counter()

    @asynccontextmanager
    async def hold(self, user_id: int) -> AsyncIterator[None]:
        """Raises QueueFull (with submit()'s words) when the job could not be queued anyway."""
        mine, waiting = await self._backend.pending(user_id)
        mine += self._loading[user_id]
        if mine >= self._per_user:
            raise too_many(mine)
        if waiting + self._loading.total() >= self._queue_size:
            raise queue_full(self._queue_size)
        self._loading[user_id] += 1
        try:
            yield
        finally:
            self._loading[user_id] -= 1
            if not self._loading[user_id]:
                del self._loading[user_id]


def settings_json(settings: Settings) -> str:
    """Settings as JSON: how they travel through Redis and rest in the bot's store."""
    return json.dumps(dataclasses.asdict(settings))


def settings_of(values: dict[str, Any]) -> Settings:
    return Settings(**{k: _tuples(v) for k, v in values.items()})


def _tuples(value: Any) -> Any:
    """JSON's lists back to the tuples Settings holds (regions are pairs inside a tuple)."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def settings_from(text: str) -> Settings:
    return settings_of(json.loads(text))


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
    """The real painter: engine.stylize on `device` ("auto", "cpu", "cuda:1"…), or engine.animate for a job with
    frames — its Result then holds the first painted frame as `image` and all of them as `frames`."""

    def run(job: Job, report: Callable[[Progress], None], cancel: threading.Event) -> Result:
        if job.frames:
            clip = animate(job.frames, job.durations_ms, job.styles, job.settings, device=device, cancel=cancel,
                           progress=lambda p: report(ClipProgress.of(p)))
            return Result(clip.frames[0], clip.settings, clip.device, clip.elapsed, clip.steps, clip.losses[-1],
                          tuple(clip.frames))
        return stylize(job.content, job.styles, job.settings, device=device, progress=report, cancel=cancel,
                       mask=job.mask, init_image=job.init)

    return run


def engine_batching(device: str, size: int, wait: float, budget: float | None = None) -> Batching:
    """Batches painted by engine.stylize_batch on `device`: jobs of one engine.batch_key (animations and
    deterministic jobs never batch) up to `size` at a time, waiting at most `wait` seconds, a batch predicted
    to need more than `budget` bytes (engine.memory's model: the sum of its jobs) split."""

    def run(calls: list[tuple[Job, Callable[[Progress], None], threading.Event, Ending]]) -> None:
        stylize_batch([Request(job.content, job.styles, job.settings, init_image=job.init, progress=report,
                               cancel=cancel, mask=job.mask, done=done) for job, report, cancel, done in calls],
                      device=device)

    def key(job: Job) -> Hashable | None:
        if job.frames or job.settings.deterministic:  # same seed, same picture: never a batch-mate's rounding
            return None
        try:
            return batch_key(job.settings, job.content.size, device)
        except Exception:  # a job the engine will refuse anyway: it goes alone and fails alone
            return None

    resolved = str(pick_device(device))

    def fits(jobs: list[Job]) -> bool:
        need = predict_batch_bytes([(job.settings, job.content.size, len(job.styles)) for job in jobs], resolved)
        return budget is None or need is None or need <= budget

    return Batching(run, key, size=size, wait=wait, fits=fits)
