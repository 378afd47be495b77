"""S3Storage adapter: the storage's own boto3 client, one request per operation.

A new result is one create-only ``PutObject`` (``If-None-Match: *``); a
task's next state is one version-matched ``PutObject`` (``If-Match: <ETag>``);
a read is one ``GetObject``. ``S3Storage.save()`` cannot send those
conditions (s3transfer rejects them) and opens a multipart upload, so the
adapter calls the client directly, with the storage's own credentials,
endpoint, bucket, location and object parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from botocore.exceptions import ClientError, HTTPClientError
from storages.backends.s3 import S3Storage

from django_storage_celery_results.adapters import (
    CREATE,
    OVERWRITE,
    Content,
    ListedObject,
    ObjectStoreAdapter,
    PutMode,
    StoredObject,
    Update,
    in_batches,
    not_deleted,
    required_setting,
)
from django_storage_celery_results.exceptions import VersionMismatch

#: DeleteObjects takes at most this many keys per request.
DELETE_BATCH = 1000
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
#: An S3 GET of a missing key answers 403 AccessDenied when the credentials
#: lack s3:ListBucket; read() reports it as missing (PENDING), like a 404.
MISSING_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
SSE_CUSTOMER_KEYS = ("SSECustomerAlgorithm", "SSECustomerKey", "SSECustomerKeyMD5")


def error_of(exc: ClientError) -> tuple[int, str]:
    """The HTTP status and S3 error code of a failed call."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    code = exc.response.get("Error", {}).get("Code") or ""
    return int(status), str(code)


class S3Adapter(ObjectStoreAdapter):
    storage: S3Storage

    def __init__(self, storage: S3Storage) -> None:
        super().__init__(storage)
        self.bucket_name = required_setting(
            storage.bucket_name, "S3", "bucket", "bucket_name", "AWS_STORAGE_BUCKET_NAME"
        )
        # The storage's own client: built from its credentials, endpoint,
        # region and client config. boto3 clients are thread-safe, so one
        # serves the batch-read threads too (storage.connection is per thread).
        self.client = storage.connection.meta.client
        self.max_concurrency = self.client.meta.config.max_pool_connections

    def _write_parameters(self, name: str, content: Content) -> dict[str, Any]:
        params = dict(self.storage.get_object_parameters(name))
        if "ACL" not in params and self.storage.default_acl:
            params["ACL"] = self.storage.default_acl
        params["ContentType"] = content.content_type or "application/octet-stream"
        params.pop("ContentEncoding", None)
        if content.content_encoding:
            params["ContentEncoding"] = content.content_encoding
        return params

    def _read_parameters(self, name: str) -> dict[str, Any]:
        params = self.storage.get_object_parameters(name)
        return {key: params[key] for key in SSE_CUSTOMER_KEYS if key in params}

    def read(self, name: str) -> StoredObject | None:
        try:
            response = self.client.get_object(
                Bucket=self.bucket_name, Key=self.key(name), **self._read_parameters(name)
            )
        except ClientError as exc:
            status, code = error_of(exc)
            if status == 404 or code in MISSING_CODES or (status == 403 and code == "AccessDenied"):
                return None
            raise
        with response["Body"] as body:
            data = body.read()
        return StoredObject(data, response.get("ETag"), response.get("ContentEncoding"))

    def put(
        self, name: str, data: bytes, mode: PutMode = OVERWRITE, content: Content = Content()
    ) -> str | None:
        params = self._write_parameters(name, content)
        if mode == CREATE:
            params["IfNoneMatch"] = "*"
        elif isinstance(mode, Update):
            params["IfMatch"] = mode.version
        try:
            response = self.client.put_object(
                Bucket=self.bucket_name, Key=self.key(name), Body=data, **params
            )
        except ClientError as exc:
            status, code = error_of(exc)
            conflict = status in (409, 412) and code in ("PreconditionFailed", "ConditionalRequestConflict")
            vanished = isinstance(mode, Update) and (status == 404 or code in MISSING_CODES)
            if conflict or vanished:
                raise VersionMismatch(f"result {name!r} changed since it was read ({code})") from None
            raise
        return response.get("ETag")

    def delete(self, name: str) -> None:
        self.client.delete_object(Bucket=self.bucket_name, Key=self.key(name))

    def delete_many(self, names: Iterable[str]) -> None:
        for batch in in_batches((self.key(name) for name in names), DELETE_BATCH):
            response = self.client.delete_objects(
                Bucket=self.bucket_name, Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True}
            )
            errors = [
                (error.get("Key"), error.get("Code"))
                for error in response.get("Errors", ())
                if error.get("Code") != "NoSuchKey"
            ]
            if errors:
                raise not_deleted("S3", self, errors, len(batch))

    def list(
        self, wanted: Callable[[str], bool] = lambda name: True, prefix: str = ""
    ) -> Iterator[ListedObject]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket_name, Prefix=self.prefix + prefix, Delimiter="/"
        )
        objects = ((item["Key"], item["LastModified"]) for page in pages for item in page.get("Contents", ()))
        return self.listed(objects, wanted)

    def is_retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, HTTPClientError):  # connection resets, timeouts
            return True
        if isinstance(exc, ClientError):
            status, code = error_of(exc)
            return code in RETRYABLE_CODES or status in (500, 502, 503, 504)
        return super().is_retryable(exc)

    def describe(self) -> str:
        return f"{type(self.storage).__name__} at s3://{self.bucket_name}/{self.prefix}"
