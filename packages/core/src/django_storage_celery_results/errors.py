"""The words every object store's errors are classified in.

Each provider keeps one ``errors`` module that sorts its SDK's exceptions
into these kinds (as s3fs and gcsfs keep one errors/retry module); its
adapter and its connectivity check both use it, so one error code never
means two things in two places.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass


class Kind(enum.Enum):
    #: The object does not exist (a result not stored yet).
    MISSING_OBJECT = "missing object"
    #: The bucket (container) does not exist.
    MISSING_BUCKET = "missing bucket"
    #: A create-only or version-matched write lost.
    CONFLICT = "conflict"
    #: The store answered with a transient condition worth another try:
    #: throttling, a server or gateway hiccup.
    RETRYABLE = "retryable"
    #: No credentials, or the store rejected them (a wrong key, an expired token).
    CREDENTIALS = "credentials"
    #: The store knows the caller but does not allow the operation.
    PERMISSION = "permission"
    #: An append to an object that takes none: another kind of object, or sealed.
    NOT_APPENDABLE = "not appendable"
    #: No answer: the endpoint cannot be reached, the connection was reset or
    #: timed out (worth another try too; in a check, "cannot reach").
    UNREACHABLE = "unreachable"


#: The kinds worth another try.
TRANSIENT = frozenset({Kind.RETRYABLE, Kind.UNREACHABLE})

#: The kinds that mean an append found no object that takes appends.
NOT_APPENDING = frozenset({Kind.MISSING_OBJECT, Kind.NOT_APPENDABLE})

#: The kinds that no retry fixes and that must never read as "no result yet".
MISCONFIGURED = frozenset({Kind.MISSING_BUCKET, Kind.CREDENTIALS})


@dataclass(frozen=True)
class StoreErrors:
    """A provider's SDK errors in our words."""

    #: Everything a call to the store may raise that is the store's answer or
    #: the network's (anything else is a bug and propagates).
    raised: tuple[type[BaseException], ...]
    #: The kind of an error, or None when it is none of the above; the flag is
    #: set for requests where a 404 can only mean the bucket (a write, a listing).
    kind: Callable[[BaseException, bool], Kind | None]
    #: A short name of the error for messages: an error code, never a secret.
    code: Callable[[BaseException], str] = lambda exc: type(exc).__name__
