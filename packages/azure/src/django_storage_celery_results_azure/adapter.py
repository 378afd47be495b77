"""AzureStorage adapter: the storage's own container client, one request per operation.

A new result is one create-only Put Blob (``If-None-Match: *``); a task's
next state is one ETag-matched Put Blob (``If-Match``); a read is one Get
Blob, which returns the ETag with the bytes. ``AzureStorage.save()`` cannot
send those conditions, refuses to overwrite by default
(``overwrite_files=False``) and reports a missing blob as
``ResourceNotFoundError``, so the adapter calls the container client directly,
with the storage's own credentials, container, location and content settings.
Chords count each bucket of header tasks in an append blob: one Append Block
per finished header task, whose answer gives the blob's committed block
count (``appends``). What Azure's errors mean is in ``errors.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobPrefix, BlobServiceClient, BlobType, ContainerClient, ContentSettings
from requests.adapters import DEFAULT_POOLSIZE
from storages.backends.azure_storage import AzureStorage

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
from django_storage_celery_results.exceptions import ImproperlyConfigured

from .errors import ERRORS

#: How a store without the blob batch API answers one (older emulators,
#: Azure-compatible stores); cleanup then deletes one blob at a time.
BATCH_UNSUPPORTED_STATUSES = frozenset({400, 405, 501})


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
    store = "Azure"
    scheme = "azure"
    bucket_word = "container"
    bucket_argument = "azure_container"
    bucket_setting = "AZURE_CONTAINER"
    credential_settings = (
        "connection_string / account_key / sas_token / token_credential (AZURE_CONNECTION_STRING, "
        "AZURE_ACCOUNT_KEY, AZURE_SAS_TOKEN, AZURE_TOKEN_CREDENTIAL)"
    )
    read_permission = "the Storage Blob Data Contributor role (or a SAS with racwdl)"
    errors = ERRORS
    #: A blob batch request takes at most this many subrequests.
    delete_batch = 256
    appends = True

    def __init__(self, storage: AzureStorage) -> None:
        super().__init__(storage)
        self.container = self.bucket_name
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

    def _content_settings(self, key: str, content: Content) -> ContentSettings:
        name = key.removeprefix(self.prefix)
        params = {"cache_control": self.storage.cache_control, **self.storage.get_object_parameters(name)}
        params["content_type"] = self.content_type(content)
        params["content_encoding"] = content.content_encoding
        return ContentSettings(**params)

    def get(self, key: str) -> StoredObject:
        # the first request reads at most the SDK's first chunk (max_single_get_size,
        # 32 MiB) and says the blob's size: an oversized blob is read no further
        download = self.client.download_blob(key, decompress=False, timeout=self.timeout)
        properties = download.properties
        refuse_oversized(download.size, self.read_limit, properties.etag)
        data = download.readall()
        return StoredObject(data, properties.etag, properties.content_settings.content_encoding)

    def write(self, key: str, data: bytes, mode: PutMode, content: Content) -> str | None:
        conditions: dict[str, Any] = {}
        if mode == CREATE:
            conditions["match_condition"] = MatchConditions.IfMissing
        elif isinstance(mode, Update):
            conditions = {"etag": mode.version, "match_condition": MatchConditions.IfNotModified}
        response = self.client.get_blob_client(key).upload_blob(
            data,
            overwrite=True,
            content_settings=self._content_settings(key, content),
            timeout=self.timeout,
            **conditions,
        )
        return response.get("etag")

    def create_append(self, key: str) -> None:
        self.client.get_blob_client(key).create_append_blob(timeout=self.timeout)

    def append_block(self, key: str, data: bytes) -> int:
        answer = self.client.get_blob_client(key).append_block(data, timeout=self.timeout)
        count: Any = answer["blob_committed_block_count"]
        return int(count)

    def get_appended(self, key: str) -> bytes | None:
        download = self.client.download_blob(key, timeout=self.timeout)
        if download.properties.blob_type != BlobType.APPENDBLOB:
            return None
        refuse_oversized(download.size, self.read_limit, download.properties.etag)
        return download.readall()

    def seal_append(self, key: str) -> None:
        self.client.get_blob_client(key).seal_append_blob(timeout=self.timeout)

    def remove(self, key: str) -> None:
        self.client.delete_blob(key, timeout=self.timeout)

    def remove_batch(self, keys: list[str]) -> list[tuple[str, object]]:
        """One blob batch request, or one delete per blob on a store without the batch API."""
        if len(keys) > 1 and self._batch_deletes:
            try:
                answers = self.client.delete_blobs(*keys, raise_on_any_failure=False, timeout=self.timeout)
            except HttpResponseError as exc:
                if exc.status_code not in BATCH_UNSUPPORTED_STATUSES:
                    raise
                self._batch_deletes = False  # do not ask this store again
            else:
                return [
                    (key.removeprefix(self.prefix), f"HTTP {answer.status_code}")
                    for key, answer in zip(keys, answers, strict=True)
                    if answer.status_code >= 300 and answer.status_code != 404  # already gone is fine
                ]
        for key in keys:
            self.delete(key.removeprefix(self.prefix))
        return []

    def list_entries(self, prefix: str) -> Iterable[ListedObject]:
        # walk_blobs with a delimiter lists only what is directly under the prefix
        items = self.client.walk_blobs(name_starts_with=prefix, delimiter="/", timeout=self.timeout)
        return (
            ListedObject(item.name, item.last_modified, item.size)
            for item in items
            if not isinstance(item, BlobPrefix)
        )

    def list_entries_page(
        self, prefix: str, limit: int, cursor: str | None
    ) -> tuple[Iterable[ListedObject], str | None]:
        pages: Any = self.client.walk_blobs(
            name_starts_with=prefix, delimiter="/", results_per_page=limit, timeout=self.timeout
        ).by_page(continuation_token=cursor)  # a page iterator: its continuation_token is the next page
        page = next(pages, ())
        entries = [
            ListedObject(item.name, item.last_modified, item.size)
            for item in page
            if not isinstance(item, BlobPrefix)
        ]
        return entries, pages.continuation_token

    def list_key_names(self, prefix: str) -> Iterable[str]:
        # names alone: list_blobs builds a BlobProperties of some 40 fields per
        # blob, most of a chord finisher's time on this SDK; the names below a
        # further "/" are left out, as walk_blobs' delimiter leaves them out
        names = self.client.list_blob_names(name_starts_with=prefix, timeout=self.timeout)
        return (name for name in names if "/" not in name[len(prefix) :])

    def url(self) -> str:
        return f"azure://{self.client.account_name}/{self.container}/{self.prefix}"
