"""`CeleryBackend`: the bot's half of the Celery + Redis job queue (the workers' half is bot.jobs.worker).

The bot keeps the queue's order and limits; Celery only ever holds the jobs that are about to run.

* submit() sends the pictures (PNG) and the job record to one Lua script, so the checks and the insert
  cannot race: it refuses the job over the per-user limit or the global cap, or stores it (expiring
  keys) and puts it in the `waiting` sorted set. Its score is (round, arrival): the round is how many
  jobs the user already had pending, exactly as in the in-process backend, so users take turns and
  each user's own jobs keep their order. The bot picks the job's id, and the script answers a second
  submit of that id with the job's place: a submit whose answer timed out (it may have got through)
  is sent once more before the user hears "busy" — never queued or painted twice. "Busy" is then the
  truth: the job is withdrawn (`_withdraw`): a tombstone under its id makes a submit that lands later
  refuse it, whatever of it got through is dropped (a worker already painting it stops at its next
  beat), and until Redis has taken that, this process never hands the job to Celery.
* A dispatcher task releases waiting jobs to Celery in that order, keeping at most `workers` jobs
  released-or-running. With `workers` = the number of GPU workers, a job goes to Celery only when a
  worker is about to be free, so a newcomer's first job still overtakes a heavy user's backlog; the
  price is at most `workers` jobs whose order is fixed early. (Celery's own queue is FIFO: handing it
  everything at once would lose the fair order.) With [jobs] batch_size above 1 (the workers' --batch-size)
  the window is `workers` × batch_size, so a worker finds the jobs of its batch released, in fair order.
* An animation's frames go in as more pictures of the job, with its record's expiry (at most MAX_JOB_BYTES of
  PNG in all); its painted frames come back like a timelapse's. The workers must know this: upgrade them with
  the bot (an older worker would paint the first frame only).
* Progress, previews, the outcome, the result picture and its timelapse frames come back through Redis; the dispatcher
  notices finished jobs every `poll` seconds and wakes their result() calls.
* cancel() removes a job that has not started, or sets a flag the worker checks every beat (about a
  second) — the engine then stops before its next step; the GPU process is never killed.
* Records expire (`keep`); a live job's record is refreshed at release, at claim and at every worker
  beat. A job whose record is gone anyway — expired, FLUSHALL, a Redis restarted without persistence
  — or was left partial by an older version is lost: the bot drops its id from every set (so it holds
  no worker slot) and its result() ends FAILED with EXPIRED. The dispatcher notices it in the sets at
  once, or — for a job it follows — once the record has been missing for LOST_AFTER polls in a row;
  as a backstop result() gives up after `keep` seconds without any sign of the job.
* Nothing lives only in this process. close() leaves every job where it is (result() calls end
  with Detached); recover() in the next run picks them all up again, delivered or not.
* A worker that dies mid-job: Celery gives its message to another worker, which takes the job
  over once (see bot.jobs.worker). If a whole machine vanished, its message would come back only
  after Celery's visibility timeout, so the dispatcher also re-sends a running job whose beat has
  been gone for `stall_after` seconds.
* If Redis is down, submit() and jobs() raise QueueFull with a "busy, try later" text; snapshot()
  answers from its last good reading; result() keeps waiting. Every Redis call has a time limit,
  and publishing to Celery (a blocking client) runs in a thread: the event loop never hangs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from PIL import Image
from redis.exceptions import RedisError

from .base import (EXPIRED, SHUTDOWN, Detached, Job, JobBackend, QueueFull, Snapshot, Status, queue_full,
                   settings_from, settings_json, too_many)
from .worker import (LAST_PICTURE, MAX_ATTEMPTS, RETRY_NOTE, TASK, TOUCH, Keys, make_app, png, progress_from,
                     result_from, unpng)

log = logging.getLogger(__name__)

BUSY = "I can't reach the job queue right now — I'm busy, please try again in a few minutes."
STALL_NOTE = "the worker painting this stopped responding — retrying on another worker"
NO_PICTURE = Image.new("RGB", (1, 1))  # jobs() and recover() copies: the pictures stay in Redis
FINISHED = {s.value for s in Status if s.finished}
LOST_AFTER = 3  # polls in a row without its record: a followed job is lost
MAX_JOB_BYTES = 256 * 2**20  # a job's pictures in Redis (PNG): an animation's frames are the most of it

_SUBMIT = """
-- KEYS: record, waiting, released, user set, seq
-- ARGV: id, per_user, queue_size, keep, prefix, n, n pictures (PNG), field, value, …
if redis.call('EXISTS', KEYS[1] .. ':withdrawn') == 1 then return {'withdrawn', 0} end  -- landed too late
if redis.call('HEXISTS', KEYS[1], 'status') == 1 then  -- sent again after a timeout: it got through
  local rank = redis.call('ZRANK', KEYS[2], ARGV[1])
  if rank then return {'ok', redis.call('ZCARD', KEYS[3]) + rank + 1} end
  return {'ok', (redis.call('ZRANK', KEYS[3], ARGV[1]) or 0) + 1}
