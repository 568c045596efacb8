"""What the bot keeps between runs: one SQLite database and a folder of pictures under `[storage] data_dir`.

It holds the servers' style libraries, per-server default settings, and the inputs and settings of
finished jobs (kept `keep_days`, for the "again" buttons). Only the bot process uses it (Celery
workers never do). All database and file access runs in one thread of its own, so the event loop
never waits on the disk and SQLite sees a single connection.

The store never stops the bot: an absent data_dir is created; one that cannot be written leaves the
store read-only (what it already holds stays readable; what needs writing answers "not available
here"); a database file that SQLite cannot read is moved aside with a warning and a new one started;
a failure at run time is logged and reported to the user who asked, as StorageUnavailable.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
DATABASE = "stylize.db"
PICTURES = "pictures"
DAY = 86400.0

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE styles (guild_id INTEGER NOT NULL, name TEXT NOT NULL, picture TEXT NOT NULL,
                         credit TEXT NOT NULL, added_by INTEGER NOT NULL, added_at REAL NOT NULL,
                         PRIMARY KEY (guild_id, name));
    CREATE TABLE guild_defaults (guild_id INTEGER PRIMARY KEY, settings TEXT NOT NULL);
    CREATE TABLE jobs (id TEXT PRIMARY KEY, user_id INTEGER NOT NULL, guild_id INTEGER,
                       finished REAL NOT NULL, settings TEXT NOT NULL, pictures TEXT NOT NULL);
    CREATE INDEX jobs_user ON jobs (user_id);
    """,
    """
    ALTER TABLE jobs ADD COLUMN message_id INTEGER;
    ALTER TABLE jobs ADD COLUMN given TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE jobs ADD COLUMN masked INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN styles TEXT NOT NULL DEFAULT '[]';
    CREATE INDEX jobs_message ON jobs (message_id);
    """,
    # The losses became relative errors (engine/losses.py): style_weight and tv_weight mean 10× what they
    # did. Server defaults hold the texts members typed; kept jobs the numbers they ran with.
    "".join(f"""
    UPDATE guild_defaults SET settings = json_set(settings,
        '$.{name}', printf('%g', CAST(json_extract(settings, '$.{name}') AS REAL) / 10))
        WHERE json_extract(settings, '$.{name}') IS NOT NULL;
    UPDATE jobs SET settings = json_set(settings, '$.{name}', json_extract(settings, '$.{name}') / 10.0)
        WHERE json_type(settings, '$.{name}') IN ('integer', 'real');
    """ for name in ("style_weight", "tv_weight")),
)
"""Schema changes in order; PRAGMA user_version counts those applied. Append, never edit."""


class Mode(enum.Enum):
    WRITABLE = "writable"
    READ_ONLY = "read-only"
    UNAVAILABLE = "unavailable"


class StorageUnavailable(Exception):
    """What the user asked for needs the store, which cannot do it here; str(e) says so."""


@dataclass(frozen=True)
class StoredStyle:
    guild_id: int
    name: str
    picture: str  # file name in the pictures folder
    credit: str
    added_by: int


@dataclass(frozen=True)
class KeptJob:
    """A finished job's inputs and settings, as kept for the "again" buttons and the menus."""

    id: str
    user_id: int
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


