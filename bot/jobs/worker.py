"""The Celery side of the job queue: the app, the one task, and the GPU worker (`stylize-worker`).

Nothing here imports Discord. A worker process loads the VGG-19 once, pins itself to one GPU and
paints one job at a time with the same `engine_runner` as the in-process backend — or, with a batch
size above 1 (STYLIZE_BATCH_SIZE, --batch-size), the job its message names together with released jobs
of the same shape (engine.batch_key), which it claims from `<p>:released` in the bot's fair order, as
one batch (engine.stylize_batch); each job of a batch keeps its own beat, cancel, progress and outcome. Messages carry
only a job id: the job's record, pictures, progress and result live in Redis under
`<prefix>:job:<id>` keys that expire (bot.jobs.celery writes and reads the bot's half).

Redis layout (prefix "stylize" by default, one bot per prefix):

    <p>:job:<id>              hash: who asked where, settings, status, attempt, progress, result…
    <p>:job:<id>:img:<n>      PNG bytes: 0 is the photo, 1… the style pictures, then the mask and the
                              starting picture if the job has them (fields mask, init: 0 or 1), then an
                              animation's later frames (field later_frames; field durations: every frame's
                              ms, JSON); all expire after `keep`
    <p>:job:<id>:result       PNG bytes of the painting
    <p>:job:<id>:preview      PNG bytes of the latest preview (record field preview_v counts them)
    <p>:job:<id>:frames       list: PNG bytes of the timelapse's frames (settings.timelapse), or of the painted
                              animation's, with the result
    <p>:job:<id>:beat         exists while a worker is painting the job (refreshed, short expiry)
    <p>:job:<id>:cancel       the reason, once someone asked to cancel a running job
    <p>:waiting               zset: jobs the bot has not handed to Celery yet, in fair order
    <p>:released              zset: handed to Celery, not started (FIFO)
    <p>:running               set: being painted
    <p>:finished              zset: finished, not yet delivered by the bot
    <p>:user:<uid>            set: a user's waiting, released and running jobs (per-user limit)

A record is whole or absent: every write after submit() changes a record only if it still has its
`status` (a Lua check), so a record that expired is never brought back as a few stray fields
without a TTL. While a job is alive its record and pictures are given `keep` more seconds at release,
at claim, at every worker beat and when it finishes; a record that is missing anyway (expired,
FLUSHALL, a Redis restarted without persistence) means the job is lost: the bot drops its id from
every set and tells its owner (bot.jobs.celery).

A worker claims a job atomically when it starts it. A message for a job that is finished, cancelled,
or being painted by a live worker (its beat key exists) is acknowledged and dropped, so a message
delivered twice never paints twice. A job whose worker died (beat expired) is taken over by the next
worker that receives its message again — Celery re-queues it (acks_late + reject_on_worker_lost) —
once; a second death fails it.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import io
import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from celery import Celery, signals
from PIL import Image

from engine import Cancelled, Progress, Result

from .base import (EXPIRED, Batching, ClipProgress, Job, Runner, Status, engine_batching, settings_from, settings_of,
                   settle, timeout_error)

log = logging.getLogger(__name__)

TASK = "stylize.paint"
QUEUE = "stylize"
DEFAULT_REDIS_URL = "redis://localhost:6379/0"
MAX_ATTEMPTS = 2  # a job whose worker dies is retried once on another worker
RETRY_NOTE = "the worker painting this stopped — retrying on another worker"
GAVE_UP = "the workers painting it stopped twice — please try again later, maybe with a smaller size"
LOST_PICTURES = "its pictures expired before a worker was free — please send it again"
PROGRESS_EVERY = 0.5  # seconds between progress writes (the last step and every preview are always written)
# Longer than any job may run ([limits] job_timeout): a message a dead *machine* held is handed out
# again after this long. A worker process that dies is noticed at once by its pool instead.
VISIBILITY_TIMEOUT = 3600


# -------------------------------------------------------------------------------- shared with the bot

class Keys:
    """Names of one bot's Redis keys (see the module docstring)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.waiting = f"{prefix}:waiting"
        self.released = f"{prefix}:released"
        self.running = f"{prefix}:running"
        self.finished = f"{prefix}:finished"
        self.seq = f"{prefix}:seq"

    def job(self, job_id: str, part: str | None = None) -> str:
        return f"{self.prefix}:job:{job_id}" + (f":{part}" if part else "")

    def image(self, job_id: str, n: int) -> str:
        return self.job(job_id, f"img:{n}")

    def user(self, user_id: int | str) -> str:
        return f"{self.prefix}:user:{user_id}"


