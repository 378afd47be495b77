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