end
for _, other in ipairs(redis.call('SMEMBERS', KEYS[4])) do  -- a record that expired no longer counts
  if redis.call('HEXISTS', ARGV[5] .. ':job:' .. other, 'status') == 0 then redis.call('SREM', KEYS[4], other) end
end
local mine = redis.call('SCARD', KEYS[4])
if mine >= tonumber(ARGV[2]) then return {'user', mine} end
local queued = redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3])
if queued >= tonumber(ARGV[3]) then return {'full', queued} end
local pictures = tonumber(ARGV[6])
for n = 1, pictures do redis.call('SET', KEYS[1] .. ':img:' .. (n - 1), ARGV[6 + n], 'EX', ARGV[4]) end
local seq = redis.call('INCR', KEYS[5])
redis.call('HSET', KEYS[1], 'status', 'queued', 'round', mine, 'seq', seq, unpack(ARGV, 7 + pictures))
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('ZADD', KEYS[2], mine * 1e12 + seq, ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
return {'ok', redis.call('ZCARD', KEYS[3]) + redis.call('ZRANK', KEYS[2], ARGV[1]) + 1}
"""

_RELEASE = TOUCH + """
-- KEYS: waiting, released, seq, running   ARGV: prefix, window, now
if redis.call('ZCARD', KEYS[2]) + redis.call('SCARD', KEYS[4]) >= tonumber(ARGV[2]) then return false end
local popped = redis.call('ZPOPMIN', KEYS[1])
if #popped == 0 then return false end
local id = popped[1]
local record = ARGV[1] .. ':job:' .. id
local status = redis.call('HGET', record, 'status')
if status ~= 'queued' then return {id, status or 'gone'} end
touch(record)
redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), id)
redis.call('HSET', record, 'status', 'released', 'released', ARGV[3])
return {id, 'ok'}
"""

_CANCEL = """
-- KEYS: record, waiting, released, finished, cancel   ARGV: id, reason, now, prefix, keep
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'queued' or status == 'released' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('SREM', ARGV[4] .. ':user:' .. redis.call('HGET', KEYS[1], 'user_id'), ARGV[1])
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'error', ARGV[2], 'finished', ARGV[3])
  redis.call('ZADD', KEYS[4], ARGV[3], ARGV[1])
  return 2
end
if status == 'running' and redis.call('EXISTS', KEYS[5]) == 0 then
  redis.call('SET', KEYS[5], ARGV[2], 'EX', ARGV[5])
  return 1
end
return 0
"""

_MARK = """
-- KEYS: record   ARGV: field, value, …   (only on a whole record: never brings back one that expired)
if redis.call('HEXISTS', KEYS[1], 'status') == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