def png(image: Image.Image) -> bytes:
    """Lossless and quick to write: pictures cross Redis as PNG at the lowest compression."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def unpng(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB") if image.mode != "RGB" else image


def progress_json(progress: Progress) -> str:
    """Progress without its preview (previews travel as PNG under their own key); its losses read here."""
    return json.dumps(dataclasses.asdict(dataclasses.replace(progress, preview=None, losses=dict(progress.losses))))


def progress_from(text: str | None) -> Progress | None:
    if not text:
        return None
    values = json.loads(text)
    return (ClipProgress if "frames" in values else Progress)(**{**values, "size": tuple(values["size"])})


def result_json(result: Result) -> str:
    return json.dumps({"settings": dataclasses.asdict(result.settings), "device": result.device,
                       "elapsed": result.elapsed, "steps": result.steps, "losses": result.losses})


def result_from(text: str, image: Image.Image, frames: tuple[Image.Image, ...] = ()) -> Result:
    values = json.loads(text)
    return Result(image=image, settings=settings_of(values["settings"]), device=values["device"],
                  elapsed=values["elapsed"], steps=values["steps"], losses=values["losses"], frames=frames)


# Lua: the number of a job's last picture (records from before mask/init/later_frames count those as 0).
LAST_PICTURE = """
local function last_picture(record)
  local function count(name) return tonumber(redis.call('HGET', record, name) or '0') end
  return count('styles') + count('mask') + count('init') + count('later_frames')
end
"""

# Lua: give a live job's record and every picture `keep` (a record field) more seconds.
TOUCH = LAST_PICTURE + """
local function touch(record)
  local keep = redis.call('HGET', record, 'keep')
  redis.call('EXPIRE', record, keep)
  for n = 0, last_picture(record) do redis.call('EXPIRE', record .. ':img:' .. n, keep) end
end
"""


def make_app(redis_url: str | None = None) -> Celery:
    """The Celery app, Redis as broker and result store; the same settings on the bot and the workers."""
    url = redis_url or os.environ.get("STYLIZE_REDIS_URL") or DEFAULT_REDIS_URL
    app = Celery("stylize", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        task_default_queue=QUEUE,
        task_serializer="json", result_serializer="json", accept_content=["json"],
        # One job at a time per worker, acknowledged only when it is over: a job whose worker dies
        # goes back to the queue instead of being lost.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=1,
        worker_cancel_long_running_tasks_on_connection_loss=False,  # never stop a GPU job mid-step
        # A pool process loads the VGG-19 (worker_process_init) before it reports for work; past Celery's
        # default 4 s the pool kills and replaces it, forever, and the worker never paints.
        worker_proc_alive_timeout=120,
        task_track_started=True,
        result_expires=86400,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        redis_socket_connect_timeout=3,
        worker_send_task_events=True, task_send_sent_event=True,  # what Flower shows
    )
    app.task(name=TASK, bind=True, acks_late=True, reject_on_worker_lost=True)(_paint_task)
    return app


# ------------------------------------------------------------------------------------ worker side

_CLAIM = TOUCH + """
-- KEYS: record, released, running, beat, waiting
-- ARGV: id, worker, pid, now, beat_ttl, max_attempts, note, batched (the worker whose batch it joins, or '')
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'gone', 0} end
if status == 'done' or status == 'failed' or status == 'cancelled' then return {'finished', 0} end
if status == 'queued' then return {'early', 0} end
touch(KEYS[1])
if status == 'running' then
  if redis.call('EXISTS', KEYS[4]) == 1 then return {'busy', 0} end
  local attempt = tonumber(redis.call('HGET', KEYS[1], 'attempt') or '1')
  if attempt >= tonumber(ARGV[6]) then return {'exhausted', attempt} end
  attempt = attempt + 1
  redis.call('HSET', KEYS[1], 'attempt', attempt, 'worker', ARGV[2], 'pid', ARGV[3], 'note', ARGV[7],
             'started', ARGV[4], 'batched', ARGV[8])
  redis.call('SET', KEYS[4], ARGV[2], 'EX', ARGV[5])
  return {'run', attempt}
