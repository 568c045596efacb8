"""Each server's own styles: a name, a picture and a credit, added and removed by its moderators."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

from .database import StorageUnavailable
from .pictures import Pictures


@dataclass(frozen=True)
class StoredStyle:
    guild_id: int
    name: str
    picture: str  # file name in the pictures folder
    credit: str
    added_by: int


class Styles(Pictures):
    async def styles(self, guild_id: int) -> list[StoredStyle]:
        def read(db: sqlite3.Connection) -> list[StoredStyle]:
            rows = db.execute("SELECT guild_id, name, picture, credit, added_by FROM styles WHERE guild_id = ? "
                              "ORDER BY name", (guild_id,))
            return [StoredStyle(*row) for row in rows]
        return await self._read(read)

    async def add_style(self, guild_id: int, name: str, png: bytes, credit: str, user_id: int) -> None:
        def write(db: sqlite3.Connection) -> None:
            if not self._room_for(db, len(png)):
                raise StorageUnavailable("the bot's storage is full (its disk cap is reached) — remove a style first")
            picture = self._put_picture(db, png)
            db.execute("INSERT INTO styles VALUES (?, ?, ?, ?, ?, ?)",
                       (guild_id, name, picture, credit, user_id, time.time()))
        await self._write(write)

    async def remove_style(self, guild_id: int, name: str) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            gone = db.execute("DELETE FROM styles WHERE guild_id = ? AND name = ?", (guild_id, name)).rowcount
            self._collect_garbage(db)
            return gone > 0
        return await self._write(write)
