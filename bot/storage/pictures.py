"""The pictures folder: files named by their hash (the same picture twice is stored once), shared by styles,
kept jobs and undelivered paintings. The database lists the files it wrote (table `pictures`); a file is deleted once
nothing refers to it, and only if it is on that list."""

from __future__ import annotations

import hashlib
import sqlite3

from .database import DATABASE, Database

UNUSED = """SELECT name FROM pictures WHERE name NOT IN
            (SELECT picture FROM styles UNION SELECT value FROM jobs, json_each(jobs.pictures)
             UNION SELECT value FROM undelivered, json_each(undelivered.pictures))"""


class Pictures(Database):
    def _put_picture(self, db: sqlite3.Connection, data: bytes, suffix: str = ".png") -> str:
        """Store a picture's bytes (PNG unless `suffix` says otherwise) under their hash, listed before the file
        is written; its file name."""
        name = hashlib.sha256(data).hexdigest()[:32] + suffix
        db.execute("INSERT OR IGNORE INTO pictures VALUES (?)", (name,))
        path = self.pictures / name
        if not path.exists():
            partial_path = path.with_suffix(".part")
            partial_path.write_bytes(data)
            partial_path.replace(path)
        return name

    async def picture(self, name: str) -> bytes:
        return await self._read(lambda db: (self.pictures / name).read_bytes())

    def _used_bytes(self, db: sqlite3.Connection) -> int:
        """The database (not its write-ahead log, which SQLite keeps to a few MB) and its pictures."""
        files = [self.data_dir / DATABASE, *(self.pictures / name for (name,) in db.execute("SELECT name FROM pictures"))]
        return sum(f.stat().st_size for f in files if f.is_file())

    def _room_for(self, db: sqlite3.Connection, size: int) -> bool:
        return self._used_bytes(db) + size <= self.max_bytes

    def _collect_garbage(self, db: sqlite3.Connection) -> tuple[int, int]:
        """Delete the listed picture files no style, kept job or undelivered painting refers to; (files, bytes)
        removed."""
        files = freed = 0
        for (name,) in db.execute(UNUSED).fetchall():
            path = self.pictures / name
            if path.is_file():
                freed += path.stat().st_size
                path.unlink()
                files += 1
            db.execute("DELETE FROM pictures WHERE name = ?", (name,))
        return files, freed
