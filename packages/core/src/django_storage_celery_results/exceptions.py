"""Errors raised by the backend, catchable as Celery's or Django's."""

from __future__ import annotations

import copyreg
import functools
from typing import Any, TypeVar, cast

from celery.exceptions import BackendError
from celery.exceptions import ImproperlyConfigured as CeleryImproperlyConfigured
from django.core.exceptions import ImproperlyConfigured as DjangoImproperlyConfigured
from kombu.exceptions import EncodeError


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


class ResultTooLarge(EncodeError, BackendError):
    """A result is larger than result_storage_max_size: nothing was stored.

    An EncodeError, so Celery's worker stores the task as FAILURE with this
    error instead (as for a result the serializer cannot encode). The only
    constructor argument is the message (naming the task and the limit), so
    Celery restores it from a stored FAILURE as it was raised.
    """

    def __init__(self, message: str, task_id: str | None = None, size: int | None = None) -> None:
        super().__init__(message)
        self.task_id = task_id
        self.size = size


class StoredObjectTooLarge(Exception):
    """An adapter's read refused an object larger than the limit it was given.

    ``size`` is the object's size where the store said it (None: more than
    the limit); ``version`` its version where known, so a task's own write
    can still replace it.
    """

    def __init__(self, size: int | None, version: str | None = None) -> None:
        super().__init__(size)
        self.size = size
        self.version = version


class ResultStoreMisconfigured(ImproperlyConfigured):
    """The store refuses every request for results: the bucket (container) does
    not exist, or the credentials are rejected or may not read results.

    Raised by reads and writes alike, in the worker and in the client, instead
    of reading the answer as "no result yet" (PENDING): a setting is wrong and
    no retry will help. The message names the bucket and the setting, never a
    credential. An ImproperlyConfigured (Celery's and Django's), since the fix
    is a setting and Celery never retries it (``exception_safe_to_retry`` says
    no). ``wrapping`` makes it an instance of the store's own error class too,
    so code that caught the SDK's error keeps working; ``cause`` is that error.
    """

    cause: BaseException | None = None

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause

    def __str__(self) -> str:  # ours, not the store error's own formatting
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (ResultStoreMisconfigured, (str(self),))

    @classmethod
    def wrapping(cls, message: str, cause: BaseException) -> ResultStoreMisconfigured:
        """The error for a store error: also an instance of the cause's class, with its attributes."""
        return _wrapping(cls, message, cause)


class StoreRequestFailed(BackendError):
    """A request to the store failed (refused, throttled, reset, timed out).

    The message says what was done to which result in which store (never a
    credential) and the store's own answer. Like ResultStoreMisconfigured it
    is also an instance of the store error's class, so retry rules and code
    that caught the SDK's error keep working; ``cause`` is that error.
    """

    cause: BaseException | None = None

    def __init__(self, message: str, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.cause = cause

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (StoreRequestFailed, (str(self),))

    @classmethod
    def wrapping(cls, message: str, cause: BaseException) -> StoreRequestFailed:
        return _wrapping(cls, message, cause)


E = TypeVar("E", ResultStoreMisconfigured, StoreRequestFailed)


def _wrapping(ours: type[E], message: str, cause: BaseException) -> E:
    both = _with_store_class(ours, type(cause))  # type: ignore[arg-type]  # classes are hashable
    if both is None:
        return ours(message, cause)
    error = cast(E, both.__new__(both))  # type: ignore[call-overload]
    error.__dict__.update(vars(cause))
    Exception.__init__(error, message)
    error.cause = cause
    return error


class _BothErrors(type):
    """The metaclass of an error class made at run time from ours and the store's."""


def _plain(ours: Any) -> Any:
    return ours


# Such a class cannot be pickled by name (the name is ours), yet a prefork
# pool pickles the type of a task's exception (billiard's ExceptionInfo) to
# send it to the main process: it travels as our plain class, as the
# exception itself does (__reduce__).
def _reduce_both(both: Any) -> Any:
    return (_plain, (both.__bases__[0],))


@functools.cache
def _metaclass_for(store_metaclass: type) -> type:
    """_BothErrors, combined with the store error's own metaclass (google-api-core has one)."""
    if store_metaclass is type or issubclass(store_metaclass, _BothErrors):  # the latter: ours, wrapped again
        metaclass: type = _BothErrors if store_metaclass is type else store_metaclass
    else:
        metaclass = type(_BothErrors.__name__, (_BothErrors, store_metaclass), {})
    copyreg.pickle(metaclass, _reduce_both)
    return metaclass


@functools.cache
def _with_store_class(ours: type[E], store_error: type[BaseException]) -> type[E] | None:
    # named like ours: logs and tracebacks read ResultStoreMisconfigured(...)
    namespace = {"__module__": __name__, "__qualname__": ours.__qualname__}
    try:
        metaclass = _metaclass_for(type(store_error))  # type: ignore[arg-type]  # classes are hashable
        return cast("type[E]", metaclass(ours.__name__, (ours, store_error), namespace))
    except TypeError:  # incompatible bases: the plain error will do
        return None
