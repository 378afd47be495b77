"""Errors raised by the backend, catchable as Celery's or Django's."""

from celery.exceptions import BackendError
from celery.exceptions import ImproperlyConfigured as CeleryImproperlyConfigured
from django.core.exceptions import ImproperlyConfigured as DjangoImproperlyConfigured


class ImproperlyConfigured(CeleryImproperlyConfigured, DjangoImproperlyConfigured):
    """A setting is wrong: the message names the setting, the hint (if any) what to do.

    ``str()`` gives both, as a worker's log shows it; the system check shows
    the message and the hint apart, as Django's check output does.
    """

    def __init__(self, message: str = "", hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if not self.hint:
            return self.message
        separator = " " if self.message.endswith((".", "?", "!")) else ". "
        return f"{self.message}{separator}{self.hint}"


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
