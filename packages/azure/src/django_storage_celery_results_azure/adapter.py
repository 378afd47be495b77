"""AzureStorage adapter: the storage's own container client, one request per operation.

A new result is one create-only Put Blob (``If-None-Match: *``); a task's
next state is one ETag-matched Put Blob (``If-Match``); a read is one Get
Blob, which returns the ETag with the bytes. ``AzureStorage.save()`` cannot
send those conditions, refuses to overwrite by default
(``overwrite_files=False``) and reports a missing blob as
``ResourceNotFoundError``, so the adapter calls the container client directly,
with the storage's own credentials, container, location and content settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    IncompleteReadError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobPrefix, BlobServiceClient, ContainerClient, ContentSettings
from requests.adapters import DEFAULT_POOLSIZE
from storages.backends.azure_storage import AzureStorage

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

#: A blob batch request takes at most this many subrequests.
DELETE_BATCH = 256
#: A lost conditional write: the blob exists (create) or has another ETag (update).
CONFLICT_CODES = frozenset({"BlobAlreadyExists", "ConditionNotMet"})
#: How a store without the blob batch API answers one (older emulators,
#: Azure-compatible stores); cleanup then deletes one blob at a time.
BATCH_UNSUPPORTED_STATUSES = frozenset({400, 405, 501})


def error_code(exc: HttpResponseError) -> str:
    """The storage error code of a failed call ('' when the answer had none)."""
    code = getattr(exc, "error_code", None) or ""
    return str(getattr(code, "value", code))


def _container_client(storage: AzureStorage) -> ContainerClient:
    """The storage's own container client.

    With a connection string AzureStorage ignores client_options (retries,
    timeouts, transport); results need them, so the adapter then builds the
    client from both.
    """
    if storage.connection_string and storage.client_options:
        service = BlobServiceClient.from_connection_string(
            storage.connection_string, **storage.client_options
        )
        return service.get_container_client(storage.azure_container)
    return storage.client


class AzureAdapter(ObjectStoreAdapter):
    storage: AzureStorage

    def __init__(self, storage: AzureStorage) -> None:
        super().__init__(storage)
        self.container = required_setting(
            storage.azure_container, "Azure", "container", "azure_container", "AZURE_CONTAINER"
        )
        if not (storage.connection_string or storage.account_name):
            raise ImproperlyConfigured(
                "Azure result storage has no account: set CELERY_RESULT_STORAGE_CONFIG['connection_string'] "
                "(AZURE_CONNECTION_STRING) or 'account_name' (AZURE_ACCOUNT_NAME)"
            )
        self.client = _container_client(storage)
        self.timeout: int | None = storage.timeout
        # The default transport's requests session keeps this many connections.
        options = storage.client_options or {}
        self.max_concurrency = None if {"transport", "session"} & set(options) else DEFAULT_POOLSIZE
        self._batch_deletes = True

    def _content_settings(self, name: str, content: Content) -> ContentSettings:
        params = {"cache_control": self.storage.cache_control, **self.storage.get_object_parameters(name)}
        params["content_type"] = content.content_type or "application/octet-stream"
        params["content_encoding"] = content.content_encoding
        return ContentSettings(**params)

    def read(self, name: str) -> StoredObject | None:
        try:
            download = self.client.download_blob(self.key(name), decompress=False, timeout=self.timeout)
            data = download.readall()
        except HttpResponseError as exc:
            if error_code(exc) == "BlobNotFound":
                return None
            raise
        properties = download.properties
        return StoredObject(data, properties.etag, properties.content_settings.content_encoding)

    def put(
        self, name: str, data: bytes, mode: PutMode = OVERWRITE, content: Content = Content()
    ) -> str | None:
        conditions: dict[str, Any] = {}
        if mode == CREATE:
            conditions["match_condition"] = MatchConditions.IfMissing
        elif isinstance(mode, Update):
            conditions = {"etag": mode.version, "match_condition": MatchConditions.IfNotModified}
        blob = self.client.get_blob_client(self.key(name))
        try:
            response = blob.upload_blob(
                data,
                overwrite=True,
                content_settings=self._content_settings(name, content),
                timeout=self.timeout,
                **conditions,
            )
        except HttpResponseError as exc:
            code = error_code(exc)
            vanished = isinstance(mode, Update) and code == "BlobNotFound"
            if code in CONFLICT_CODES or vanished:
                raise VersionMismatch(f"result {name!r} changed since it was read ({code})") from None
            raise
        return response.get("etag")

    def delete(self, name: str) -> None:
        try:
            self.client.delete_blob(self.key(name), timeout=self.timeout)
        except HttpResponseError as exc:
            if error_code(exc) != "BlobNotFound":
                raise

    def delete_many(self, names: Iterable[str]) -> None:
        for batch in in_batches(names, DELETE_BATCH):
            if len(batch) > 1 and self._batch_deletes and self._delete_batch(batch):
                continue
            for name in batch:
                self.delete(name)

    def _delete_batch(self, names: list[str]) -> bool:
        """One blob batch request; False when the store has no batch API."""
        blobs = [self.key(name) for name in names]
        try:
            answers = self.client.delete_blobs(*blobs, raise_on_any_failure=False, timeout=self.timeout)
        except HttpResponseError as exc:
            if exc.status_code not in BATCH_UNSUPPORTED_STATUSES:
                raise
            self._batch_deletes = False  # do not ask this store again
            return False
        failed = [
            (name, f"HTTP {answer.status_code}")
            for name, answer in zip(names, answers, strict=True)
            if answer.status_code >= 300 and answer.status_code != 404  # already gone is fine
        ]
        if failed:
            raise not_deleted("Azure", self, failed, len(names))
        return True

    def list(
        self, wanted: Callable[[str], bool] = lambda name: True, prefix: str = ""
    ) -> Iterator[ListedObject]:
        # walk_blobs with a delimiter lists only what is directly under the prefix
        items = self.client.walk_blobs(
            name_starts_with=self.prefix + prefix, delimiter="/", timeout=self.timeout
        )
        blobs = ((item.name, item.last_modified) for item in items if not isinstance(item, BlobPrefix))
        return self.listed(blobs, wanted)

    def is_retryable(self, exc: BaseException) -> bool:
        # connection failures, resets and timeouts, on the way out or back
        if isinstance(exc, (ServiceRequestError, ServiceResponseError, IncompleteReadError)):
            return True
        if isinstance(exc, HttpResponseError):  # Azure throttles with 503 ServerBusy
            return exc.status_code in RETRYABLE_STATUSES
        return super().is_retryable(exc)

    def describe(self) -> str:
        return f"{type(self.storage).__name__} at azure://{self.client.account_name}/{self.container}/{self.prefix}"