end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'running', 'attempt', 1, 'worker', ARGV[2], 'pid', ARGV[3],
           'started', ARGV[4], 'note', '', 'batched', ARGV[8])
redis.call('SET', KEYS[4], ARGV[2], 'EX', ARGV[5])
return {'run', 1}
"""

_FINISH = TOUCH + """
-- KEYS: record, running, finished, beat, cancel   ARGV: id, attempt, status, error, result, progress, now, prefix
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
if redis.call('HGET', KEYS[1], 'attempt') ~= ARGV[2] then return 0 end
touch(KEYS[1])  -- `keep` seconds for the bot to deliver it
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'error', ARGV[4], 'result', ARGV[5], 'finished', ARGV[7], 'note', '')
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'progress', ARGV[6]) end
local user = redis.call('HGET', KEYS[1], 'user_id')
redis.call('SREM', ARGV[8] .. ':user:' .. user, ARGV[1])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1])
redis.call('DEL', KEYS[4], KEYS[5])
return 1
"""

_BEAT = TOUCH + """
-- KEYS: record, beat, cancel   ARGV: worker, beat_ttl   → {1, the cancel reason or nil}, or {0}: the record is gone
if redis.call('HEXISTS', KEYS[1], 'status') == 0 then return {0} end
touch(KEYS[1])
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
return {1, redis.call('GET', KEYS[3])}
"""

_REPORT = """
-- KEYS: record, preview   ARGV: progress, preview PNG or '', keep   (nothing once the record is gone)
if redis.call('HEXISTS', KEYS[1], 'status') == 0 then return 0 end
redis.call('HSET', KEYS[1], 'progress', ARGV[1])
if ARGV[2] ~= '' then
  redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
  redis.call('HINCRBY', KEYS[1], 'preview_v', 1)