class Store:
    """The database and pictures under `data_dir`. `open()` once, then the async methods; `close()`."""

    def __init__(self, data_dir: Path, *, keep_days: float = 7.0, max_bytes: int = 2 * 1024**3) -> None:
        self.data_dir = Path(data_dir)
        self.keep_days = keep_days
        self.max_bytes = max_bytes
        self.mode = Mode.UNAVAILABLE
        self.reason = "not opened yet"
        self._db: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stylize-store")
        self._closed = False

    @property
    def pictures(self) -> Path:
        return self.data_dir / PICTURES

    @property
    def writable(self) -> bool:
        return self.mode is Mode.WRITABLE

    def describe(self) -> str:
        """One line for logs and `stylize-bot check`."""
        text = f"{self.data_dir}: {self.mode.value}"
        return text if self.mode is Mode.WRITABLE else f"{text} ({self.reason})"

    # --------------------------------------------------------------------------- life cycle

    async def open(self) -> Store:
        await self._call(self._open)
        log.log(logging.INFO if self.writable else logging.WARNING, "storage %s", self.describe())
        return self

    async def close(self) -> None:
        """Close the database and end the store's thread; idempotent."""
        if not self._closed:
            self._closed = True
            await self._call(self._close)
            self._thread.shutdown(wait=True)

    def open_sync(self) -> Store:
        """open() for callers without an event loop (`stylize-bot check`); close with close_sync()."""
        self._thread.submit(self._open).result()
        return self

    def close_sync(self) -> None:
        self._closed = True
        self._thread.submit(self._close).result()
        self._thread.shutdown(wait=True)

    def _open(self) -> None:
        try:
            self.pictures.mkdir(parents=True, exist_ok=True)
            probe = self.data_dir / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            self._open_read_only(f"cannot write there: {error.strerror or error}")
            return
        path = self.data_dir / DATABASE
        try:
            self._db = self._connect(path)
        except sqlite3.DatabaseError as error:
            aside = path.with_name(f"{DATABASE}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
            log.warning("storage: %s is not a usable database (%s); moved it to %s and started a new one",
                        path, error, aside.name)
            for suffix in ("", "-wal", "-shm"):
                extra = Path(f"{path}{suffix}")
                if extra.exists():
                    extra.rename(f"{aside}{suffix}")
            try:
                self._db = self._connect(path)
            except sqlite3.Error as again:
                self.mode, self.reason = Mode.UNAVAILABLE, f"cannot start a database: {again}"
                return
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            self.mode, self.reason = Mode.READ_ONLY, f"the database is from a newer version (schema {version})"
        else:
            self.mode, self.reason = Mode.WRITABLE, ""

    def _open_read_only(self, reason: str) -> None:
        path = self.data_dir / DATABASE
        self.mode, self.reason = Mode.UNAVAILABLE, reason
        if not path.is_file():
            return
        try:  # immutable: no -wal/-shm files are needed (nobody can write here anyway)
            db = sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True)
            db.execute("SELECT count(*) FROM styles").fetchone()
        except sqlite3.Error as error:
            log.warning("storage: cannot read %s either: %s", path, error)
            return
        self._db, self.mode = db, Mode.READ_ONLY

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        """Open (or create) the database, check it and bring its schema up to date."""
        db = sqlite3.connect(path, isolation_level=None)
        try:
            if db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
                raise sqlite3.DatabaseError("quick_check failed")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                db.executescript(f"BEGIN; {script}; PRAGMA user_version = {number}; COMMIT;")
                log.info("storage: database schema migrated to version %d", number)
        except sqlite3.Error:
            db.close()
            raise
        return db

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, partial(fn, *args))

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(db, *args)` in the store's thread; storage failures become StorageUnavailable."""
        return await self._use(fn, args, False)

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        return await self._use(fn, args, True)

    async def _use(self, fn: Callable[..., T], args: tuple[Any, ...], write: bool) -> T:
        if self._closed:
            raise StorageUnavailable("the bot is shutting down — try again when it is back")
        return await self._call(self._guarded, fn, args, write)

    def _guarded(self, fn: Callable[..., T], args: tuple[Any, ...], write: bool) -> T:
        if self._db is None or (write and not self.writable):
            raise StorageUnavailable(f"that needs the bot's storage, which is not available here ({self.reason})")
        try:
            return fn(self._db, *args)
        except (sqlite3.Error, OSError) as error:
            log.error("storage: %s failed", getattr(fn, "__name__", fn), exc_info=error)
            raise StorageUnavailable("the bot's storage failed just now — it has been logged; try again later") \
                from error

    # ----------------------------------------------------------------------------- pictures

    def _put_picture(self, data: bytes) -> str:
        """Store PNG bytes under their hash (the same picture twice is stored once); its file name."""
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

    # ------------------------------------------------------------------------------- styles

    async def styles(self, guild_id: int) -> list[StoredStyle]:
        def read(db: sqlite3.Connection) -> list[StoredStyle]:
            rows = db.execute("SELECT guild_id, name, picture, credit, added_by FROM styles WHERE guild_id = ? "
                              "ORDER BY name", (guild_id,))
            return [StoredStyle(*row) for row in rows]
        return await self._read(read)

    async def add_style(self, guild_id: int, name: str, png: bytes, credit: str, user_id: int) -> None:
        def write(db: sqlite3.Connection) -> None:
            if not self._room_for(len(png)):
                raise StorageUnavailable("the bot's storage is full (its disk cap is reached) — remove a style first")
            picture = self._put_picture(png)
            db.execute("INSERT INTO styles VALUES (?, ?, ?, ?, ?, ?)",
                       (guild_id, name, picture, credit, user_id, time.time()))
        await self._write(write)

    async def remove_style(self, guild_id: int, name: str) -> bool:
        def write(db: sqlite3.Connection) -> bool:
            gone = db.execute("DELETE FROM styles WHERE guild_id = ? AND name = ?", (guild_id, name)).rowcount
            self._collect_garbage(db)
            return gone > 0
        return await self._write(write)

    # ------------------------------------------------------------------------ server defaults

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

    # ---------------------------------------------------------------------------- job inputs

    @property
    def keeps_jobs(self) -> bool:
        return self.writable and self.keep_days > 0

    async def keep_job(self, job_id: str, user_id: int, guild_id: int | None, settings: str,
                       pictures: Iterable[bytes], *, given: Iterable[str] = (), masked: bool = False,
                       styles: str = "[]") -> bool:
        """Keep a finished job's inputs (PNG bytes: the photo, the styles, then the mask if `masked`), the
        settings it ran with and its styles' names and credits (JSON), for keep_days; False when that would
        pass the disk cap."""
        def write(db: sqlite3.Connection) -> bool:
            data = list(pictures)
            if not self._room_for(sum(map(len, data))):
                log.warning("storage: over its disk cap, job %s's inputs are not kept", job_id)
                return False
            names = [self._put_picture(d) for d in data]
            db.execute("INSERT OR REPLACE INTO jobs (id, user_id, guild_id, finished, settings, pictures, given, "
                       "masked, styles) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (job_id, user_id, guild_id, time.time(), settings, json.dumps(names),
                        json.dumps(sorted(given)), int(masked), styles))
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
        """Delete everything kept from `user_id`'s jobs; how many jobs that was."""
        def write(db: sqlite3.Connection) -> int:
            gone = db.execute("DELETE FROM jobs WHERE user_id = ?", (user_id,)).rowcount
            self._collect_garbage(db)
            return gone
        return await self._write(write)

    async def sweep(self, now: float | None = None) -> Sweep:
        """Drop job inputs past their retention, then the oldest ones while the store is over its disk
        cap, and the pictures nothing refers to any more."""
        def write(db: sqlite3.Connection) -> Sweep:
            at = time.time() if now is None else now
            gone = db.execute("DELETE FROM jobs WHERE finished < ?", (at - self.keep_days * DAY,)).rowcount
            files, freed = self._collect_garbage(db)
            while self._used_bytes() > self.max_bytes:
                oldest = db.execute("SELECT id FROM jobs ORDER BY finished LIMIT 1").fetchone()
                if oldest is None:
                    break
                gone += db.execute("DELETE FROM jobs WHERE id = ?", oldest).rowcount
                more, bytes_ = self._collect_garbage(db)
                files, freed = files + more, freed + bytes_
            return Sweep(gone, files, freed)
        return await self._write(write)

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
