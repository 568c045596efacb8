"""The job queue: `base` is the interface (Job, JobBackend, …), `inprocess` paints in this process's
threads, `celery` and `worker` are the bot's and the GPU workers' halves of the Celery + Redis queue.

The Celery modules are not imported here: the in-process bot never loads Celery.
"""

from .base import (SHUTDOWN, UNEXPECTED, Admission, BatchRunner, Batching, ClipProgress, Detached, Job, JobBackend,
                   QueueFull, Runner, Snapshot, Status, engine_batching, engine_runner, settings_from, settings_json,
                   settle, short_id, timeout_error)
from .inprocess import InProcessBackend

__all__ = ["SHUTDOWN", "UNEXPECTED", "Admission", "BatchRunner", "Batching", "ClipProgress", "Detached",
           "InProcessBackend", "Job", "JobBackend", "QueueFull", "Runner", "Snapshot", "Status", "engine_batching",
           "engine_runner", "settings_from", "settings_json", "settle", "short_id", "timeout_error"]
