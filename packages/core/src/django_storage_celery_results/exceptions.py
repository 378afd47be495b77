"""Errors raised by the backend, catchable as Celery's or Django's."""

from celery.exceptions import BackendError
from celery.exceptions import ImproperlyConfigured as CeleryImproperlyConfigured
from django.core.exceptions import ImproperlyConfigured as DjangoImproperlyConfigured


class ImproperlyConfigured(CeleryImproperlyConfigured, DjangoImproperlyConfigured):
    """A setting is wrong; the message names the setting and the fix."""


class InvalidResultId(ValueError):
    """A task, group or chord id that cannot be stored safely."""


class VersionMismatch(Exception):
    """A conditional write lost: the object exists (create) or changed (update)."""


class InvalidStoredResult(BackendError, ValueError):
    """What the storage holds under a result's name is not a Celery result.

    The message names the task or group id and where it is stored, never
    the stored bytes.
    """

    def __init__(self, message: str, task_id: str) -> None:
        super().__init__(message)
        self.task_id = task_id
