"""Painters for the Celery workers under test (STYLIZE_RUNNER=celery_runners:gated).

`gated` is the real engine, held after its first step while the file hold-<job id> or hold-all
exists in $STYLIZE_TEST_GATES — so a test can look at a running job, cancel it or kill its worker.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from bot.jobs import Job, Runner, engine_runner


def gated(device: str) -> Runner:
    paint = engine_runner(device)
    gates = Path(os.environ["STYLIZE_TEST_GATES"])

    def run(job: Job, report, cancel: threading.Event):
        def hold(progress) -> None:
            report(progress)
            if progress.step == 1:
                while ((gates / f"hold-{job.id}").exists() or (gates / "hold-all").exists()) \
                        and not cancel.is_set():
                    time.sleep(0.02)

        return paint(job, hold, cancel)

    return run
