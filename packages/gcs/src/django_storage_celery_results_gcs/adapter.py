"""GoogleCloudStorage adapter: the storage's own client and bucket, one request per operation.

A new result is one multipart upload with ``ifGenerationMatch=0``; a task's
next state is one upload matched against the generation it replaces; a read
is one media download, whose ``x-goog-generation`` header is the version.
``GoogleCloudStorage.save()`` sends no preconditions and its file object asks
for the metadata before the media, so the adapter calls the client directly,
with the storage's credentials, project, bucket, location and object
parameters.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import requests
from google.api_core import exceptions
from google.auth.exceptions import DefaultCredentialsError, TransportError
from google.cloud.storage import Blob
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse
from google.cloud.storage.retry import DEFAULT_RETRY

from django_storage_celery_results.adapters import (
    CREATE,
    OVERWRITE,
    RETRYABLE_STATUSES,
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
from django_storage_celery_results.exceptions import ImproperlyConfigured, VersionMismatch

from .batch import BATCH_LIMIT, delete_objects

#: Transport failures worth another try: connection resets, timeouts, cut-off bodies.
RETRYABLE_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
#: Blob properties the adapter sets itself from the result's labels.
LABELS = ("content_type", "content_encoding")


class GCSAdapter(ObjectStoreAdapter):
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
        self.bucket_name = required_setting(
            storage.bucket_name, "Google Cloud Storage", "bucket", "bucket_name", "GS_BUCKET_NAME"
        )
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
        # google-cloud-storage 3.x fetches each bucket's metadata in a background
        # request (for OpenTelemetry attributes) and re-checks the bucket after
        # every 404, unless DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA is set.
        # Turn that off for this client alone, leaving the process environment
        # and every other client as they are.
        if getattr(self.client, "_bucket_metadata_cache", None) is not None:
            self.client._bucket_metadata_cache = None
        self.bucket = storage.bucket

    def blob(self, name: str) -> Blob:
        # A fresh blob without the storage's chunk size: chunked transfers
        # would turn one request into several.
        return Blob(self.key(name), self.bucket)

    def read(self, name: str) -> StoredObject | None:
        blob = self.blob(name)
        try:
            # Raw: the stored bytes as they are. requests would otherwise undo a
            # deflate/br/zstd Content-Encoding that the backend undoes itself.
            data = blob.download_as_bytes(raw_download=True, retry=self.retry)
        except exceptions.NotFound:
            return None
        generation = blob.generation  # from the download's x-goog-generation header
        return StoredObject(data, None if generation is None else str(generation), blob.content_encoding)

    def put(
        self, name: str, data: bytes, mode: PutMode = OVERWRITE, content: Content = Content()
    ) -> str | None:
        blob = self.blob(name)
        params = dict(self.storage.get_object_parameters(blob.name))
        acl = params.pop("acl", self.storage.default_acl)
        for prop, value in params.items():
            if prop not in LABELS:
                setattr(blob, prop, value)
        if content.content_encoding:
            blob.content_encoding = content.content_encoding
        generation = 0 if mode == CREATE else int(mode.version) if isinstance(mode, Update) else None
        try:
            # upload_from_string() switches to a resumable upload (two requests
            # or more, with no precondition on the first) above 8 MiB; the
            # multipart upload it uses below that takes any size in one request.
            response = blob._do_multipart_upload(
                client=self.client,
                stream=io.BytesIO(data),
                content_type=content.content_type or "application/octet-stream",
                size=len(data),
                predefined_acl=acl,
                if_generation_match=generation,
                if_generation_not_match=None,
                if_metageneration_match=None,
                if_metageneration_not_match=None,
                retry=self.retry,
            )
        except InvalidResponse as exc:
            error = exceptions.from_http_response(exc.response)
            if isinstance(error, exceptions.PreconditionFailed):
                raise VersionMismatch(f"result {name!r} changed since it was read") from None
            raise error from None
        return str(response.json()["generation"])

    def delete(self, name: str) -> None:
        with contextlib.suppress(exceptions.NotFound):
            self.bucket.delete_blob(self.key(name), retry=self.retry)

    def delete_many(self, names: Iterable[str]) -> None:
        for batch in in_batches((self.key(name) for name in names), BATCH_LIMIT):
            call = self.retry(delete_objects) if self.retry else delete_objects
            failed = call(self.client, self.bucket_name, batch)
            if failed:
                raise not_deleted(
                    "GCS", self, [(key, f"HTTP {status}") for key, status in failed], len(batch)
                )

    def list(
        self, wanted: Callable[[str], bool] = lambda name: True, prefix: str = ""
    ) -> Iterator[ListedObject]:
        blobs = self.client.list_blobs(
            self.bucket,
            prefix=self.prefix + prefix,
            delimiter="/",
            fields="items(name,updated),nextPageToken",
            retry=self.retry,
        )
        return self.listed(((blob.name, blob.updated) for blob in blobs), wanted)

    def is_retryable(self, exc: BaseException) -> bool:
        if isinstance(exc, exceptions.RetryError) and exc.cause is not None:
            exc = exc.cause  # the client's own retries ran out on this error
        if isinstance(exc, exceptions.GoogleAPICallError):
            return exc.code in RETRYABLE_STATUSES
        if isinstance(exc, (*RETRYABLE_ERRORS, TransportError, DataCorruption)):
            return True
        return super().is_retryable(exc)

    def describe(self) -> str:
        return f"{type(self.storage).__name__} at gs://{self.bucket_name}/{self.prefix}"