_DROP = LAST_PICTURE + """
-- KEYS: record, waiting, released, running, finished   ARGV: id, prefix, user id or '', pictures after the
-- photo (styles, then the mask, the starting picture and an animation's later frames if any) if no record,
-- and '' or the seconds a withdrawn job's tombstone lasts (a submit of that id landing later is refused)
if ARGV[5] ~= '' then redis.call('SET', KEYS[1] .. ':withdrawn', 1, 'EX', ARGV[5]) end
local user = redis.call('HGET', KEYS[1], 'user_id') or ARGV[3]
if user ~= '' then redis.call('SREM', ARGV[2] .. ':user:' .. user, ARGV[1]) end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[4], ARGV[1])
redis.call('ZREM', KEYS[5], ARGV[1])
local last = redis.call('HEXISTS', KEYS[1], 'styles') == 1 and last_picture(KEYS[1]) or tonumber(ARGV[4])
for n = 0, last do redis.call('DEL', KEYS[1] .. ':img:' .. n) end
redis.call('DEL', KEYS[1], KEYS[1] .. ':result', KEYS[1] .. ':frames', KEYS[1] .. ':preview', KEYS[1] .. ':beat',
           KEYS[1] .. ':cancel')
return 1
"""


@dataclass(eq=False)
class _Followed:
    """A job this run follows: its end, who asked (a copy without pictures) and when its record was last seen."""

    job: Job
    done: asyncio.Future[None]
    seen: float  # monotonic
    misses: int = 0  # polls in a row without its record

    def expired(self) -> Job:
        return dataclasses.replace(self.job, status=Status.FAILED, error=EXPIRED)


_PENDING = """
-- KEYS: user set, waiting, released   ARGV: prefix      (what _SUBMIT counts, read-only)
local mine = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  mine = mine + redis.call('HEXISTS', ARGV[1] .. ':job:' .. id, 'status')
end
return {mine, redis.call('ZCARD', KEYS[2]) + redis.call('ZCARD', KEYS[3])}
"""


