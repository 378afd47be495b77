"""What azure-core's errors mean for results: the one place Azure error codes are read.

The adapter and the connectivity check both classify with ``ERRORS``. Azure
names every answer: a missing result is ``BlobNotFound``, a missing
container ``ContainerNotFound``, so no extra request is ever needed.
"""

from __future__ import annotations

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    IncompleteReadError,
    ServiceRequestError,
    ServiceResponseError,
)

from django_storage_celery_results.adapters import RETRYABLE_STATUSES
from django_storage_celery_results.errors import Kind, StoreErrors

#: A lost conditional write: the blob exists (create) or has another ETag (update).
CONFLICT_CODES = frozenset({"BlobAlreadyExists", "ConditionNotMet"})
#: An append to a blob that takes none: a block blob, or a sealed append blob.
NOT_APPENDABLE_CODES = frozenset({"InvalidBlobType", "BlobIsSealed"})
CREDENTIAL_CODES = frozenset(
    {
        "AuthenticationFailed",
        "AuthorizationFailure",
        "InvalidAuthenticationInfo",
        "NoAuthenticationInformation",
    }
)
#: The caller is known but not allowed this operation (RBAC role, SAS permissions).
PERMISSION_CODES = frozenset(
    {"AuthorizationPermissionMismatch", "AuthorizationResourceTypeMismatch", "AuthorizationServiceMismatch"}
)


def error_code(exc: BaseException) -> str:
    """The storage error code of a failed call ('' when the answer had none)."""
    code = getattr(exc, "error_code", None) or ""
    return str(getattr(code, "value", code))


def code(exc: BaseException) -> str:
    if isinstance(exc, HttpResponseError):
        return error_code(exc) or str(exc.status_code or type(exc).__name__)
    return type(exc).__name__


def kind(exc: BaseException, missing_means_bucket: bool = False) -> Kind | None:
    # connection failures, resets and timeouts, on the way out or back
    if isinstance(exc, (ServiceRequestError, ServiceResponseError, IncompleteReadError)):
        return Kind.UNREACHABLE
    if not isinstance(exc, HttpResponseError):
        return None
    error = error_code(exc)
    if error == "ContainerNotFound":
        return Kind.MISSING_BUCKET
    if error == "BlobNotFound":
        return Kind.MISSING_OBJECT
    if error in CONFLICT_CODES:
        return Kind.CONFLICT
    if error in NOT_APPENDABLE_CODES:
        return Kind.NOT_APPENDABLE
    if error in CREDENTIAL_CODES or isinstance(exc, ClientAuthenticationError):
        return Kind.CREDENTIALS
    if error in PERMISSION_CODES:
        return Kind.PERMISSION
    if exc.status_code in RETRYABLE_STATUSES:  # Azure throttles with 503 ServerBusy
        return Kind.RETRYABLE
    return None


ERRORS = StoreErrors(raised=(AzureError,), kind=kind, code=code)
