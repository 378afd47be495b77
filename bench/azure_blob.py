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
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import (
    OPERATIONS,
    PAYLOAD,
    Runs,
    arguments,
    backend_operations,
    celery_app,
    group_joins,
    measure_object_store,
    object_store_goals,
    object_store_report,
)
from tests.emulators import CountingProxy, azurite_connection_string, start_azurite


def raw_operations(container, encoded: bytes, count: int) -> Runs:
    def write(i: int) -> None:
        container.upload_blob(f"raw/r-{i}", encoded, overwrite=True)

    def read(i: int) -> None:
        container.download_blob(f"raw/r-{i % count}").readall()

    return dict(zip(OPERATIONS, (write, read, lambda i: (write(i), write(i))), strict=True))


def main() -> None:
    args = arguments(__doc__, count=150, latency=True)
    from azure.storage.blob import BlobServiceClient

    started = time.perf_counter()
    with start_azurite() as azurite, CountingProxy(azurite.url) as proxy:
        connection_string = azurite_connection_string(proxy.url)
        name = f"bench-{uuid.uuid4().hex[:12]}"
        container = BlobServiceClient.from_connection_string(connection_string).create_container(name)
        ours = celery_app(
            "ours",
            result_storage="azure",
            result_storage_config={"connection_string": connection_string, "azure_container": name},
        )
        celery_azure = celery_app(
            "celery",
            result_backend=f"azureblockblob://{connection_string}",
            azureblockblob_container_name=name,
            azureblockblob_base_path="celery-azure/",
        )
        encoded = ours.backend.encode({"status": "SUCCESS", "result": PAYLOAD})
        targets = {
            "raw": raw_operations(container, encoded, args.count),
            "ours": backend_operations(ours.backend, args.count),
            "celery-azure": backend_operations(celery_azure.backend, args.count),
        }
        # Celery's azureblockblob backend reads a group's results one by one too.
        joins = group_joins(
            {"ours": ours, "celery-azure": celery_azure},
            lambda task_id: container.upload_blob(f"raw/g-{task_id}", encoded, overwrite=True),
            lambda task_id: container.download_blob(f"raw/g-{task_id}").readall(),
        )
        measurements = measure_object_store(proxy, targets, joins, args)
    print(object_store_report(measurements, args, "Azurite", started, object_store_goals(measurements)))


if __name__ == "__main__":
    main()