end
return 1
"""


class _Worker:
    """Per-process state: the device, the painter, the Redis client (made after the fork)."""

    def __init__(self) -> None:
        self.runner: Runner | None = None
        self.batching: Batching | None = None
        self.redis: Any = None
        self.url: str | None = None
        self.configure()

    def configure(self) -> None:
        """The worker's settings from its environment (main() puts the command line's flags there first)."""
        self.device = os.environ.get("STYLIZE_DEVICE", "auto")
        self.beat_ttl = float(os.environ.get("STYLIZE_BEAT_TTL", "6"))
        self.batch_size = int(os.environ.get("STYLIZE_BATCH_SIZE") or 1)  # as the bot's [jobs] batch_size
        self.batch_wait = float(os.environ.get("STYLIZE_BATCH_WAIT") or 0.05)

    def ready(self, url: str) -> None:
        """Load what a job needs, once per process (worker_process_init does it before the first job)."""
        if self.runner is None:
            import torch

            from engine import load_vgg, pick_device

            threads = os.environ.get("STYLIZE_TORCH_THREADS")
            if threads:
                torch.set_num_threads(int(threads))
            device = str(pick_device(self.device))
            started = time.perf_counter()
            load_vgg(device)
            self.device = device
            self.runner = _load_runner(os.environ.get("STYLIZE_RUNNER", "bot.jobs.base:engine_runner"))(device)
            if self.batch_size > 1:  # a batch may use this device's memory (engine.memory: the sum of its jobs)
                from engine.memory import gpu_bytes, machine_bytes

                budget = gpu_bytes(device) if device.startswith("cuda") else machine_bytes()
                self.batching = engine_batching(device, self.batch_size, self.batch_wait, budget)
            log.info("worker process %d ready on %s (VGG-19 loaded in %.1f s)", os.getpid(), device,
                     time.perf_counter() - started)
        if self.redis is None or url != self.url:
            import redis

            self.redis = redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30,
                                              health_check_interval=30)
            self.url = url
            self.claim = self.redis.register_script(_CLAIM)
            self.finish = self.redis.register_script(_FINISH)
            self.beat = self.redis.register_script(_BEAT)
            self.report = self.redis.register_script(_REPORT)


_worker = _Worker()


def _load_runner(spec: str) -> Callable[[str], Runner]:
    """'module:factory' → factory(device) → Runner (tests swap in a painter they can hold)."""
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


@signals.worker_process_init.connect
def _warm_up(**_: Any) -> None:
    """Each pool process loads the VGG-19 before it takes a job (not again per job)."""
    app = _current_app
    _worker.ready(app.conf.broker_url if app is not None else DEFAULT_REDIS_URL)


def _paint_task(task: Any, job_id: str, prefix: str) -> dict[str, Any]:
    """Celery task: paint job `job_id` of the bot whose keys start with `prefix`."""
    _worker.ready(task.app.conf.broker_url)
    return paint(job_id, Keys(prefix), hostname=task.request.hostname or socket.gethostname())


def paint(job_id: str, keys: Keys, *, hostname: str) -> dict[str, Any]:
    """Claim the job, paint it (in a batch with released jobs of its shape when the worker batches), store
    each outcome. Returns what Celery stores as the task's result: this message's job's outcome."""
    r = _worker.redis
    me = f"{hostname}/{os.getpid()}"
    deadline = time.monotonic() + _worker.beat_ttl + 2
    while True:  # a redelivered message: wait for the dead worker's beat to expire before taking over
        verdict, attempt = _claim(r, keys, job_id, me)
        if verdict != "busy" or time.monotonic() > deadline or r.hget(keys.job(job_id), "batched"):
            break  # a job in a live worker's batch is that worker's: no need to wait for its beat
        time.sleep(0.25)
    if verdict in ("busy", "gone", "finished", "early"):
        log.info("job %s: %s, nothing to do", job_id, verdict)
        return {"job": job_id, "outcome": verdict}
    if verdict == "exhausted":
        _finish(r, keys, job_id, attempt, Status.FAILED, GAVE_UP)
        return {"job": job_id, "outcome": "failed", "attempt": attempt}
    leader = _started(r, keys, job_id, attempt, me)
    if isinstance(leader, dict):
        return leader
    batch = [leader, *_companions(r, keys, leader, me)]
    log.info("job %s: painting (attempt %d) for user %s%s", job_id, attempt, leader.job.user_id,
             f", in a batch of {len(batch)}" if len(batch) > 1 else "")
    try:  # the beat goes on until the outcome is stored: nobody takes over a job that is only saving
        try:
            if len(batch) == 1:
                assert _worker.runner is not None
                leader.conclude(_worker.runner(leader.job, leader.reporter, leader.cancel))
            else:
                assert _worker.batching is not None
                _worker.batching.runner([(p.job, p.reporter, p.cancel, p.conclude) for p in batch])
        except Exception as error:
            for painting in batch:
                painting.conclude(error)  # those that ended already keep their outcome
    finally:
        for painting in batch:
            painting.watch.stop()
    return leader.outcome or {"job": job_id, "outcome": "failed", "attempt": attempt}


