"""The pictures folder: PNG files named by their hash (the same picture twice is stored once), shared by
styles and kept jobs, and deleted once nothing refers to them."""

from __future__ import annotations

import hashlib
import json
import sqlite3

from .database import DATABASE, Database


class Pictures(Database):
    def _put_picture(self, data: bytes) -> str:
        """Store PNG bytes under their hash; its file name."""
        name = hashlib.sha256(data).hexdigest()[:32] + ".png"
        path = self.pictures / name
        if not path.exists():
            partial_path = path.with_suffix(".part")
            partial_path.write_bytes(data)
            partial_path.replace(path)
        return name

    async def picture(self, name: str) -> bytes:
        return await self._read(lambda db: (self.pictures / name).read_bytes())

    def _used_bytes(self) -> int:
        """Pictures and the database (not its write-ahead log, which SQLite keeps to a few MB)."""
        files = [*self.pictures.iterdir(), self.data_dir / DATABASE]
        return sum(f.stat().st_size for f in files if f.is_file())

    def _room_for(self, size: int) -> bool:
        return self._used_bytes() + size <= self.max_bytes

    def _collect_garbage(self, db: sqlite3.Connection) -> tuple[int, int]:
        """Delete picture files no style and no kept job refers to; (files, bytes) removed."""
        used = {row[0] for row in db.execute("SELECT picture FROM styles")}
        for (names,) in db.execute("SELECT pictures FROM jobs"):
            used.update(json.loads(names))
        files = freed = 0
        for path in self.pictures.iterdir():
            if path.name not in used:
                freed += path.stat().st_size
                path.unlink()
                files += 1
        return files, freed
