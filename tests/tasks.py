"""Tasks run by the end-to-end tests' worker."""

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
