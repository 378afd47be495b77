"""What botocore's errors mean for results: the one place S3 error codes are read.

The adapter and the connectivity check both classify with ``ERRORS``; how a
403 on a read is told apart (``ForbiddenReads``) is in docs/providers/s3.md#misconfigured.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from urllib3.exceptions import ProtocolError

from django_storage_celery_results.adapters import RETRYABLE_STATUSES
from django_storage_celery_results.errors import Kind, StoreErrors

#: Error codes of transient conditions worth another try.
RETRYABLE_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestTimeout",
        "InternalError",
        "ServiceUnavailable",
        "OperationAborted",
    }
)
MISSING_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired"}
)


def status_and_code(exc: ClientError) -> tuple[int, str]:
    """The HTTP status and S3 error code of a failed call."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    code = exc.response.get("Error", {}).get("Code") or ""
    return int(status), str(code)


def code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        status, error_code = status_and_code(exc)
        return error_code or str(status)
    return type(exc).__name__


def kind(exc: BaseException, missing_means_bucket: bool = False) -> Kind | None:
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return Kind.CREDENTIALS
    # no answer: refused, reset, timed out, or a body cut short (urllib3's error, as botocore passes it on)
    if isinstance(exc, (HTTPClientError, BotoConnectionError, ProtocolError)):
        return Kind.UNREACHABLE
    if not isinstance(exc, ClientError):
        return None
    status, error_code = status_and_code(exc)
    if error_code == "NoSuchBucket":
        return Kind.MISSING_BUCKET
    if error_code in CREDENTIAL_CODES:
        return Kind.CREDENTIALS
    # a 412 is a precondition that failed whatever its body says: one cut short
    # (no error code to read) must not fail a write the backend can settle
    if status == 412 or (status == 409 and error_code in CONFLICT_CODES):
        return Kind.CONFLICT
    if status == 404 or error_code in MISSING_CODES:
        return Kind.MISSING_OBJECT
    if error_code == "AccessDenied":
        return Kind.PERMISSION
    if error_code in RETRYABLE_CODES or status in RETRYABLE_STATUSES:
        return Kind.RETRYABLE
    return None


ERRORS = StoreErrors(raised=(ClientError, BotoCoreError, ProtocolError), kind=kind, code=code)


class ForbiddenReads:
    """Whether a read refused with 403 AccessDenied means a missing result (see above)."""

    def __init__(self) -> None:
        #: None until the first refused read; then whether the credentials may list.
        self.can_list: bool | None = None

    def missing(self, client: Any, bucket: str, key: str) -> bool:
        if self.can_list is False:
            return True
        try:
            listing = client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        except ClientError as exc:
            if status_and_code(exc)[1] != "AccessDenied":
                raise
            self.can_list = False
            return True
        self.can_list = True
        return not any(item.get("Key") == key for item in listing.get("Contents", ()))
