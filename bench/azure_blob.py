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

import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import (
    PAYLOAD,
    backend_operations,
    group_joins,
    join_count,
    object_store_args,
    object_store_goals,
    object_store_measurements,
    raw_operations,
    report,
    setup_django,
)
from tests.emulators import CountingProxy, azurite_connection_string, start_azurite


def main() -> None:
    args = object_store_args(__doc__)
    setup_django()
    from azure.storage.blob import BlobServiceClient
    from celery import Celery

    started = time.perf_counter()
    azurite = start_azurite()
    proxy = CountingProxy(azurite.url)
    try:
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
        encoded = ours.backend.encode({"status": "SUCCESS", "result": PAYLOAD})
        proxy.delay = args.latency / 1000

        def write(blob: str) -> None:
            container.upload_blob(blob, encoded, overwrite=True)

        def read(blob: str) -> None:
            container.download_blob(blob).readall()

        targets = {
            "raw": raw_operations(write, read, args.count),
            "ours": backend_operations(ours.backend, args.count),
            "celery-azure": backend_operations(celery_azure.backend, args.count),
        }
        # Celery's azureblockblob backend reads a group's results one by one too.
        joins = group_joins({"ours": (ours, True), "celery-azure": (celery_azure, False)}, write, read)
        measurements = object_store_measurements(targets, joins, args.count, proxy)
    finally:
        proxy.close()
        azurite.stop()

    print(
        f"1 KiB results; best of 3 runs of {args.count} operations ({join_count(args.count)} joins); "
        f"{os.cpu_count()} CPUs; Azurite behind the counting proxy (+{args.latency:g} ms); "
        f"{time.perf_counter() - started:.0f} s"
    )
    print(report(measurements, baseline="raw", calls="requests/op", goals=object_store_goals(measurements)))


if __name__ == "__main__":
    main()
