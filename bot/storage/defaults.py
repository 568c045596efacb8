"""Each server's default settings, as the texts its members typed (`/stylize-defaults`)."""

from __future__ import annotations

import json
import sqlite3

from .database import Database


class Defaults(Database):
    async def guild_defaults(self, guild_id: int) -> dict[str, str]:
        def read(db: sqlite3.Connection) -> dict[str, str]:
            row = db.execute("SELECT settings FROM guild_defaults WHERE guild_id = ?", (guild_id,)).fetchone()
            return json.loads(row[0]) if row else {}
        return await self._read(read)

    async def set_guild_defaults(self, guild_id: int, settings: dict[str, str]) -> None:
        def write(db: sqlite3.Connection) -> None:
            if settings:
                db.execute("INSERT OR REPLACE INTO guild_defaults VALUES (?, ?)", (guild_id, json.dumps(settings)))
            else:
                db.execute("DELETE FROM guild_defaults WHERE guild_id = ?", (guild_id,))
        await self._write(write)
