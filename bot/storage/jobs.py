"""Finished jobs' inputs and settings, kept `keep_days` for the "again" buttons and the menus; `forget`
deletes a member's at once, and the sweep drops old ones (and the oldest while over the disk cap)."""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .database import DAY, StorageUnavailable
from .pictures import Pictures

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeptJob:
    """A finished job's inputs and settings, as kept for the "again" buttons and the menus."""

    id: str
    user_id: int  # who posted the photo: the owner, whose `forget` deletes it (as does that of who ran it)
    guild_id: int | None
    settings: str  # JSON of the Settings it ran with
    pictures: tuple[str, ...]  # file names: the photo, the styles, then the mask if `masked`
    message_id: int | None  # the result's message, once posted
    given: tuple[str, ...]  # the settings its owner set (echoes mark them)
    masked: bool
    styles: str  # JSON: each style's library name and credit (engine.stamp.StyleCredit), in blend order


@dataclass(frozen=True)
class Sweep:
    """What one sweep removed."""

    jobs: int
    files: int
    bytes: int


class KeptJobs(Pictures):
    _forgot: dict[int, float]  # when each member last used `forget` in this run (jobs of a past run aren't kept)

    def __init__(self, *args: Any, **options: Any) -> None:
        super().__init__(*args, **options)
        self._forgot = {}

    @property
    def keeps_jobs(self) -> bool:
        return self.writable and self.keep_days > 0

    async def keep_job(self, job_id: str, owner: int, guild_id: int | None, settings: str,
                       pictures: Iterable[bytes], *, given: Iterable[str] = (), masked: bool = False,
                       styles: str = "[]", ran_by: int | None = None, since: float | None = None) -> bool:
        """Keep a finished job's inputs (PNG bytes: the photo, the styles, then the mask if `masked`), the
        settings it ran with and its styles' names and credits (JSON), for keep_days; False when that would
        pass the disk cap, or when its owner or whoever ran it used `forget` after `since` (its inputs were
        taken in then). `owner` posted the photo; `ran_by` (default: the owner) ran the job."""
        ran_by = owner if ran_by is None else ran_by

        def write(db: sqlite3.Connection) -> bool:
            if since is not None and max(self._forgot.get(owner, 0.0), self._forgot.get(ran_by, 0.0)) >= since:
                log.info("storage: job %s is not kept: its owner or who ran it used forget while it ran", job_id)
                return False
            data = list(pictures)
            if not self._room_for(db, sum(map(len, data))):
                log.warning("storage: over its disk cap, job %s's inputs are not kept", job_id)
                return False
            names = [self._put_picture(db, d) for d in data]
            db.execute("INSERT OR REPLACE INTO jobs (id, user_id, guild_id, finished, settings, pictures, given, "
                       "masked, styles, ran_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (job_id, owner, guild_id, time.time(), settings, json.dumps(names),
                        json.dumps(sorted(given)), int(masked), styles, ran_by))
            return True
        return await self._write(write)

    async def note_message(self, job_id: str, message_id: int) -> None:
        """Record the message that carries a kept job's result (the menus find the job by it)."""
        await self._write(lambda db: db.execute("UPDATE jobs SET message_id = ? WHERE id = ?", (message_id, job_id)))

    async def kept_job(self, job_id: str | None = None, *, message_id: int | None = None) -> KeptJob | None:
        """A kept job by its id or by its result's message id; None once past keep_days (swept or not),
        forgotten, or never kept."""
        def read(db: sqlite3.Connection) -> KeptJob | None:
            row = db.execute(f"SELECT id, user_id, guild_id, settings, pictures, message_id, given, masked, styles "
                             f"FROM jobs WHERE {'id' if message_id is None else 'message_id'} = ? AND finished >= ?",
                             (job_id if message_id is None else message_id,
                              time.time() - self.keep_days * DAY)).fetchone()
            if row is None:
                return None
            pictures, given = tuple(json.loads(row[4])), tuple(json.loads(row[6]))
            return KeptJob(*row[:4], pictures, row[5], given, bool(row[7]), row[8])
        return await self._read(read)

    async def forget(self, user_id: int) -> int:
        """Delete every kept job `user_id` posted the photo of or ran, pictures and all; how many that was."""
        if not self.writable:
            raise StorageUnavailable(f"I can't delete anything right now: the bot's storage is {self.mode.value} "
                                     f"here ({self.reason}), so nothing was deleted — try again once the bot's "
                                     "owner has fixed it")
        def write(db: sqlite3.Connection) -> int:
            self._forgot[user_id] = time.time()
            gone = db.execute("DELETE FROM jobs WHERE user_id = ? OR ran_by = ?", (user_id, user_id)).rowcount
            self._collect_garbage(db)
            return gone
        return await self._write(write)

    async def sweep(self, now: float | None = None) -> Sweep:
        """Drop job inputs (and undelivered paintings) past their retention, then the oldest job inputs while
        the store is over its disk cap, and the pictures nothing refers to any more."""
        def write(db: sqlite3.Connection) -> Sweep:
            at = time.time() if now is None else now
            gone = db.execute("DELETE FROM jobs WHERE finished < ?", (at - self.keep_days * DAY,)).rowcount
            db.execute("DELETE FROM undelivered WHERE held < ?", (at - self.keep_days * DAY,))  # undelivered.py
            files, freed = self._collect_garbage(db)
            while self._used_bytes(db) > self.max_bytes:
                oldest = db.execute("SELECT id FROM jobs ORDER BY finished LIMIT 1").fetchone()
                if oldest is None:
                    break
                gone += db.execute("DELETE FROM jobs WHERE id = ?", oldest).rowcount
                more, bytes_ = self._collect_garbage(db)
                files, freed = files + more, freed + bytes_
            return Sweep(gone, files, freed)
        return await self._write(write)
