"""S3Storage adapter: the storage's own boto3 client, one request per operation.

A new result is one create-only ``PutObject`` (``If-None-Match: *``); a
task's next state is one version-matched ``PutObject`` (``If-Match: <ETag>``);
a read is one ``GetObject``. ``S3Storage.save()`` cannot send those
conditions (s3transfer rejects them) and opens a multipart upload, so the
adapter calls the client directly, with the storage's own credentials,
endpoint, bucket, location and object parameters. What S3's errors mean is
in ``errors.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from storages.backends.s3 import S3Storage

from django_storage_celery_results.adapters import (
    CREATE,
    Content,
    ListedObject,
    ObjectStoreAdapter,
    PutMode,
    StoredObject,
    Update,
    refuse_oversized,
)
from django_storage_celery_results.errors import Kind

from .errors import ERRORS, ForbiddenReads

SSE_CUSTOMER_KEYS = ("SSECustomerAlgorithm", "SSECustomerKey", "SSECustomerKeyMD5")


class S3Adapter(ObjectStoreAdapter):
    storage: S3Storage
    store = "S3"
    scheme = "s3"
    bucket_setting = "AWS_STORAGE_BUCKET_NAME"
    credential_settings = (
        "access_key / secret_key / security_token (AWS_S3_ACCESS_KEY_ID, AWS_S3_SECRET_ACCESS_KEY, "
        "AWS_SESSION_TOKEN), a session_profile or an instance role"
    )
    read_permission = "s3:GetObject (and kms:Decrypt for SSE-KMS)"
    errors = ERRORS
    #: DeleteObjects takes at most this many keys per request.
    delete_batch = 1000

    def __init__(self, storage: S3Storage) -> None:
        super().__init__(storage)
        # The storage's own client: built from its credentials, endpoint,
        # region and client config. boto3 clients are thread-safe, so one
        # serves the batch-read threads too (storage.connection is per thread).
        self.client = storage.connection.meta.client
        self.max_concurrency = self.client.meta.config.max_pool_connections
        self.forbidden_reads = ForbiddenReads()

    def _parameters(self, key: str) -> dict[str, Any]:
        """The storage's object parameters for a result, by its name as save() would pass it."""
        return dict(self.storage.get_object_parameters(key.removeprefix(self.prefix)))

    def _write_parameters(self, key: str, content: Content) -> dict[str, Any]:
        params = self._parameters(key)
        if "ACL" not in params and self.storage.default_acl:
            params["ACL"] = self.storage.default_acl
        params["ContentType"] = self.content_type(content)
        params.pop("ContentEncoding", None)
        if content.content_encoding:
            params["ContentEncoding"] = content.content_encoding
        return params

    def _read_parameters(self, key: str) -> dict[str, Any]:
        params = self._parameters(key)
        return {name: params[name] for name in SSE_CUSTOMER_KEYS if name in params}

    def get(self, key: str) -> StoredObject:
        response = self.client.get_object(Bucket=self.bucket_name, Key=key, **self._read_parameters(key))
        with response["Body"] as body:
            # the headers say the size: an oversized body is closed unread
            refuse_oversized(response.get("ContentLength"), self.read_limit, response.get("ETag"))
            data = body.read()
        return StoredObject(data, response.get("ETag"), response.get("ContentEncoding"))

    def is_missing(self, key: str, exc: BaseException) -> bool:
        kind = self.kind(exc)
        if kind is Kind.PERMISSION:
            return self.forbidden_reads.missing(self.client, self.bucket_name, key)
        return kind is Kind.MISSING_OBJECT

    def write(self, key: str, data: bytes, mode: PutMode, content: Content) -> str | None:
        params = self._write_parameters(key, content)
        if mode == CREATE:
            params["IfNoneMatch"] = "*"
        elif isinstance(mode, Update):
            params["IfMatch"] = mode.version
        response = self.client.put_object(Bucket=self.bucket_name, Key=key, Body=data, **params)
        return response.get("ETag")

    def remove(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket_name, Key=key)

    def remove_batch(self, keys: list[str]) -> list[tuple[str, object]]:
        response = self.client.delete_objects(
            Bucket=self.bucket_name, Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True}
        )
        return [
            (error.get("Key"), error.get("Code"))
            for error in response.get("Errors", ())
            if error.get("Code") != "NoSuchKey"
        ]

    def list_entries(self, prefix: str) -> Iterable[ListedObject]:
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket_name, Prefix=prefix, Delimiter="/"
        )
        return (
            ListedObject(item["Key"], item["LastModified"], item.get("Size"))
            for page in pages
            for item in page.get("Contents", ())
        )

    def list_entries_page(
        self, prefix: str, limit: int, cursor: str | None
    ) -> tuple[Iterable[ListedObject], str | None]:
        more = {"ContinuationToken": cursor} if cursor else {}
        page = self.client.list_objects_v2(
            Bucket=self.bucket_name, Prefix=prefix, Delimiter="/", MaxKeys=limit, **more
        )
        entries = [
            ListedObject(item["Key"], item["LastModified"], item.get("Size"))
            for item in page.get("Contents", ())
        ]
        return entries, page.get("NextContinuationToken") if page.get("IsTruncated") else None
