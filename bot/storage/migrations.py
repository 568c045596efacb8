"""The database's schema, as the changes that built it: PRAGMA user_version counts those applied."""

from __future__ import annotations

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
    # The picture files this database wrote: garbage collection deletes only those, never a file that another
    # database (one set aside as not a database) may still refer to.
    """
    CREATE TABLE pictures (name TEXT PRIMARY KEY) WITHOUT ROWID;
    INSERT OR IGNORE INTO pictures SELECT picture FROM styles;
    INSERT OR IGNORE INTO pictures SELECT value FROM jobs, json_each(jobs.pictures);
    """,
    # A kept job's user_id is whoever posted its photo (its owner); ran_by whoever ran it, which differs when a
    # member paints another's photo (the menus, the again buttons). Both one's `forget` deletes it. Rows kept
    # before had one id, the member who ran it.
    """
    ALTER TABLE jobs ADD COLUMN ran_by INTEGER;
    UPDATE jobs SET ran_by = user_id;
    CREATE INDEX jobs_ran_by ON jobs (ran_by);
    """,
    # Paintings neither their channel nor their owner's DMs would take, held for `stylize last` (undelivered.py):
    # the text and embed (JSON) they were to be posted with, their files in the pictures folder (`pictures`)
    # under the names they were uploaded with (`filenames`), and whether their owner was told.
    """
    CREATE TABLE undelivered (job TEXT PRIMARY KEY, user_id INTEGER NOT NULL, held REAL NOT NULL,
                              text TEXT NOT NULL, embed TEXT, pictures TEXT NOT NULL, filenames TEXT NOT NULL,
                              told INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX undelivered_user ON undelivered (user_id);
    """,
    # Who posted the photo of a held painting, when known (the job was submitted in this run): their `forget`
    # deletes it too, as it deletes what others painted again from their photo.
    """
    ALTER TABLE undelivered ADD COLUMN poster INTEGER;
    CREATE INDEX undelivered_poster ON undelivered (poster);
    """,
)
"""Schema changes in order; each runs in a transaction of its own. Append, never edit."""
