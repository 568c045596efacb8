"""bot.storage on real files: schema and migrations, restarts, retention, the disk cap, forget, and the
failure modes (absent, unwritable and corrupt data_dir) — the store must never take the bot down."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import logging
import random
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import pytest
from PIL import Image

from bot.storage import (DATABASE, DAY, HOLD_PER_OWNER, MIGRATIONS, HeldPainting, Mode, Store, StorageUnavailable,
                         Sweep)


def png(seed: int, side: int = 16) -> bytes:
    """A distinct, repeatable, incompressible picture per seed."""
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), random.Random(seed).randbytes(side * side * 3)).save(out, "PNG")
    return out.getvalue()


def used_bytes(folder: Path) -> int:
    """What the disk cap counts: the database and the pictures (all of them this store's here)."""
    return (folder / DATABASE).stat().st_size + sum(p.stat().st_size for p in (folder / "pictures").iterdir())


async def opened(path: Path, **options: float) -> Store:
    return await Store(path, **options).open()  # type: ignore[arg-type]


async def test_absent_folder_is_created_with_a_current_schema_in_wal_mode(tmp_path: Path) -> None:
    store = await opened(tmp_path / "a" / "b")
    try:
        assert store.mode is Mode.WRITABLE and store.pictures.is_dir()
    finally:
        await store.close()
    db = sqlite3.connect(tmp_path / "a" / "b" / DATABASE)
    assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_restart_keeps_styles_and_defaults(tmp_path: Path) -> None:
    store = await opened(tmp_path)
    await store.add_style(1, "lilies", png(1), "Water Lilies — Claude Monet", 42)
    await store.set_guild_defaults(1, {"steps": "200"})
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(StorageUnavailable, match="shutting down"):
        await store.styles(1)
    again = await opened(tmp_path)
    try:
        [style] = await again.styles(1)
        assert (style.name, style.credit, style.added_by) == ("lilies", "Water Lilies — Claude Monet", 42)
        assert await again.picture(style.picture) == png(1)
        assert await again.guild_defaults(1) == {"steps": "200"} and await again.guild_defaults(2) == {}
        assert await again.styles(2) == []
        assert await again.remove_style(1, "lilies") and not await again.remove_style(1, "lilies")
        assert list(again.pictures.iterdir()) == []  # nothing refers to the picture any more
    finally:
        await again.close()


async def test_retention_disk_cap_and_forget(tmp_path: Path) -> None:
    store = await opened(tmp_path, keep_days=7)
    try:
        for n, user in enumerate((1, 1, 2)):
            assert await store.keep_job(f"job{n}", user, 9, "{}", [png(n), png(10)])
        assert len(list(store.pictures.iterdir())) == 4  # the shared style picture is stored once
        assert await store.sweep() == Sweep(0, 0, 0)
        swept = await store.sweep(now=time.time() + 8 * DAY)
        assert (swept.jobs, swept.files) == (3, 4) and swept.bytes > 0
        for n, user in enumerate((1, 1, 2)):
            await store.keep_job(f"job{n}", user, 9, "{}", [png(n)])
        assert await store.forget(1) == 2 and await store.forget(1) == 0
        assert [p.read_bytes() for p in store.pictures.iterdir()] == [png(2)]
        store.max_bytes = used_bytes(tmp_path) + len(png(3)) + len(png(4)) // 2
        assert await store.keep_job("job3", 3, 9, "{}", [png(3)])
        assert not await store.keep_job("job4", 3, 9, "{}", [png(4)])  # would pass the cap: not kept
        store.max_bytes -= len(png(3))
        swept = await store.sweep()
        assert swept.jobs == 1 and [p.read_bytes() for p in store.pictures.iterdir()] == [png(3)]  # oldest first
        with pytest.raises(StorageUnavailable, match="disk cap"):
            await store.add_style(9, "big", png(5, 64), "x", 1)
    finally:
        await store.close()


async def test_kept_jobs_are_found_by_id_and_by_their_result_message(tmp_path: Path) -> None:
    """A database of schema 1 (jobs kept before the "again" buttons) is migrated: its jobs keep working,
    found by id; new ones also by their result's message, until keep_days have passed."""
    old = sqlite3.connect(tmp_path / DATABASE)
    old.executescript(f"BEGIN; {MIGRATIONS[0]}; PRAGMA user_version = 1; COMMIT;")
    old.execute("INSERT INTO jobs VALUES ('old', 1, 9, ?, '{}', '[]')", (time.time(),))
    old.commit()
    old.close()
    store = await opened(tmp_path, keep_days=1)
    try:
        assert await store.keep_job("new", 2, 9, '{"steps": 3}', [png(1), png(2), png(3)], given={"steps"},
                                    masked=True, styles='[{"name": "wave", "credit": "someone"}]')
        await store.note_message("new", 555)
        found = await store.kept_job(message_id=555)
        assert found == await store.kept_job("new")
        assert found is not None and (found.user_id, found.settings, found.given, found.masked) == \
            (2, '{"steps": 3}', ("steps",), True)
        assert len(found.pictures) == 3 and found.message_id == 555
        assert found.styles == '[{"name": "wave", "credit": "someone"}]'
        legacy = await store.kept_job("old")
        assert legacy is not None and legacy.message_id is None and legacy.given == () and not legacy.masked
        assert await store.kept_job(message_id=556) is None and await store.kept_job("nope") is None
        assert legacy.styles == "[]" and await store.forget(1) == 1  # the migrated row is an ordinary one
        store.keep_days = 0.5 / DAY  # half a second: both are past it, swept or not
        await asyncio.sleep(0.6)
        assert await store.kept_job("new") is None and await store.kept_job(message_id=555) is None
    finally:
        await store.close()


async def test_weights_stored_before_the_relative_losses_are_rescaled(tmp_path: Path) -> None:
    """style_weight and tv_weight mean 10× more since the losses became relative errors: a server's
    defaults (the texts typed) and a kept job's settings (numbers) are divided by 10 once, the rest kept."""
    old = sqlite3.connect(tmp_path / DATABASE)
    old.executescript(f"BEGIN; {MIGRATIONS[0]}; {MIGRATIONS[1]}; PRAGMA user_version = 2; COMMIT;")
    old.execute("INSERT INTO guild_defaults VALUES (1, ?)",
                ('{"style_weight": "1e5", "tv_weight": "50", "steps": "200"}',))
    old.execute("INSERT INTO guild_defaults VALUES (2, ?)", ('{"size": "512"}',))
    old.execute("INSERT INTO jobs (id, user_id, guild_id, finished, settings, pictures) VALUES ('j', 1, 1, ?, ?, '[]')",
                (time.time(), '{"style_weight": 100.0, "tv_weight": 50, "steps": 300}'))
    old.commit()
    old.close()
    store = await opened(tmp_path, keep_days=1)
    try:
        assert await store.guild_defaults(1) == {"style_weight": "10000", "tv_weight": "5", "steps": "200"}
        assert await store.guild_defaults(2) == {"size": "512"}
        job = await store.kept_job("j")
        assert job is not None and json.loads(job.settings) == {"style_weight": 10.0, "tv_weight": 5.0, "steps": 300}
    finally:
        await store.close()
    again = await opened(tmp_path, keep_days=1)  # once only
    try:
        assert await again.guild_defaults(1) == {"style_weight": "10000", "tv_weight": "5", "steps": "200"}
    finally:
        await again.close()


async def test_a_file_that_is_not_a_database_is_moved_aside_and_its_pictures_are_never_swept(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Only "file is not a database" sets the file aside; the new database knows none of the pictures the old
    one kept, so neither the sweep nor a removal deletes them (the owner may still restore the old file)."""
    store = await opened(tmp_path)
    await store.add_style(1, "old", png(1), "x", 1)
    await store.keep_job("old", 1, 1, "{}", [png(2)])
    await store.close()
    old_pictures = files_in(store.pictures)
    (tmp_path / DATABASE).write_bytes(b"this is not SQLite " * 100)
    with caplog.at_level(logging.WARNING):
        store = await opened(tmp_path)
    try:
        assert store.mode is Mode.WRITABLE
        await store.add_style(1, "fresh", png(3), "x", 1)
        assert [s.name for s in await store.styles(1)] == ["fresh"]
        assert await store.sweep(now=time.time() + 30 * DAY) == Sweep(0, 0, 0)
        assert await store.remove_style(1, "fresh") and files_in(store.pictures) == old_pictures
    finally:
        await store.close()
    [aside] = tmp_path.glob(f"{DATABASE}.corrupt-*")
    assert aside.read_bytes().startswith(b"this is not SQLite")
    assert "is not a database" in caplog.text and aside.name in caplog.text


def files_in(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def schema_1_with_a_style(folder: Path) -> Path:
    """A database of schema 1 (rollback journal, as SQLite starts) holding one style, its picture on disk."""
    (folder / "pictures").mkdir(parents=True)
    (folder / "pictures" / "style.png").write_bytes(png(1))
    path = folder / DATABASE
    with closing(sqlite3.connect(path)) as db:
        db.executescript(f"BEGIN; {MIGRATIONS[0]}; PRAGMA user_version = 1; COMMIT;")
        db.execute("INSERT INTO styles VALUES (1, 'kept', 'style.png', 'x', 1, 0)")
        db.commit()
    return path


def assert_untouched(folder: Path, before: dict[str, bytes], pictures: dict[str, bytes]) -> None:
    """The database file is as it was, nothing was set aside, no picture was deleted."""
    assert files_in(folder / "pictures") == pictures
    assert {n: b for n, b in files_in(folder).items() if n.startswith(DATABASE)} == before


async def test_a_failing_migration_leaves_the_file_as_it_was_and_runs_read_only(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Schema 2 cannot apply to a schema-1 database whose jobs table was given a `given` column by hand: the
    migration is undone whole (its first column is not left behind), nothing is moved aside or swept, and the
    store runs read-only — what it holds stays readable — saying why."""
    path = schema_1_with_a_style(tmp_path)
    with closing(sqlite3.connect(path)) as db:
        db.execute("ALTER TABLE jobs ADD COLUMN given TEXT")
    before, pictures = {DATABASE: path.read_bytes()}, files_in(tmp_path / "pictures")
    with caplog.at_level(logging.WARNING):
        store = await opened(tmp_path)
    try:
        assert store.mode is Mode.READ_ONLY and "schema 2" in store.reason and "given" in store.reason
        [style] = await store.styles(1)
        assert await store.picture(style.picture) == png(1)
        for write in (store.sweep(), store.add_style(1, "new", png(2), "x", 1), store.forget(1)):
            with pytest.raises(StorageUnavailable):
                await write
        assert not store.keeps_jobs
    finally:
        await store.close()
    assert_untouched(tmp_path, before, pictures)
    assert "schema 2" in caplog.text and "left as it was" in caplog.text


async def test_a_database_locked_at_start_up_is_waited_for(tmp_path: Path) -> None:
    """Another connection holding the database in exclusive locking mode is waited for (the busy timeout):
    released within the wait, the store opens writable, nothing moved aside."""
    store = await opened(tmp_path)
    await store.add_style(1, "kept", png(1), "x", 1)
    await store.close()
    other = exclusive(tmp_path / DATABASE)
    release = threading.Timer(0.3, other.close)
    release.start()
    store = await opened(tmp_path, lock_wait=10)
    try:
        assert store.mode is Mode.WRITABLE and [s.name for s in await store.styles(1)] == ["kept"]
    finally:
        release.join()
        await store.close()
    assert list(tmp_path.glob(f"{DATABASE}.corrupt-*")) == []


def exclusive(path: Path) -> sqlite3.Connection:
    """A connection that holds `path` locked until it closes (locking_mode=EXCLUSIVE after a write)."""
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("PRAGMA locking_mode=EXCLUSIVE")
    other.execute("BEGIN IMMEDIATE")
    other.execute("UPDATE styles SET credit = credit")
    other.execute("COMMIT")
    return other


async def test_a_database_locked_past_the_wait_is_left_alone(tmp_path: Path,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    """Held past the wait, the lock leaves the store without its database — not moved aside, not replaced by a
    new empty one, nothing swept — and the log says another program holds it."""
    store = await opened(tmp_path)
    await store.add_style(1, "kept", png(1), "x", 1)
    await store.close()
    other = exclusive(tmp_path / DATABASE)
    try:
        before = {n: b for n, b in files_in(tmp_path).items() if n.startswith(DATABASE)}
        pictures = files_in(store.pictures)
        with caplog.at_level(logging.WARNING):
            store = await opened(tmp_path, lock_wait=0.2)
        try:
            assert store.mode is Mode.UNAVAILABLE and "locked" in store.reason
            with pytest.raises(StorageUnavailable):
                await store.sweep()
        finally:
            await store.close()
        assert_untouched(tmp_path, before, pictures)
    finally:
        other.close()
    assert "locked" in caplog.text and "left as it was" in caplog.text


async def test_a_reader_on_a_rollback_journal_database_leaves_it_read_only(tmp_path: Path) -> None:
    """A reader's lock on a rollback-journal database stops the switch to WAL and the migrations, not the
    reading: after the wait the store runs read-only, its styles in use, the file as it was."""
    path = schema_1_with_a_style(tmp_path)
    before, pictures = {DATABASE: path.read_bytes()}, files_in(tmp_path / "pictures")
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT * FROM styles").fetchall()  # holds a shared lock until the transaction ends
    try:
        store = await opened(tmp_path, lock_wait=0.2)
        try:
            assert store.mode is Mode.READ_ONLY and "locked" in store.reason
            assert [s.name for s in await store.styles(1)] == ["kept"]
        finally:
            await store.close()
    finally:
        reader.close()
    assert_untouched(tmp_path, before, pictures)


async def test_a_damaged_database_is_not_moved_aside(tmp_path: Path) -> None:
    """A database SQLite reads as damaged ("disk image is malformed") is still the servers' styles: it is
    left where it is for its owner to recover, and the store runs without writing."""
    store = await opened(tmp_path)
    for n in range(60):
        await store.add_style(1, f"style{n}", png(n), "x" * 200, 1)
    await store.close()
    path = tmp_path / DATABASE
    damaged = bytearray(path.read_bytes())
    damaged[4096 * 2: 4096 * 3] = b"\xff" * 4096
    path.write_bytes(bytes(damaged))
    before, pictures = {DATABASE: bytes(damaged)}, files_in(store.pictures)
    store = await opened(tmp_path)
    try:
        assert not store.writable and "damaged" in store.reason
    finally:
        await store.close()
    assert_untouched(tmp_path, before, pictures)


async def test_an_unwritable_folder_leaves_what_is_there_readable(tmp_path: Path) -> None:
    store = await opened(tmp_path)
    await store.add_style(1, "kept", png(1), "x", 1)
    await store.close()
    (tmp_path / ".write-test").mkdir()  # the write probe fails, as in a folder owned by someone else
    store = await opened(tmp_path)
    try:
        assert store.mode is Mode.READ_ONLY and "cannot write there" in store.describe()
        [style] = await store.styles(1)
        assert await store.picture(style.picture) == png(1)
        with pytest.raises(StorageUnavailable, match="read-only here"):
            await store.add_style(1, "new", png(2), "x", 1)
        assert not store.keeps_jobs
    finally:
        await store.close()


async def test_no_folder_at_all_is_unavailable_not_fatal(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the folder should be")
    store = await opened(blocker / "data")
    try:
        assert store.mode is Mode.UNAVAILABLE and "cannot write there" in store.describe()
        with pytest.raises(StorageUnavailable, match="not available here"):
            await store.styles(1)
    finally:
        await store.close()


async def test_newer_schema_is_left_alone(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / DATABASE)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    store = await opened(tmp_path)
    try:
        assert store.mode is Mode.READ_ONLY and "newer version" in store.describe()
    finally:
        await store.close()


@pytest.mark.skipif(any(importlib.util.find_spec(name) is None for name in ("celery", "redis")),
                    reason="needs celery and redis (the Celery backend's packages) importable")
def test_celery_workers_never_load_the_store() -> None:
    code = "import sys, bot.jobs.worker, bot.jobs.celery; print('bot.storage' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"



async def test_pictures_kept_before_the_list_of_pictures_are_still_collected(tmp_path: Path) -> None:
    """Schema 4 lists the files the database wrote: those a schema-3 database refers to are listed, so removing
    the style and forgetting the job still deletes them; a file it never referred to stays."""
    (tmp_path / "pictures").mkdir()
    for name, seed in (("style.png", 1), ("photo.png", 2), ("stranger.png", 3)):
        (tmp_path / "pictures" / name).write_bytes(png(seed))
    with closing(sqlite3.connect(tmp_path / DATABASE)) as db:
        db.executescript(f"BEGIN; {''.join(MIGRATIONS[:3])}; PRAGMA user_version = 3; COMMIT;")
        db.execute("INSERT INTO styles VALUES (1, 'kept', 'style.png', 'x', 1, 0)")
        db.execute("INSERT INTO jobs (id, user_id, guild_id, finished, settings, pictures) "
                   "VALUES ('j', 5, 1, ?, '{}', '[\"photo.png\", \"style.png\"]')", (time.time(),))
        db.commit()
    store = await opened(tmp_path)
    try:
        assert await store.remove_style(1, "kept") and await store.forget(5) == 1
        assert list(files_in(store.pictures)) == ["stranger.png"]
    finally:
        await store.close()


async def test_forget_deletes_the_jobs_painted_from_a_members_photos_and_those_they_ran(tmp_path: Path) -> None:
    """A kept job belongs to whoever posted its photo (its owner) and to whoever ran it: either one's `forget`
    deletes it — Bob's photo that Alice painted from the menu goes with Bob's forget too."""
    alice, bob, carol = 1, 2, 3
    store = await opened(tmp_path)
    try:
        assert await store.keep_job("mine", alice, 9, "{}", [png(1)])
        assert await store.keep_job("menu", bob, 9, "{}", [png(2)], ran_by=alice)  # alice painted bob's photo
        assert await store.keep_job("again", alice, 9, "{}", [png(1), png(3)], ran_by=carol)
        kept = await store.kept_job("menu")
        assert kept is not None and kept.user_id == bob
        assert await store.forget(carol) == 1 and await store.kept_job("again") is None
        assert await store.forget(bob) == 1 and await store.kept_job("menu") is None
        assert files_in(store.pictures) == {(await store.kept_job("mine")).pictures[0]: png(1)}  # type: ignore[union-attr]
        assert await store.forget(alice) == 1 and files_in(store.pictures) == {}
        # a job whose inputs were taken in before its owner's (or its runner's) forget is not kept after it
        before = time.time() - 1
        assert not await store.keep_job("late", bob, 9, "{}", [png(4)], since=before)
        assert not await store.keep_job("late", 5, 9, "{}", [png(4)], ran_by=carol, since=before)
        assert await store.kept_job("late") is None and files_in(store.pictures) == {}
        assert await store.keep_job("new", bob, 9, "{}", [png(4)], since=time.time())
    finally:
        await store.close()


def held(job: str, owner: int, *seeds: int) -> HeldPainting:
    return HeldPainting(job, owner, f"<@{owner}> here is your painting!",
                        tuple((f"{n}.png" if n % 2 else f"{n}.gif", png(n)) for n in seeds), '{"title": "Your painting"}')


async def test_undelivered_paintings_survive_a_restart_bounded_and_told_once(tmp_path: Path) -> None:
    """Held for their owner only, across a restart; the newest HOLD_PER_OWNER per owner; the owner is told once;
    delivering one deletes it and its files; within the disk cap; gone after keep_days (read or swept)."""
    alice, bob = 1, 2
    store = await opened(tmp_path, keep_days=7)
    assert await store.hold(held("a1", alice, 1, 2)) and await store.hold(held("b1", bob, 3))
    await store.close()
    store = await opened(tmp_path, keep_days=7)
    try:
        assert await store.untold_owners() == {alice, bob}
        [painting] = await store.held(alice)
        assert painting == held("a1", alice, 1, 2)  # its files under the names they were posted with
        assert [p.job for p in await store.held(bob)] == ["b1"]
        assert await store.tell_held(alice) == ["a1"] and await store.tell_held(alice) == []
        assert await store.untold_owners() == {bob}
        for n in range(2, 2 + HOLD_PER_OWNER):
            assert await store.hold(held(f"a{n}", alice, 10 + n))
        assert [p.job for p in await store.held(alice)] == [f"a{n}" for n in range(2, 2 + HOLD_PER_OWNER)]
        assert await store.tell_held(alice) == [f"a{n}" for n in range(2, 2 + HOLD_PER_OWNER)]  # news again
        assert png(1) not in files_in(store.pictures).values()  # the dropped painting's files are gone
        await store.release("a2")
        assert [p.job for p in await store.held(alice)] == ["a3", "a4"] and png(12) not in files_in(store.pictures).values()
        store.max_bytes = used_bytes(tmp_path) + len(png(20)) // 2
        assert not await store.hold(held("a9", alice, 20))  # would pass the disk cap: not held
        assert [p.job for p in await store.held(alice)] == ["a3", "a4"]
        store.keep_days = 0.5 / DAY
        await asyncio.sleep(0.6)
        assert await store.held(alice) == [] and await store.untold_owners() == set()
        await store.sweep()
        assert files_in(store.pictures) == {}
    finally:
        await store.close()


async def test_forget_deletes_what_is_held_for_the_member(tmp_path: Path) -> None:
    alice, bob = 1, 2
    store = await opened(tmp_path)
    try:
        assert await store.hold(held("a1", alice, 1)) and await store.hold(held("a2", alice, 2))
        assert await store.hold(held("b1", bob, 3))
        assert await store.forget_held(alice) == 2 and await store.held(alice) == []
        assert list(files_in(store.pictures).values()) == [png(3)]
    finally:
        await store.close()


async def test_held_paintings_cannot_take_the_disk_cap_from_kept_jobs(tmp_path: Path) -> None:
    """Undeliverable paintings from many members (each within HOLD_PER_OWNER) stop at their share of the disk
    cap: they filled all of it, and then no job was kept (and the sweep deleted the kept ones) for keep_days."""
    store = await opened(tmp_path)
    try:
        store.max_bytes = used_bytes(tmp_path) + 40 * len(png(0))
        owners = [owner for owner in range(1, 41) if await store.hold(held(f"h{owner}", owner, owner))]
        assert 0 < len(owners) < 40
        assert await store.keep_job("kept", 99, 9, "{}", [png(100), png(101)])
        await store.sweep()
        assert await store.kept_job("kept") is not None
    finally:
        await store.close()
