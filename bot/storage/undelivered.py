"""Paintings nobody would take — their channel refused them, and so did their owner's DMs — held on disk for
their owner's `stylize last`: the newest HOLD_PER_OWNER per owner, within the disk cap, for keep_days (the one
retention the operator sets for what the bot keeps of its members). Delivering one removes it; `forget`
deletes an owner's at once; the sweep drops old ones."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import PurePath

from .database import DAY
from .pictures import Pictures

HOLD_PER_OWNER = 3
"""Undelivered paintings held per owner, the newest: a member who comes back after a while gets their last
few, and one owner's failures cannot fill the disk."""

HELD_SHARE = 0.25
"""The share of the disk cap that held paintings may take: undeliverable jobs from many members (a channel the bot
lost, their DMs closed) leave the rest to the kept jobs, which the again buttons and the menus need."""


@dataclass(frozen=True)
class HeldPainting:
    """A painting as it was to be posted: its text, its files (name, bytes) and its embed (JSON), if any."""

    job: str  # the job's id
    owner: int
    text: str
    files: tuple[tuple[str, bytes], ...]
    embed: str | None
    poster: int | None = None  # who posted the photo, when known: their `forget` deletes it too


class Undelivered(Pictures):
    async def hold(self, painting: HeldPainting) -> bool:
        """Hold `painting` for its owner (dropping their oldest beyond HOLD_PER_OWNER); False when its files
        would pass the disk cap, or the held paintings' share of it (nothing is held then)."""
        def write(db: sqlite3.Connection) -> bool:
            size = sum(len(data) for _, data in painting.files)
            if not self._room_for(db, size) or self._held_bytes(db) + size > HELD_SHARE * self.max_bytes:
                return False
            names = [self._put_picture(db, data, PurePath(name).suffix or ".png") for name, data in painting.files]
            db.execute("INSERT OR REPLACE INTO undelivered (job, user_id, held, text, embed, pictures, filenames, "
                       "poster) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (painting.job, painting.owner, time.time(), painting.text, painting.embed, json.dumps(names),
                        json.dumps([name for name, _ in painting.files]), painting.poster))
            db.execute("DELETE FROM undelivered WHERE user_id = ? AND job NOT IN (SELECT job FROM undelivered "
                       "WHERE user_id = ? ORDER BY held DESC LIMIT ?)", (painting.owner, painting.owner, HOLD_PER_OWNER))
            self._collect_garbage(db)
            return True
        return await self._write(write)

    async def held(self, owner: int) -> list[HeldPainting]:
        """What is held for `owner` (within keep_days), oldest first."""
        def read(db: sqlite3.Connection) -> list[HeldPainting]:
            rows = db.execute("SELECT job, text, embed, pictures, filenames FROM undelivered WHERE user_id = ? "
                              "AND held >= ? ORDER BY held", (owner, self._held_since())).fetchall()
            return [HeldPainting(job, owner, text, tuple(
                (name, (self.pictures / picture).read_bytes())
                for picture, name in zip(json.loads(pictures), json.loads(filenames), strict=True)), embed)
                for job, text, embed, pictures, filenames in rows]
        return await self._read(read)

    async def release(self, job: str) -> None:
        """A held painting was delivered: delete it."""
        def write(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM undelivered WHERE job = ?", (job,))
            self._collect_garbage(db)
        await self._write(write)

    async def tell_held(self, owner: int) -> list[str]:
        """The jobs held for `owner` if they were not told of them yet (then they are, from now on); else []."""
        def write(db: sqlite3.Connection) -> list[str]:
            since = self._held_since()
            if db.execute("UPDATE undelivered SET told = 1 WHERE user_id = ? AND told = 0 AND held >= ?",
                          (owner, since)).rowcount == 0:
                return []
            return [job for (job,) in db.execute("SELECT job FROM undelivered WHERE user_id = ? AND held >= ? "
                                                 "ORDER BY held", (owner, since))]
        return await self._write(write)

    async def untold_owners(self) -> set[int]:
        """The owners who have held paintings they were not told of (at start-up)."""
        def read(db: sqlite3.Connection) -> set[int]:
            return {owner for (owner,) in db.execute("SELECT DISTINCT user_id FROM undelivered WHERE told = 0 "
                                                     "AND held >= ?", (self._held_since(),))}
        return await self._read(read)

    async def forget_held(self, owner: int) -> int:
        """Delete everything held for `owner`, and what is held for others painted from `owner`'s photos; how many
        paintings that was."""
        def write(db: sqlite3.Connection) -> int:
            gone = db.execute("DELETE FROM undelivered WHERE user_id = ? OR poster = ?", (owner, owner)).rowcount
            self._collect_garbage(db)
            return gone
        return await self._write(write)

    def _held_bytes(self, db: sqlite3.Connection) -> int:
        names = db.execute("SELECT DISTINCT value FROM undelivered, json_each(undelivered.pictures)").fetchall()
        return sum(path.stat().st_size for (name,) in names if (path := self.pictures / name).is_file())

    def _held_since(self) -> float:
        return time.time() - self.keep_days * DAY