class _Painting:
    """A claimed job on this worker: its cancel event, beat and progress, and (once stored) its outcome."""

    def __init__(self, r: Any, keys: Keys, job: Job, attempt: int, timeout: float | None, keep: int, me: str) -> None:
        self.r, self.keys, self.job, self.attempt, self.keep = r, keys, job, attempt, keep
        self.timeout = timeout
        self.cancel = threading.Event()
        self.watch = _Watch(keys, job, self.cancel, timeout, me, _worker.beat_ttl)
        self.reporter = _Reporter(keys, job, keep)
        self.outcome: dict[str, Any] | None = None
        self.watch.start()

    def conclude(self, outcome: Result | BaseException) -> None:
        """Store the job's result or why it ended (once; from the painting thread, the moment it is known)."""
        if self.outcome is not None:
            return
        r, keys, job_id, attempt = self.r, self.keys, self.job.id, self.attempt
        if isinstance(outcome, BaseException):
            if isinstance(outcome, Cancelled) and self.watch.expired:
                status, why = Status.FAILED, timeout_error(self.timeout)
            else:
                status, why = settle(self.job, outcome)
            _persist(lambda: _finish(r, keys, job_id, attempt, status, why, progress=self.reporter.last), job_id)
            self.outcome = {"job": job_id, "outcome": status.value, "attempt": attempt}
        else:
            image, frames = png(outcome.image), [png(frame) for frame in outcome.frames]

            def store() -> None:
                r.set(keys.job(job_id, "result"), image, ex=self.keep)
                if frames:  # like the result: a list under its own key, expiring with the record
                    with r.pipeline() as pipe:
                        pipe.delete(keys.job(job_id, "frames")).rpush(keys.job(job_id, "frames"), *frames)
                        pipe.expire(keys.job(job_id, "frames"), self.keep).execute()
                _finish(r, keys, job_id, attempt, Status.DONE, "", result=result_json(outcome),
                        progress=self.reporter.last)

            _persist(store, job_id)
            log.info("job %s: done in %.1f s", job_id, outcome.elapsed)
            self.outcome = {"job": job_id, "outcome": "done", "attempt": attempt, "elapsed": outcome.elapsed}
        self.watch.stop()


def _job(r: Any, keys: Keys, job_id: str) -> tuple[Job, dict[str, str]] | None:
    """The job as its record and pictures in Redis hold it (None if a picture is missing)."""
    fields = {k.decode(): v.decode() for k, v in r.hgetall(keys.job(job_id)).items()}
    if "settings" not in fields:
        return None
    styles, masked, started, later = (int(fields.get(name) or 0) for name in ("styles", "mask", "init", "later_frames"))
    pictures = r.mget([keys.image(job_id, n) for n in range(1 + styles + masked + started + later)])
    if any(p is None for p in pictures):
        return None
    content, durations = unpng(pictures[0]), tuple(json.loads(fields.get("durations") or "[]"))
    first_frame = 1 + styles + masked + started
    job = Job(user_id=int(fields["user_id"]), channel_id=int(fields["channel_id"]),
              guild_id=int(fields["guild_id"]) if fields.get("guild_id") else None,
              message_id=int(fields["message_id"]) if fields.get("message_id") else None,
              content=content, styles=tuple(unpng(p) for p in pictures[1:1 + styles]),
              mask=unpng(pictures[1 + styles]) if masked else None,
              init=unpng(pictures[first_frame - 1]) if started else None,
              frames=(content, *(unpng(p) for p in pictures[first_frame:])) if durations else (),
              durations_ms=durations, settings=settings_from(fields["settings"]), id=job_id, status=Status.RUNNING)
    return job, fields


def _started(r: Any, keys: Keys, job_id: str, attempt: int, me: str) -> _Painting | dict[str, Any]:
    """A job just claimed, ready to paint — or the outcome already stored (cancelled meanwhile, pictures lost)."""
    reason = r.get(keys.job(job_id, "cancel"))
    if reason is not None:
        _finish(r, keys, job_id, attempt, Status.CANCELLED, reason.decode())
        return {"job": job_id, "outcome": "cancelled", "attempt": attempt}
    loaded = _job(r, keys, job_id)
    if loaded is None:
        _finish(r, keys, job_id, attempt, Status.FAILED, LOST_PICTURES)
        return {"job": job_id, "outcome": "failed", "attempt": attempt}
    job, fields = loaded
    timeout = float(fields["timeout"]) if fields.get("timeout") else None
    return _Painting(r, keys, job, attempt, timeout, int(float(fields.get("keep") or 86400)), me)


