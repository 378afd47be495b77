"""What google-cloud-storage's errors mean for results: the one place they are read.

The adapter and the connectivity check both classify with ``ERRORS``; how a
404 on a read is told apart from a missing bucket (``NotFoundReads``) is in
docs/providers/gcs.md#misconfigured.
"""

from __future__ import annotations

from typing import Any

import requests
from google.api_core import exceptions
from google.auth.exceptions import (
    DefaultCredentialsError,
    GoogleAuthError,
    InvalidOperation,
    RefreshError,
    TransportError,
)
from google.cloud.storage.exceptions import DataCorruption
from urllib3.exceptions import ProtocolError
from urllib3.exceptions import TimeoutError as SocketTimeout

from django_storage_celery_results.adapters import RETRYABLE_STATUSES
from django_storage_celery_results.errors import Kind, StoreErrors

#: No answer: connection refused or reset, a timeout, a body cut short (a raw
#: download reads urllib3's stream, so its errors, a read timeout among them,
#: come unwrapped).
NO_ANSWER = (
    ProtocolError,
    SocketTimeout,
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    TransportError,
)
#: A 401 makes google-auth refresh the credentials: RefreshError when that
#: fails, InvalidOperation for credentials that cannot refresh (anonymous).
CREDENTIAL_ERRORS = (RefreshError, InvalidOperation, DefaultCredentialsError, exceptions.Unauthorized)


def code(exc: BaseException) -> str:
    if isinstance(exc, exceptions.GoogleAPICallError):
        return f"HTTP {exc.code} {type(exc).__name__}"
    return type(exc).__name__


def kind(exc: BaseException, missing_means_bucket: bool = False) -> Kind | None:
    if isinstance(exc, exceptions.RetryError) and exc.cause is not None:
        exc = exc.cause  # the client's own retries ran out on this error
    if isinstance(exc, CREDENTIAL_ERRORS):
        return Kind.CREDENTIALS
    if isinstance(exc, exceptions.NotFound):  # an upload or a listing can only miss the bucket
        return Kind.MISSING_BUCKET if missing_means_bucket else Kind.MISSING_OBJECT
    if isinstance(exc, exceptions.PreconditionFailed):
        return Kind.CONFLICT
    if isinstance(exc, exceptions.Forbidden):
        return Kind.PERMISSION
    if isinstance(exc, exceptions.GoogleAPICallError):
        return Kind.RETRYABLE if exc.code in RETRYABLE_STATUSES else None
    if isinstance(exc, NO_ANSWER):
        return Kind.UNREACHABLE
    if isinstance(exc, DataCorruption):  # a download whose checksum did not match
        return Kind.RETRYABLE
    return None


ERRORS = StoreErrors(
    raised=(
        exceptions.GoogleAPIError,
        GoogleAuthError,
        requests.RequestException,
        DataCorruption,
        ProtocolError,
        SocketTimeout,
    ),
    kind=kind,
    code=code,
)


class NotFoundReads:
    """Whether a read answered 404 means a missing result or a missing bucket (see above)."""

    def __init__(self) -> None:
        self.unconfirmed = 0

    def missing(self, adapter: Any, key: str) -> bool:
        if adapter.bucket_found:
            return True
        self.unconfirmed += 1
        if self.unconfirmed < 2:
            return True  # the first one is taken at its word: no extra request
        try:
            blobs = adapter.client.list_blobs(
                adapter.bucket,
                prefix=key,
                max_results=1,
                fields="items(name)",
                retry=adapter.retry,
                timeout=adapter.request_timeout,
            )
            list(blobs)
        except exceptions.NotFound as exc:
            raise adapter.misconfigured(Kind.MISSING_BUCKET, exc) from exc
        except exceptions.Forbidden:
            pass  # may not list: nothing to learn, take 404s at their word
        adapter.bucket_found = True
        return True