class CeleryBackend(JobBackend):
    """Jobs on Celery GPU workers through Redis; fair order, per-user limit and queue cap kept in Redis."""

    def __init__(self, redis_url: str, *, prefix: str = "stylize", workers: int = 1, queue_size: int = 20,
                 per_user: int = 2, timeout: float | None = None, keep: float = 86400.0, poll: float = 0.5,
                 op_timeout: float = 5.0, stall_after: float = 60.0, batch_size: int = 1) -> None:
        self._url = redis_url
        self._keys = Keys(prefix)
        self._window = workers * batch_size  # a worker that batches takes up to batch_size released jobs
        self._queue_size = queue_size
        self._per_user = per_user
        self._timeout = timeout
        self._keep = int(keep)
        self._poll = poll
        self._op_timeout = op_timeout
        self._stall_after = stall_after
        self._redis: Any = None
        self._celery: Any = None
        self._publisher: ThreadPoolExecutor | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._followed: dict[str, _Followed] = {}
        self._last: dict[str, Snapshot] = {}  # last good snapshot, shown while Redis is away
        self._previews: dict[str, tuple[int, Image.Image]] = {}
        self._stalled: dict[str, float] = {}
        self._reached = 0.0  # monotonic time of the last Redis answer
        self._closing = False
        self._recovered = False
        self._withdrawn: dict[str, asyncio.Task[None]] = {}  # told "busy"; Redis may still hold them

    # ------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        self._redis = aioredis.Redis.from_url(self._url, socket_connect_timeout=2, socket_timeout=self._op_timeout,
                                              health_check_interval=15)
        self._celery = make_app(self._url)
        self._publisher = ThreadPoolExecutor(1, thread_name_prefix="stylize-publish")
        self._submit = self._redis.register_script(_SUBMIT)
        self._release = self._redis.register_script(_RELEASE)
        self._cancel = self._redis.register_script(_CANCEL)
        self._marker = self._redis.register_script(_MARK)
        self._dropper = self._redis.register_script(_DROP)
        self._pending = self._redis.register_script(_PENDING)
        self._reached = time.monotonic()
        self._dispatcher = asyncio.create_task(self._dispatch(), name="stylize-dispatcher")

    async def close(self, reason: str = SHUTDOWN) -> None:
        """Stop following jobs; they stay queued or running in Redis and Celery for the next run."""
        if self._closing or self._dispatcher is None:
            return
        self._closing = True
        self._dispatcher.cancel()
        await asyncio.gather(self._dispatcher, return_exceptions=True)
        if self._withdrawn:  # a last chance for withdrawals still waiting for Redis
            await asyncio.wait(self._withdrawn.values(), timeout=self._op_timeout)
            for task in self._withdrawn.values():
                task.cancel()
        for followed in self._followed.values():
            if not followed.done.done():
                followed.done.set_exception(Detached())
                followed.done.exception()  # retrieved: nobody waiting on it is not an error
        if self._publisher is not None:
            self._publisher.shutdown(wait=False, cancel_futures=True)
        await self._redis.aclose()

    def alive(self) -> bool:
        return (self._dispatcher is not None and not self._dispatcher.done() and not self._closing
                and time.monotonic() - self._reached < max(30.0, 6 * self._poll))

    # --------------------------------------------------------------------------------- queue

    async def submit(self, job: Job) -> int:
        if self._closing or self._dispatcher is None:
            raise QueueFull("I'm not taking jobs right now — " + SHUTDOWN)
        keys = self._keys
        loop = asyncio.get_running_loop()
        extra = tuple(p for p in (job.mask, job.init) if p is not None)  # after the styles: mask, then start
        pictures = await loop.run_in_executor(
            None, lambda: [png(p) for p in (job.content, *job.styles, *extra, *job.frames[1:])])
        size = sum(map(len, pictures))
        if size > MAX_JOB_BYTES:
            raise QueueFull(f"That job's pictures take {size / 2**20:.0f} MiB, more than the queue carries "
                            f"({MAX_JOB_BYTES / 2**20:.0f} MiB) — send fewer frames, or ask for a smaller size.")
        record = {
            "user_id": job.user_id, "channel_id": job.channel_id, "guild_id": job.guild_id or "",
            "message_id": job.message_id or "", "status_message_id": job.status_message_id or "",
            "settings": settings_json(job.settings), "given": json.dumps(sorted(job.given)),
            "styles": len(job.styles), "mask": int(job.mask is not None), "init": int(job.init is not None),
            "later_frames": max(0, len(job.frames) - 1), "durations": json.dumps(job.durations_ms),
            "timeout": self._timeout or "", "keep": self._keep,
            "created": time.time(), "attempt": 0,
        }
        args = [job.id, self._per_user, self._queue_size, self._keep, keys.prefix, len(pictures), *pictures,
                *(str(v) for pair in record.items() for v in pair)]
        for attempt in (1, 2):  # the script knows the id: a second try cannot queue the job twice
            try:
                verdict, number = await self._call(self._submit(
                    keys=[keys.job(job.id), keys.waiting, keys.released, keys.user(job.user_id), keys.seq], args=args))
                break
            except (RedisError, OSError, asyncio.TimeoutError) as error:
                log.warning("submit %s (try %d): Redis unreachable or slow: %r", job.id, attempt, error)
        else:
            self._withdraw(job)
            raise QueueFull(BUSY)
        verdict = verdict.decode()
        if verdict != "ok":
            raise (too_many(int(number)) if verdict == "user" else queue_full(self._queue_size) if verdict == "full"
                   else QueueFull(BUSY))  # withdrawn: an earlier submit of this id timed out, so it stays out
        job.status = Status.QUEUED
        self._follow(job)
        return int(number)

    async def pending(self, user_id: int) -> tuple[int, int]:
        keys = self._keys
        try:
            mine, waiting = await self._call(self._pending(keys=[keys.user(user_id), keys.waiting, keys.released],
                                                           args=[keys.prefix]))
        except (RedisError, OSError, asyncio.TimeoutError):
            raise QueueFull(BUSY) from None
        return int(mine), int(waiting)

    async def track(self, job_id: str, status_message_id: int) -> None:
        await self._quietly(self._mark(job_id, status_message_id=status_message_id))

    async def cancel(self, job_id: str, reason: str) -> bool:
        keys = self._keys
        try:
            done = await self._call(self._cancel(
                keys=[keys.job(job_id), keys.waiting, keys.released, keys.finished, keys.job(job_id, "cancel")],
                args=[job_id, reason, time.time(), keys.prefix, self._keep]))
        except (RedisError, OSError, asyncio.TimeoutError):
            raise QueueFull(BUSY) from None
        if done == 2:  # ended here; a running job ends when its worker notices the flag
            self._wake(job_id)
        return bool(done)

    async def position(self, job_id: str) -> int | None:
        snapshot = await self.snapshot(job_id)
        if snapshot is None or snapshot.status.finished:
            return None
        return 0 if snapshot.status is Status.RUNNING else snapshot.position

    async def jobs(self) -> list[Job]:
        keys = self._keys
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.smembers(keys.running).zrange(keys.released, 0, -1).zrange(keys.waiting, 0, -1)
                running, released, waiting = await self._call(pipe.execute())
            ids = [i.decode() for i in (*running, *released, *waiting)]
            records = await self._records(ids)
        except (RedisError, OSError, asyncio.TimeoutError):
            raise QueueFull(BUSY) from None
        found = [(fields, self._job(job_id, fields)) for job_id, fields in zip(ids, records) if "status" in fields]
        runs = sorted((pair for pair in found if pair[1].status is Status.RUNNING),
                      key=lambda pair: float(pair[0].get("started") or 0))
        return [j for _, j in runs] + [j for _, j in found if j.status is Status.QUEUED]

    async def snapshot(self, job_id: str) -> Snapshot | None:
        if job_id not in self._followed:
            return None
        keys = self._keys
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(keys.job(job_id)).zrank(keys.released, job_id).zcard(keys.released)
                pipe.zrank(keys.waiting, job_id)
                fields, released_rank, released, waiting_rank = await self._call(pipe.execute())
            fields = _text(fields)
            if "status" not in fields:
                return self._last.get(job_id)
            status = _status(fields["status"])
            position = None
            if fields["status"] == "released" and released_rank is not None:
                position = released_rank + 1
            elif fields["status"] == "queued" and waiting_rank is not None:
                position = released + waiting_rank + 1
            preview = await self._preview(job_id, int(fields.get("preview_v") or 0))
        except (RedisError, OSError, asyncio.TimeoutError):
            return self._last.get(job_id)
        note = fields.get("note") or None
        if status is Status.RUNNING and job_id in self._stalled:
            note = STALL_NOTE
        snapshot = Snapshot(status, position, progress_from(fields.get("progress")), preview, note)
        self._last[job_id] = snapshot
        return snapshot

    async def result(self, job_id: str) -> Job:
        """The finished job; EXPIRED once nothing was heard of it for `keep` seconds (its record would
        have expired by then; a job that merely waits in a long queue is seen at every poll)."""
        followed = self._followed[job_id]
        while True:
            if self._closing:  # never collect (and so delete) a job once closing: the next run delivers it
                raise Detached()
            left = followed.seen + self._keep - time.monotonic()
            if left <= 0:
                log.warning("job %s: no sign of it for %d s; giving up", job_id, self._keep)
                job = followed.expired()
                await self._quietly(self._drop(job_id))
                break
            if not followed.done.done():
                try:
                    await asyncio.wait_for(asyncio.shield(followed.done), left)
                except TimeoutError:
                    continue
            try:
                job = await self._collect(job_id)
                break
            except (RedisError, OSError, asyncio.TimeoutError) as error:
                log.warning("job %s: cannot fetch its outcome yet: %s", job_id, error)
            await asyncio.sleep(self._poll)
        self._followed.pop(job_id, None)
        self._last.pop(job_id, None)
        self._previews.pop(job_id, None)
        self._stalled.pop(job_id, None)
        return job

    async def recover(self) -> list[Job]:
        """Every job of this prefix not yet delivered; waits (retrying) until Redis answers."""
        if self._recovered:
            return []
        keys = self._keys
        delay = self._poll
        while not self._closing:
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.smembers(keys.running).zrange(keys.released, 0, -1).zrange(keys.waiting, 0, -1)
                    pipe.zrange(keys.finished, 0, -1)
                    groups = await self._call(pipe.execute())
                ids = list(dict.fromkeys(i.decode() for group in groups for i in group))
                records = await self._records(ids)
                break
            except (RedisError, OSError, asyncio.TimeoutError) as error:
                log.warning("recovering jobs: Redis unreachable (%s); retrying", error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
        else:
            return []
        self._recovered = True
        found = []
        for job_id, fields in zip(ids, records):
            if "status" not in fields:  # expired meanwhile, or left partial by an older version
                await self._quietly(self._drop(job_id))
                continue
            if job_id not in self._followed:
                job = self._job(job_id, fields)
                self._follow(job)
                found.append(job)
        if found:
            log.info("re-attached to %d job(s) left by the previous run", len(found))
        return found

    # ------------------------------------------------------------------------------ internals

    def _follow(self, job: Job) -> None:
        copy = dataclasses.replace(job, content=NO_PICTURE, styles=(NO_PICTURE,) * len(job.styles),
                                   mask=None if job.mask is None else NO_PICTURE,
                                   init=None if job.init is None else NO_PICTURE,
                                   frames=(NO_PICTURE,) * len(job.frames))
        self._followed[job.id] = _Followed(copy, asyncio.get_running_loop().create_future(), time.monotonic())

    def _wake(self, job_id: str) -> None:
        followed = self._followed.get(job_id)
        if followed is not None and not followed.done.done():
            followed.done.set_result(None)

    async def _call(self, awaitable: Any) -> Any:
        result = await asyncio.wait_for(awaitable, self._op_timeout)
        self._reached = time.monotonic()
        return result

    async def _quietly(self, awaitable: Any) -> Any:
        try:
            return await self._call(awaitable)
        except (RedisError, OSError, asyncio.TimeoutError) as error:
            log.warning("Redis unreachable: %s", error)
            return None

    async def _records(self, ids: list[str]) -> list[dict[str, str]]:
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hgetall(self._keys.job(job_id))
            return [_text(fields) for fields in await self._call(pipe.execute())]

    def _job(self, job_id: str, fields: dict[str, str], content: Image.Image = NO_PICTURE,
             styles: tuple[Image.Image, ...] | None = None) -> Job:
        """A Job from its record (pictures left in Redis unless given)."""
        durations = tuple(json.loads(fields.get("durations") or "[]"))
        return Job(user_id=int(fields["user_id"]), channel_id=int(fields["channel_id"]),
                   guild_id=_int(fields.get("guild_id")), message_id=_int(fields.get("message_id")),
                   content=content, styles=styles or (NO_PICTURE,) * int(fields.get("styles") or 1),
                   settings=settings_from(fields["settings"]), mask=NO_PICTURE if _int(fields.get("mask")) else None,
                   init=NO_PICTURE if _int(fields.get("init")) else None,
                   frames=(NO_PICTURE,) * len(durations), durations_ms=durations, id=job_id,
                   status=_status(fields["status"]),
                   progress=progress_from(fields.get("progress")), error=fields.get("error") or None,
                   given=frozenset(json.loads(fields.get("given") or "[]")),
                   status_message_id=_int(fields.get("status_message_id")))

    async def _collect(self, job_id: str) -> Job:
        """The finished job with its picture; then its keys are deleted (handed over once)."""
        keys = self._keys
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.job(job_id)).get(keys.job(job_id, "result")).lrange(keys.job(job_id, "frames"), 0, -1)
            fields, data, frames = await self._call(pipe.execute())
        fields = _text(fields)
        if "status" not in fields:
            job = self._followed[job_id].expired()
        else:
            job = self._job(job_id, fields)
            if job.status is Status.DONE:
                if data is None:
                    job.status, job.error = Status.FAILED, "its picture expired before it could be delivered"
                elif job.durations_ms and len(frames) != len(job.durations_ms):  # expired, or an older worker
                    log.warning("job %s: %d of its %d painted frames came back (is every worker upgraded with the "
                                "bot?)", job_id, len(frames), len(job.durations_ms))
                    job.status, job.error = Status.FAILED, "its painted frames were lost before they could be delivered"
                else:
                    image, movie = await asyncio.get_running_loop().run_in_executor(
                        None, lambda: (unpng(data), tuple(unpng(frame) for frame in frames)))
                    job.result = result_from(fields["result"], image, movie)
            preview = self._previews.get(job_id)
            job.preview = preview[1] if preview else None
        await self._drop(job_id)
        return job

    async def _drop(self, job_id: str, who: Job | None = None, *, withdraw: bool = False) -> None:
        """Delete the job's keys and take its id out of every set (one script: nothing half-done);
        `withdraw`: also leave a tombstone that refuses a submit of this id landing later."""
        keys = self._keys
        followed = self._followed.get(job_id)
        who = who or (followed.job if followed else None)
        await self._call(self._dropper(keys=[keys.job(job_id), keys.waiting, keys.released, keys.running, keys.finished],
                                       args=[job_id, keys.prefix, who.user_id if who else "",
                                             _pictures_after_photo(who) if who else 0,
                                             self._keep if withdraw else ""]))

    def _withdraw(self, job: Job) -> None:
        """The user was told "busy" about `job`, whose submit may yet land: withdraw it, in the background
        (retrying while Redis is away), and never hand it to Celery from here meanwhile."""
        async def withdraw() -> None:
            delay = self._poll
            while True:
                try:
                    await self._drop(job.id, job, withdraw=True)
                    break
                except (RedisError, OSError, asyncio.TimeoutError) as error:
                    log.warning("withdrawing job %s: Redis unreachable (%r); retrying", job.id, error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10)
            log.info("job %s withdrawn (its submit timed out; its owner was told busy)", job.id)
            self._withdrawn.pop(job.id, None)

        self._withdrawn[job.id] = asyncio.create_task(withdraw(), name=f"stylize-withdraw-{job.id}")

    async def _expire(self, job_id: str) -> None:
        """The job's record is gone (or partial): the job is lost. Drop what is left, end its follower."""
        log.warning("job %s: its record expired or was lost; dropping the job", job_id)
        await self._drop(job_id)
        self._wake(job_id)  # result() finds no record: EXPIRED

    async def _mark(self, job_id: str, **fields: Any) -> bool:
        """Set fields of the job's record, unless it is gone — then the job expired."""
        if await self._call(self._marker(keys=[self._keys.job(job_id)],
                                         args=[str(v) for pair in fields.items() for v in pair])):
            return True
        await self._expire(job_id)
        return False

    async def _preview(self, job_id: str, version: int) -> Image.Image | None:
        """The latest preview, decoded once per version (the same object until a new one arrives)."""
        cached = self._previews.get(job_id)
        if version == 0:
            return None
        if cached is not None and cached[0] == version:
            return cached[1]
        data = await self._call(self._redis.get(self._keys.job(job_id, "preview")))
        if data is None:
            return cached[1] if cached else None
        image = await asyncio.get_running_loop().run_in_executor(None, unpng, data)
        self._previews[job_id] = (version, image)
        return image

    async def _dispatch(self) -> None:
        """Until close(): release jobs in fair order while workers are free, notice finished and stalled jobs.

        The loop checks `_closing` as well as taking close()'s cancel: on Python 3.11, asyncio.wait_for
        (inside `_call`) loses a cancel that arrives as its Redis call completes, and a dispatcher that
        only stopped on cancel then ran on for ever while close() waited for it."""
        while not self._closing:
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError, asyncio.TimeoutError) as error:
                log.warning("job queue: Redis unreachable: %s", error)
            except Exception:
                log.exception("job queue: dispatcher step failed")
            await asyncio.sleep(self._poll)

    async def _tick(self) -> None:
        keys = self._keys
        while True:  # release
            released = await self._call(self._release(
                keys=[keys.waiting, keys.released, keys.seq, keys.running],
                args=[keys.prefix, self._window, time.time()]))
            if not released:
                break
            job_id, verdict = (v.decode() for v in released)
            if verdict == "ok":
                await self._send(job_id)
            elif verdict == "gone":
                await self._expire(job_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrange(keys.finished, 0, -1).zrange(keys.released, 0, -1).smembers(keys.running)
            finished, released_ids, running = await self._call(pipe.execute())
        for job_id in finished:
            self._wake(job_id.decode())
        unsent = [i.decode() for i in released_ids]
        if unsent:  # published? (a crash between release and publish would strand the job)
            async with self._redis.pipeline(transaction=False) as pipe:
                for job_id in unsent:
                    pipe.hmget(keys.job(job_id), "status", "sent")
                flags = await self._call(pipe.execute())
            for job_id, (status, sent) in zip(unsent, flags):
                if status is None:  # it would hold a worker slot for good
                    await self._expire(job_id)
                elif sent is None:
                    await self._send(job_id)
        await self._check_beats([i.decode() for i in running])
        await self._check_records()

    async def _check_records(self) -> None:
        """A followed job whose record is missing LOST_AFTER polls in a row (expired, FLUSHALL, Redis
        restarted without persistence) is lost: end it, rather than leave its status message frozen."""
        ids = [job_id for job_id, followed in self._followed.items() if not followed.done.done()]
        if not ids:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for job_id in ids:
                pipe.hexists(self._keys.job(job_id), "status")
            present = await self._call(pipe.execute())
        now = time.monotonic()
        for job_id, there in zip(ids, present):
            followed = self._followed.get(job_id)
            if followed is None or followed.done.done():
                continue
            if there:
                followed.seen, followed.misses = now, 0
                continue
            followed.misses += 1
            if followed.misses >= LOST_AFTER:
                await self._expire(job_id)

    async def _check_beats(self, running: list[str]) -> None:
        """A running job without a beat: its worker died. Celery normally re-queues it at once; if the
        whole machine went, re-send it ourselves after `stall_after` (duplicates are harmless)."""
        if not running:
            self._stalled.clear()
            return
        keys = self._keys
        async with self._redis.pipeline(transaction=False) as pipe:
            for job_id in running:
                pipe.exists(keys.job(job_id, "beat")).hmget(keys.job(job_id), "status", "attempt", "resent")
            answers = await self._call(pipe.execute())
        now = time.monotonic()
        for n, job_id in enumerate(running):
            beating, (status, attempt, resent) = answers[2 * n], answers[2 * n + 1]
            if status is None:
                self._stalled.pop(job_id, None)
                await self._expire(job_id)
            elif beating:
                self._stalled.pop(job_id, None)
            elif (now - self._stalled.setdefault(job_id, now) >= self._stall_after and resent != attempt
                  and await self._mark(job_id, resent=attempt.decode())):
                if int(attempt) < MAX_ATTEMPTS:
                    log.warning("job %s: its worker vanished; sending it to another", job_id)
                await self._send(job_id)

    async def _send(self, job_id: str) -> None:
        """Publish the job's Celery message (kombu blocks: in a thread, with a time limit)."""
        assert self._publisher is not None
        if job_id in self._withdrawn:  # its submit landed after all, its withdrawal not yet: never paint it
            return
        loop = asyncio.get_running_loop()
        send = lambda: self._celery.send_task(  # noqa: E731
            TASK, args=[job_id, self._keys.prefix], task_id=f"{job_id}-{time.time_ns()}",
            retry=True, retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5})
        await asyncio.wait_for(loop.run_in_executor(self._publisher, send), self._op_timeout * 2)
        await self._mark(job_id, sent=time.time())


def _pictures_after_photo(job: Job) -> int:
    return len(job.styles) + (job.mask is not None) + (job.init is not None) + max(0, len(job.frames) - 1)


def _text(fields: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in fields.items()}


def _int(text: str | None) -> int | None:
    return int(text) if text else None


def _status(text: str) -> Status:
    return Status.RUNNING if text == "running" else Status(text) if text in FINISHED else Status.QUEUED


__all__ = ["BUSY", "CeleryBackend", "RETRY_NOTE", "STALL_NOTE"]
