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
import time
from pathlib import Path

import pytest
from PIL import Image

from bot.storage import DATABASE, DAY, MIGRATIONS, Mode, Store, StorageUnavailable, Sweep


def png(seed: int, side: int = 16) -> bytes:
    """A distinct, repeatable, incompressible picture per seed."""
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), random.Random(seed).randbytes(side * side * 3)).save(out, "PNG")
    return out.getvalue()


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
        store.max_bytes = store._used_bytes() + len(png(3)) + len(png(4)) // 2
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


async def test_a_corrupt_database_is_moved_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / DATABASE).write_bytes(b"this is not SQLite " * 100)
    with caplog.at_level(logging.WARNING):
        store = await opened(tmp_path)
    try:
        assert store.mode is Mode.WRITABLE
        await store.add_style(1, "fresh", png(1), "x", 1)
        assert [s.name for s in await store.styles(1)] == ["fresh"]
    finally:
        await store.close()
    [aside] = tmp_path.glob(f"{DATABASE}.corrupt-*")
    assert aside.read_bytes().startswith(b"this is not SQLite")
    assert "is not a usable database" in caplog.text and aside.name in caplog.text


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
        with pytest.raises(StorageUnavailable, match="not available here"):
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