def _companions(r: Any, keys: Keys, leader: _Painting, me: str) -> list[_Painting]:
    """Released jobs of the leader's shape that join its batch, in the order the bot released them (its fair
    order), up to the batch size and while the batch fits; waiting at most the batch's moment for them."""
    batching = _worker.batching
    if batching is None or batching.size < 2 or (key := batching.key(leader.job)) is None:
        return []
    joined: list[_Painting] = []
    seen, deadline = {leader.job.id}, time.monotonic() + batching.wait
    while True:
        for raw in r.zrange(keys.released, 0, -1):
            job_id = raw.decode()
            if job_id in seen or 1 + len(joined) >= batching.size:
                continue
            seen.add(job_id)
            loaded = _job(r, keys, job_id)
            if loaded is None or batching.key(loaded[0]) != key or not batching.fits(
                    [leader.job, *(p.job for p in joined), loaded[0]]):
                continue
            verdict, attempt = _claim(r, keys, job_id, me, batched=True)  # its own message is then dropped at once
            if verdict != "run":
                continue
            painting = _started(r, keys, job_id, attempt, me)
            if isinstance(painting, _Painting):
                joined.append(painting)
        if 1 + len(joined) >= batching.size or time.monotonic() >= deadline:
            return joined
        time.sleep(0.02)


def _persist(store: Callable[[], None], job_id: str, patience: float = 300) -> None:
    """Store a job's outcome, retrying while Redis is away (up to `patience` s): a finished painting
    is not thrown away because the store blinked."""
    import redis

    deadline = time.monotonic() + patience
    delay = 0.5
    while True:
        try:
            store()
            return
        except (redis.RedisError, OSError) as error:
            if time.monotonic() > deadline:
                raise
            log.warning("job %s: cannot store the outcome yet (%s); retrying", job_id, error)
            time.sleep(delay)
            delay = min(delay * 2, 10)


def _claim(r: Any, keys: Keys, job_id: str, me: str, batched: bool = False) -> tuple[str, int]:
    """Take the job (see _CLAIM); `batched`: into this worker's batch, which its own message then leaves alone."""
    verdict, attempt = _worker.claim(
        keys=[keys.job(job_id), keys.released, keys.running, keys.job(job_id, "beat"), keys.waiting],
        args=[job_id, me, os.getpid(), time.time(), max(1, round(_worker.beat_ttl)), MAX_ATTEMPTS, RETRY_NOTE,
              me if batched else ""])
    return verdict.decode(), int(attempt)


def _finish(r: Any, keys: Keys, job_id: str, attempt: int, status: Status, error: str, *, result: str = "",
            progress: Progress | None = None) -> None:
    """Record the outcome — unless another worker took the job over meanwhile (then it is theirs)."""
    _worker.finish(keys=[keys.job(job_id), keys.running, keys.finished, keys.job(job_id, "beat"),
                         keys.job(job_id, "cancel")],
                   args=[job_id, attempt, status.value, error, result,
                         progress_json(progress) if progress else "", time.time(), keys.prefix])


class _Reporter:
    """The engine's progress callback: the latest step into the record (throttled), every preview as PNG."""

    def __init__(self, keys: Keys, job: Job, keep: int) -> None:
        self.keys, self.job, self.keep = keys, job, keep
        self.last: Progress | None = None
        self._written = 0.0

    def __call__(self, progress: Progress) -> None:
        self.last = progress
        now = time.monotonic()
        if progress.preview is None and progress.step < progress.total and now - self._written < PROGRESS_EVERY:
            return
        self._written = now
        preview = png(progress.preview) if progress.preview is not None else b""
        try:
            _worker.report(keys=[self.keys.job(self.job.id), self.keys.job(self.job.id, "preview")],
                           args=[progress_json(progress), preview, self.keep])
        except Exception as error:  # Redis away for a moment: the painting goes on, the bar catches up later
            log.warning("job %s: could not store progress: %s", self.job.id, error)


