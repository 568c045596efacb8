"""What the bot keeps between runs: one SQLite database and a folder of pictures under `[storage] data_dir`.

It holds the servers' style libraries (styles.py), per-server default settings (defaults.py), and the
inputs and settings of finished jobs (jobs.py: kept `keep_days`, for the "again" buttons and the menus) and
the paintings nobody would take (undelivered.py: for `stylize last`), whose pictures are files named by their
hash (pictures.py). Only the bot process uses it (Celery workers never do). All database and file access runs
in one thread of its own (database.py), so the event loop never waits on the disk and SQLite sees a single
connection; migrations.py holds the schema.

The store never stops the bot, and never deletes what it cannot read: an absent data_dir is created; one
that cannot be written leaves the store read-only (what it already holds stays readable; what needs
writing says so). A database that another program holds locked past `lock_wait`, that is damaged, from a
newer version, or that a migration fails on is left as it was and used read-only (or not at all), the
reason logged; only a file that is not a database at all is moved aside and a new one started, and the
pictures it referred to stay (garbage collection deletes only files the open database listed). A failure
at run time is logged and reported to the user who asked, as StorageUnavailable.
"""

from __future__ import annotations

from .database import DATABASE, DAY, PICTURES, Mode, StorageUnavailable
from .defaults import Defaults
from .jobs import KeptJob, KeptJobs, Sweep
from .migrations import MIGRATIONS
from .styles import StoredStyle, Styles
from .undelivered import HOLD_PER_OWNER, HeldPainting, Undelivered

__all__ = ["DATABASE", "DAY", "HOLD_PER_OWNER", "MIGRATIONS", "PICTURES", "HeldPainting", "KeptJob", "Mode",
           "StorageUnavailable", "Store", "StoredStyle", "Sweep"]


class Store(Styles, Defaults, KeptJobs, Undelivered):
    """The database and pictures under `data_dir`. `open()` once, then the async methods; `close()`."""
