"""The store's one thread and its SQLite connection: opening (and migrating) the database, the mode the
store runs in, and the guarded calls every part of the store goes through."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Self, TypeVar

from .migrations import MIGRATIONS

log = logging.getLogger(__name__)

T = TypeVar("T")
DATABASE = "stylize.db"
PICTURES = "pictures"
DAY = 86400.0
LOCK_WAIT = 10.0
"""Seconds the store waits for a database another program holds locked (at start-up, and for each access),
before it runs read-only: long enough for a backup tool's read or another process's transaction."""


class Mode(enum.Enum):
    WRITABLE = "writable"
    READ_ONLY = "read-only"
    UNAVAILABLE = "unavailable"


class StorageUnavailable(Exception):
    """What the user asked for needs the store, which cannot do it here; str(e) says so."""


class Database:
    """The connection under `data_dir`, used from the store's thread only."""

    def __init__(self, data_dir: Path, *, keep_days: float = 7.0, max_bytes: int = 2 * 1024**3,
                 lock_wait: float = LOCK_WAIT) -> None:
        self.data_dir = Path(data_dir)
        self.lock_wait = lock_wait
        self.keep_days = keep_days
        self.max_bytes = max_bytes
        self.mode = Mode.UNAVAILABLE
        self.reason = "not opened yet"
        self.nothing_kept = False  # the store is unavailable, and no database was there: it keeps nothing at all
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

    async def open(self) -> Self:
        await self._call(self._open)
        log.log(logging.INFO if self.writable else logging.WARNING, "storage %s", self.describe())
        return self

    async def close(self) -> None:
        """Close the database and end the store's thread; idempotent."""
        if not self._closed:
            self._closed = True
            await self._call(self._close)
            self._thread.shutdown(wait=True)

    def open_sync(self) -> Self:
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
            self._db = sqlite3.connect(path, isolation_level=None, timeout=self.lock_wait)
            self.mode, self.reason = self._prepare(self._db)
        except sqlite3.DatabaseError as error:
            if self._db is not None:
                self._db.close()
            self._db = None
            if error.sqlite_errorcode != sqlite3.SQLITE_NOTADB:
                self.mode, self.reason = Mode.UNAVAILABLE, f"cannot open the database: {error}"
                log.error("storage: %s: %s — left as it was", path, self.reason)
                return
            self._set_aside(path, error)
            try:
                self._db = sqlite3.connect(path, isolation_level=None, timeout=self.lock_wait)
                self.mode, self.reason = self._prepare(self._db)
            except sqlite3.Error as again:
                self.mode, self.reason = Mode.UNAVAILABLE, f"cannot start a database: {again}"
        if self.mode is Mode.UNAVAILABLE and self._db is not None:
            self._db.close()
            self._db = None

    @staticmethod
    def _set_aside(path: Path, error: sqlite3.Error) -> None:
        """Move a file that is not a database (and its -wal, -shm) out of the way, keeping it for its owner."""
        aside = path.with_name(f"{DATABASE}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
        log.warning("storage: %s is not a database (%s); moved it to %s and started a new one — the pictures "
                    "it referred to stay in the pictures folder, untouched", path, error, aside.name)
        for suffix in ("", "-wal", "-shm"):
            extra = Path(f"{path}{suffix}")
            if extra.exists():
                extra.rename(f"{aside}{suffix}")

    def _prepare(self, db: sqlite3.Connection) -> tuple[Mode, str]:
        """Check the database, bring its schema up to date (each migration in a transaction of its own) and
        switch it to write-ahead logging: the mode the store runs in, and why when not writable. Anything but a
        file that is not a database (raised) leaves the file as it was, and the store reading it at most: a
        database another program holds locked is waited for `lock_wait` seconds first."""
        step = "reading it"
        try:
            verdict = db.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                return self._read_only(db, f"the database is damaged (SQLite's check says: {verdict})")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                return self._read_only(db, f"the database is from a newer version (schema {version})")
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                step = f"bringing it up to schema {number}"
                db.executescript(f"BEGIN IMMEDIATE; {script}; PRAGMA user_version = {number}; COMMIT;")
                log.info("storage: database schema migrated to version %d", number)
            step = "switching it to write-ahead logging"
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.Error as error:
            if db.in_transaction:  # a migration that failed half-way: undo all of it
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            if error.sqlite_errorcode == sqlite3.SQLITE_NOTADB:
                raise
            if error.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                why = f"another program holds the database locked ({step}, after waiting {self.lock_wait:g} s)"
            else:
                why = f"{step} failed: {error}"
            return self._read_only(db, why)
        return Mode.WRITABLE, ""

    def _read_only(self, db: sqlite3.Connection, why: str) -> tuple[Mode, str]:
        """Use `db` for reading only (if it can be read at all), and say so in the log: the file is not
        changed, nothing is kept and nothing is swept until the bot restarts with the cause gone."""
        try:
            db.execute("PRAGMA query_only = ON")
            db.execute("SELECT count(*) FROM sqlite_schema").fetchone()
            mode = Mode.READ_ONLY
        except sqlite3.Error as error:
            log.warning("storage: cannot read the database either: %s", error)
            mode = Mode.UNAVAILABLE
        log.error("storage: %s: %s — left as it was; the bot runs with its storage %s until restarted "
                  "(nothing is kept, changed or swept)", self.data_dir / DATABASE, why, mode.value)
        return mode, why

    def _open_read_only(self, reason: str) -> None:
        path = self.data_dir / DATABASE
        self.mode, self.reason = Mode.UNAVAILABLE, reason
        if not path.is_file():
            self.nothing_kept = True
            return
        try:  # immutable: no -wal/-shm files are needed (nobody can write here anyway)
            db = sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True)
            db.execute("SELECT count(*) FROM styles").fetchone()
        except sqlite3.Error as error:
            log.warning("storage: cannot read %s either: %s", path, error)
            return
        self._db, self.mode = db, Mode.READ_ONLY

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
            state = "not available" if self._db is None else self.mode.value
            raise StorageUnavailable(f"that needs the bot's storage, which is {state} here ({self.reason})")
        try:
            return fn(self._db, *args)
        except (sqlite3.Error, OSError) as error:
            log.error("storage: %s failed", getattr(fn, "__name__", fn), exc_info=error)
            raise StorageUnavailable("the bot's storage failed just now — it has been logged; try again later") \
                from error