class _Watch(threading.Thread):
    """While a job paints: keep its beat and its record alive, and set the cancel event when asked to,
    out of time, or once its record is gone (nobody could receive the picture).

    The engine checks the event before every step, so a job stops between steps — the GPU process
    itself is never killed."""

    def __init__(self, keys: Keys, job: Job, cancel: threading.Event, timeout: float | None,
                 me: str, ttl: float) -> None:
        super().__init__(name=f"stylize-watch-{job.id}", daemon=True)
        self.keys, self.job, self.cancel, self.timeout, self.me, self.ttl = keys, job, cancel, timeout, me, ttl
        self.expired = False
        self._stop_event = threading.Event()
        self._start = time.monotonic()

    def run(self) -> None:
        interval = max(0.2, self.ttl / 4)
        while not self._stop_event.wait(interval):
            try:
                answer = _worker.beat(keys=[self.keys.job(self.job.id), self.keys.job(self.job.id, "beat"),
                                            self.keys.job(self.job.id, "cancel")],
                                      args=[self.me, max(1, round(self.ttl))])
            except Exception as error:
                log.warning("job %s: Redis unreachable from the worker: %s", self.job.id, error)
                continue
            reason = answer[1] if answer[0] else EXPIRED.encode()  # gone: nobody could receive the picture
            if reason is not None and not self.cancel.is_set():
                self.job.error = reason.decode()
                self.cancel.set()
            if self.timeout and time.monotonic() - self._start > self.timeout and not self.cancel.is_set():
                self.expired = True
                self.cancel.set()

    def stop(self) -> None:
        self._stop_event.set()


# ---------------------------------------------------------------------------------------- the CLI

def main(argv: list[str] | None = None) -> int:
    """`stylize-worker`: one Celery worker process that paints on one GPU, one job at a time."""
    parser = argparse.ArgumentParser(
        prog="stylize-worker",
        description="Paint Stylize jobs from Redis on one GPU (start one per GPU, on any number of machines).",
        epilog="Arguments after -- go to `celery worker` unchanged (e.g. -- --without-heartbeat).")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--gpu", type=int, metavar="N",
                       help="paint on GPU number N (sets CUDA_VISIBLE_DEVICES=N)")
    where.add_argument("--device", default=None,
                       help="torch device instead: auto (default), cpu, cuda, cuda:1, mps")
    parser.add_argument("--redis-url", default=None,
                        help=f"the bot's Redis (default: $STYLIZE_REDIS_URL, else {DEFAULT_REDIS_URL})")
    parser.add_argument("--name", default=None, help="worker name (default: gpuN@host, or stylize@host)")
    parser.add_argument("--torch-threads", type=int, default=None, help="CPU threads for torch (CPU workers)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="paint up to N released jobs of one shape as one batch (the bot's [jobs] batch_size)")
    parser.add_argument("--batch-wait", type=float, default=None,
                        help="seconds a batch waits for more jobs of its shape (the bot's [jobs] batch_wait)")
    parser.add_argument("--loglevel", default="INFO")
    args, extra = parser.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]
    if args.gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(args.gpu)  # before CUDA starts: this process sees one GPU
        os.environ["STYLIZE_DEVICE"] = "cuda"
    elif args.device:
        os.environ["STYLIZE_DEVICE"] = args.device
    if args.torch_threads:
        os.environ["STYLIZE_TORCH_THREADS"] = str(args.torch_threads)
    if args.batch_size is not None:
        os.environ["STYLIZE_BATCH_SIZE"] = str(args.batch_size)
    if args.batch_wait is not None:
        os.environ["STYLIZE_BATCH_WAIT"] = str(args.batch_wait)
    _worker.configure()
    url = args.redis_url or os.environ.get("STYLIZE_REDIS_URL") or DEFAULT_REDIS_URL
    app.conf.update(broker_url=url, result_backend=url)
    name = args.name or (f"gpu{args.gpu}@%h" if args.gpu is not None else "stylize@%h")
    app.worker_main(["worker", "--pool=prefork", "--concurrency=1", f"--queues={QUEUE}", f"--hostname={name}",
                     f"--loglevel={args.loglevel}", "--task-events", "--without-gossip", "--without-mingle",
                     *extra])
    return 0


app = make_app()  # `celery --app bot.jobs.worker worker …` finds it here; STYLIZE_REDIS_URL picks the Redis
_current_app: Celery | None = app

if __name__ == "__main__":
    sys.exit(main())
