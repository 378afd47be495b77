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

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import django
from django.conf import settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import Measurement, compare, report
from bench.s3 import GROUP, JOIN, OPERATIONS, PAYLOAD, Runs, backend_operations, proxy_requests
from tests.emulators import CountingProxy, azurite_connection_string, start_azurite


def raw_operations(container, encoded: bytes, count: int) -> Runs:
    def write(i: int) -> None:
        container.upload_blob(f"raw/r-{i}", encoded, overwrite=True)

    def read(i: int) -> None:
        container.download_blob(f"raw/r-{i % count}").readall()

    return dict(zip(OPERATIONS, (write, read, lambda i: (write(i), write(i))), strict=True))


def group_joins(ours, celery_azure, container, encoded: bytes) -> Runs:
    from celery import states
    from celery.result import AsyncResult, ResultSet

    ids = [str(uuid.uuid4()) for _ in range(GROUP)]
    for task_id in ids:
        for app in (ours, celery_azure):
            app.backend.store_result(task_id, PAYLOAD, states.SUCCESS)
        container.upload_blob(f"raw/g-{task_id}", encoded, overwrite=True)

    def joining(app, native: bool) -> Callable[[int], object]:
        def run(_: int) -> None:
            app.backend._cache.clear()
            pending = ResultSet([AsyncResult(task_id, app=app) for task_id in ids], app=app)
            assert len(pending.join_native(timeout=30) if native else pending.join(timeout=30)) == GROUP

        return run

    def download_one_by_one(_: int) -> None:
        for task_id in ids:
            container.download_blob(f"raw/g-{task_id}").readall()

    # Celery's azureblockblob backend reads a group's results one by one too.
    return {
        "raw": download_one_by_one,
        "ours": joining(ours, native=True),
        "celery-azure": joining(celery_azure, native=False),
    }


def goals(measurements: list[Measurement]) -> dict[tuple[str, str], str]:
    rate = {(m.target, m.operation): m.per_second for m in measurements}
    notes = {}
    for operation in ("store new result", "read result"):
        ratio = rate[("ours", operation)] / rate[("raw", operation)]
        notes[("ours", operation)] = f">= 0.80x: {'met' if ratio >= 0.8 else 'MISSED'}"
    ours, sequential = 1000 / rate[("ours", JOIN)], 1000 / rate[("raw", JOIN)]
    faster = "met" if sequential / ours >= 3 else "MISSED"
    notes[("ours", JOIN)] = f"{ours:.0f} ms vs {sequential:.0f} ms sequential; >= 3x faster: {faster}"
    return notes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=150, help="operations per timed run (default 150)")
    parser.add_argument(
        "--latency", type=float, default=0, help="milliseconds the proxy waits before forwarding each request"
    )
    args = parser.parse_args()
    if not settings.configured:
        settings.configure(INSTALLED_APPS=["django_storage_celery_results"], USE_TZ=True)
    django.setup()
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
        counter = proxy_requests(proxy)
        proxy.delay = args.latency / 1000

        targets = {
            "raw": raw_operations(container, encoded, args.count),
            "ours": backend_operations(ours.backend, args.count),
            "celery-azure": backend_operations(celery_azure.backend, args.count),
        }
        measurements: list[Measurement] = []
        for operation in OPERATIONS:
            measurements += compare(
                operation, {t: ops[operation] for t, ops in targets.items()}, args.count, counter
            )
        joins = max(3, args.count // 100)
        measurements += compare(JOIN, group_joins(ours, celery_azure, container, encoded), joins, counter)
    finally:
        proxy.close()
        azurite.stop()

    print(
        f"1 KiB results; best of 3 runs of {args.count} operations ({joins} joins); "
        f"{os.cpu_count()} CPUs; Azurite behind the counting proxy (+{args.latency:g} ms); "
        f"{time.perf_counter() - started:.0f} s"
    )
    print(report(measurements, baseline="raw", calls="requests/op", goals=goals(measurements)))


if __name__ == "__main__":
    main()
