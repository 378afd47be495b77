"""Tasks run by the workers of the end-to-end tests and the benchmarks (named tests.* as before)."""

import json
import os
import signal
import time

from celery import shared_task


@shared_task(name="tests.add")
def add(x, y):
    return x + y


@shared_task(name="tests.total")
def total(numbers):
    return sum(numbers)


@shared_task(name="tests.fail")
def fail(message):
    raise ValueError(message)


@shared_task(name="tests.echo")
def echo(value):
    return value


@shared_task(name="tests.sleep")
def sleep(seconds):
    time.sleep(seconds)
    return seconds


@shared_task(name="tests.retry_twice", bind=True, max_retries=5)
def retry_twice(self):
    if self.request.retries < 2:
        raise self.retry(countdown=0.2)
    return self.request.retries


@shared_task(name="tests.append_line")
def append_line(values, path):
    """A chord callback whose side effect proves how often it ran."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(values) + "\n")
    return values


@shared_task(name="tests.die_once", acks_late=True, reject_on_worker_lost=True)
def die_once(value, marker):
    """Kills its own pool process the first time (a lost worker), then succeeds."""
    if not os.path.exists(marker):
        with open(marker, "w", encoding="utf-8"):
            pass
        os.kill(os.getpid(), signal.SIGKILL)
    return value


@shared_task(name="tests.late_duplicate", bind=True)
def late_duplicate(self, task_id):
    """A redelivered copy of a finished task, storing its states late."""
    self.backend.mark_as_started(task_id)
    self.backend.mark_as_retry(task_id, ValueError("late duplicate"))
    self.backend.mark_as_failure(task_id, ValueError("late duplicate"))
    return task_id


@shared_task(name="tests.note_failure")
def note_failure(task_id, path):
    """An errback whose side effect proves how often it ran: one line per call
    (the failed task's id when Celery passes it, or what an immutable signature holds)."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(task_id) + "\n")


@shared_task(name="tests.text")
def text(size):
    """A result of about size bytes (a result over the size limit ends FAILURE)."""
    return "x" * size


@shared_task(name="tests.join", bind=True)
def join(self, task_ids):
    """Finished results read in one batch from inside a task, as a chord's join reads them."""
    from celery.result import ResultSet, allow_join_result

    results = ResultSet([self.app.AsyncResult(task_id) for task_id in task_ids], app=self.app)
    with allow_join_result():
        return results.join_native(timeout=30)


@shared_task(name="tests.die_while_storing", bind=True, acks_late=True, reject_on_worker_lost=True)
def die_while_storing(self, size, folder):
    """A result of size bytes whose first delivery SIGKILLs its own pool process
    a random moment later (0-30 ms: while its result is encoded, written or after);
    the redelivery completes it."""
    import random
    import threading

    marker = os.path.join(folder, self.request.id)
    if not os.path.exists(marker):
        with open(marker, "w", encoding="utf-8"):
            pass
        threading.Timer(random.uniform(0, 0.03), os.kill, (os.getpid(), signal.SIGKILL)).start()
    return "x" * size
