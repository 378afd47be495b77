"""Benchmark: results in Azure Blob Storage, 1 KiB each, against Azurite.

    hatch run bench:azure [--count N] [--latency MS]

(The file is not named azure.py: run as a script, it would hide the azure package.)

Targets, measured in one run against one emulator behind one counting proxy
(so requests per operation are exact, and every target pays the same hops):
  raw              azure-storage-blob upload_blob/download_blob: the baseline
  ours             this backend with the Azure provider
  celery-azure     Celery's own azureblockblob:// backend
plus a 100-result group join: ours (join_native) and Celery's backend
(join) vs 100 sequential raw downloads.

All three use the SDK's BlobServiceClient from the same connection string,
otherwise with the SDK's defaults.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import ObjectStoreTargets, run_object_store_benchmark
from support.proxy import CountingProxy
from support.stores.azure import AzureStore, azurite_connection_string


def start() -> tuple[CountingProxy, Callable[[], None]]:
    emulator = AzureStore.start()
    return emulator.proxy, emulator.stop


def prepare(proxy: CountingProxy) -> ObjectStoreTargets:
    from azure.storage.blob import BlobServiceClient
    from celery import Celery

    connection_string = azurite_connection_string(proxy.url)
    name = f"bench-{uuid.uuid4().hex[:12]}"
    container = BlobServiceClient.from_connection_string(connection_string).create_container(name)
    ours = Celery("ours", set_as_current=False)
    ours.conf.update(
        result_backend="django-storage",
        result_storage="azure",
        result_storage_config={"connection_string": connection_string, "azure_container": name},
    )
    celery_azure = Celery("celery", set_as_current=False)
    celery_azure.conf.update(
        result_backend=f"azureblockblob://{connection_string}",
        azureblockblob_container_name=name,
        azureblockblob_base_path="celery-azure/",
    )
    return ObjectStoreTargets(
        ours,
        # Celery's azureblockblob backend reads a group's results one by one too.
        ("celery-azure", celery_azure, False),
        write=lambda blob, data: container.upload_blob(blob, data, overwrite=True),
        read=lambda blob: container.download_blob(blob).readall(),
        # overwrite=False sends If-None-Match: *
        write_once=lambda blob, data: container.upload_blob(blob, data, overwrite=False),
        earlier=(
            "storages.backends.azure_storage.AzureStorage",
            {"connection_string": connection_string, "azure_container": name, "location": "earlier"},
        ),
    )


if __name__ == "__main__":
    run_object_store_benchmark(__doc__, "Azurite", start, prepare)
