"""GoogleCloudStorage adapter: the storage's own client and bucket, one request per operation.

A new result is one multipart upload with ``ifGenerationMatch=0``; a task's
next state is one upload matched against the generation it replaces; a read
is one media download, whose ``x-goog-generation`` header is the version.
``GoogleCloudStorage.save()`` sends no preconditions and its file object asks
for the metadata before the media, so the adapter calls the client directly,
with the storage's credentials, project, bucket, location and object
parameters. What GCS's errors mean is in ``errors.py``; the private
google-cloud-storage APIs it needs are in ``internals.py``.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

import requests
from google.auth.exceptions import DefaultCredentialsError
from google.cloud.storage import Blob
from google.cloud.storage.retry import DEFAULT_RETRY

from django_storage_celery_results.adapters import (
    CREATE,
    Content,
    ListedObject,
    ObjectStoreAdapter,
    PutMode,
    StoredObject,
    Update,
)
from django_storage_celery_results.errors import Kind
from django_storage_celery_results.exceptions import ImproperlyConfigured, StoredObjectTooLarge

from . import internals
from .batch import BATCH_LIMIT, delete_objects
from .errors import ERRORS, NotFoundReads

#: Blob properties the adapter sets itself from the result's labels.
LABELS = ("content_type", "content_encoding")


class BoundedBuffer(io.BytesIO):
    """The download's bytes, refused (StoredObjectTooLarge) past limit bytes."""

    def __init__(self, limit: int | None) -> None:
        super().__init__()
        self.limit = limit

    def write(self, data: Any) -> int:
        if self.limit is not None and self.tell() + len(data) > self.limit:
            raise StoredObjectTooLarge(None)
        return super().write(data)


class GCSAdapter(ObjectStoreAdapter):
    store = "Google Cloud Storage"
    scheme = "gs"
    bucket_setting = "GS_BUCKET_NAME"
    credential_settings = (
        "credentials (GS_CREDENTIALS) or the application default credentials "
        "(GOOGLE_APPLICATION_CREDENTIALS, the workload identity of the service account)"
    )
    read_permission = "storage.objects.get (roles/storage.objectUser)"
    errors = ERRORS
    delete_batch = BATCH_LIMIT
    #: google-auth's requests session keeps requests' default pool per host.
    max_concurrency = requests.adapters.DEFAULT_POOLSIZE
    #: The client's own retry policy for transient errors, as django-storages
    #: uses it; for conditional writes too, since a repeated precondition makes
    #: a repeat harmless (the backend reads a 412 as "look again"). Celery's
    #: result_backend_always_retry comes on top; None leaves retries to it.
    retry: Any = DEFAULT_RETRY
    storage: Any  # a GoogleCloudStorage (django-storages ships no type hints)

    def __init__(self, storage: Any) -> None:
        super().__init__(storage)
        try:
            # The storage's own client: its credentials and project (built here,
            # so in each process afresh: core builds a new storage after fork).
            self.client = storage.client
        except DefaultCredentialsError:
            raise ImproperlyConfigured(
                "Google Cloud Storage result storage has no credentials: set "
                "CELERY_RESULT_STORAGE_CONFIG['credentials'] or GS_CREDENTIALS, or provide application "
                "default credentials (GOOGLE_APPLICATION_CREDENTIALS, `gcloud auth application-default "
                "login`, or the metadata server of GCE, GKE and Cloud Run)"
            ) from None
        internals.disable_bucket_metadata_lookups(self.client)
        self.bucket = storage.bucket
        self.not_found_reads = NotFoundReads()

    def blob(self, key: str) -> Blob:
        # A fresh blob without the storage's chunk size: chunked transfers
        # would turn one request into several.
        return Blob(key, self.bucket)

    def get(self, key: str) -> StoredObject:
        blob = self.blob(key)
        buffer = BoundedBuffer(self.read_limit)
        try:
            # Raw: the stored bytes as they are. requests would otherwise undo a
            # deflate/br/zstd Content-Encoding that the backend undoes itself.
            blob.download_to_file(buffer, raw_download=True, retry=self.retry, timeout=self.request_timeout)
        except StoredObjectTooLarge:
            # the media download streams without saying the size first: ask for
            # it (and the generation a write can replace) on this error path only
            found = self.bucket.get_blob(key, retry=self.retry, timeout=self.request_timeout)
            raise StoredObjectTooLarge(
                found.size if found else None, str(found.generation) if found else None
            ) from None
        data = buffer.getvalue()
        generation = blob.generation  # from the download's x-goog-generation header
        return StoredObject(data, None if generation is None else str(generation), blob.content_encoding)

    def is_missing(self, key: str, exc: BaseException) -> bool:
        return self.kind(exc) is Kind.MISSING_OBJECT and self.not_found_reads.missing(self, key)

    def write(self, key: str, data: bytes, mode: PutMode, content: Content) -> str | None:
        blob = self.blob(key)
        params = dict(self.storage.get_object_parameters(key))
        acl = params.pop("acl", self.storage.default_acl)
        for prop, value in params.items():
            if prop not in LABELS:
                setattr(blob, prop, value)
        if content.content_encoding:
            blob.content_encoding = content.content_encoding
        generation = 0 if mode == CREATE else int(mode.version) if isinstance(mode, Update) else None
        response = internals.multipart_upload(
            blob,
            self.client,
            data,
            self.content_type(content),
            acl,
            generation,
            self.retry,
            self.request_timeout,
        )
        return str(response.json()["generation"])

    def remove(self, key: str) -> None:
        self.bucket.delete_blob(key, retry=self.retry, timeout=self.request_timeout)

    def remove_batch(self, keys: list[str]) -> list[tuple[str, object]]:
        call = self.retry(delete_objects) if self.retry else delete_objects
        failed = call(self.client, self.bucket_name, keys, self.request_timeout)
        return [(key, f"HTTP {status}") for key, status in failed]

    def list_entries(self, prefix: str) -> Iterable[ListedObject]:
        blobs = self.client.list_blobs(
            self.bucket,
            prefix=prefix,
            delimiter="/",
            fields="items(name,updated,size),nextPageToken",
            retry=self.retry,
            timeout=self.request_timeout,
        )
        return (ListedObject(blob.name, blob.updated, blob.size) for blob in blobs)

    def list_entries_page(
        self, prefix: str, limit: int, cursor: str | None
    ) -> tuple[Iterable[ListedObject], str | None]:
        blobs = self.client.list_blobs(
            self.bucket,
            prefix=prefix,
            delimiter="/",
            max_results=limit,
            page_token=cursor,
            fields="items(name,updated,size),nextPageToken",
            retry=self.retry,
            timeout=self.request_timeout,
        )
        page = next(blobs.pages, ())
        entries = [ListedObject(blob.name, blob.updated, blob.size) for blob in page]
        return entries, blobs.next_page_token
