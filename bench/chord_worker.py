"""The worker side of bench:chords: its Django settings, and one log line per task.

The tests' settings, then the Celery settings of one configuration, given as
JSON with Celery's lowercase names in BENCH_CELERY. After each task the
worker logs a ``bench-task {...}`` line: the chord state writes this backend
made and how many of them lost a race (a conditional write that found
another version), and, with BENCH_FOLDER set, the file system calls that
named a path in that folder and the paths they named. With BENCH_NO_FSYNC
set, os.fsync does nothing in the worker: what the folder's crash safety
costs, measured (not a setting of the backend).
"""

import json
import logging
import os
from contextlib import ExitStack

from celery import signals

from support.fscalls import touching
from support.project.settings import *  # noqa: F403

if os.environ.get("BENCH_NO_FSYNC"):
    os.fsync = lambda fd: None

for _name, _value in json.loads(os.environ.get("BENCH_CELERY") or "{}").items():
    globals()[f"CELERY_{_name.upper()}"] = _value

logger = logging.getLogger("bench")
_task = {"chord_writes": 0, "conflicts": 0}
_counting = ExitStack()
_touched = []


def _count_chord_writes() -> None:
    """Wraps the backend's chord bookkeeping writes once per process (imported late, after Django)."""
    from django_storage_celery_results.backends import StorageBackend
    from django_storage_celery_results.exceptions import VersionMismatch

    write = StorageBackend.write_encoded
    if getattr(write, "counted", False):
        return

    def counted_write(self, name, value, *mode):
        _task["chord_writes"] += 1
        try:
            return write(self, name, value, *mode)
        except VersionMismatch:
            _task["conflicts"] += 1
            raise

    counted_write.counted = True
    StorageBackend.write_encoded = counted_write


@signals.task_prerun.connect
def _started(task_id=None, task=None, **kwargs):
    _count_chord_writes()
    _task.update(chord_writes=0, conflicts=0)
    _touched.clear()
    if os.environ.get("BENCH_FOLDER"):
        _touched.append(_counting.enter_context(touching(os.environ["BENCH_FOLDER"])))


@signals.task_postrun.connect
def _finished(task_id=None, task=None, **kwargs):
    _counting.close()
    line = {"task": task.name, "id": task_id, **_task}
    if _touched:
        line.update(calls=_touched[0].calls, paths=sorted(_touched[0].paths))
    logger.warning("bench-task %s", json.dumps(line))
