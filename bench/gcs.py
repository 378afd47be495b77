"""Benchmark: results in Google Cloud Storage, 1 KiB each, against fake-gcs-server.

    hatch run bench:gcs [--count N] [--latency MS]

Targets, measured in one run against one emulator behind one counting proxy
(so requests per operation are exact, and every target pays the same hops):
  raw         google-cloud-storage upload_from_string/download_as_bytes: the baseline
  ours        this backend with the GCS provider
  celery-gcs  Celery's own GCS key-value backend, celery.backends.gcs.GCSBackendBase
plus a 100-result group join: ours and Celery's backend (join_native, both
read in parallel) vs 100 sequential raw downloads.

Celery's gcs:// backend (GCSBackend) asks Firestore for a TTL policy when it
starts and keeps chord counters there; Firestore has no emulator here, so
the benchmark uses its base class, which stores, reads and joins results
exactly as GCSBackend does (GCSBackend adds only the chord counter and
supports_native_join, under which result.get() joins natively, as measured).

All three use google-cloud-storage clients pointed at the proxy by
STORAGE_EMULATOR_HOST, with anonymous credentials (which the client picks
itself when that variable is set, as Celery's backend relies on).
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import ObjectStoreTargets, run_object_store_benchmark
from support.proxy import CountingProxy
from support.stores.gcs import GCSStore

PROJECT = "bench"


def start() -> tuple[CountingProxy, Callable[[], None]]:
    emulator = GCSStore.start()
    proxy = emulator.proxy
    # Every client of this process goes through the proxy: Celery's backend
    # takes no endpoint, and GoogleCloudStorage only this variable.
    os.environ["STORAGE_EMULATOR_HOST"] = proxy.url
    # google-cloud-storage 3.x looks a bucket's metadata up in a background
    # request at first use, and again after a 404 (every read-before-write of
    # a new result in Celery's backend): off for every client, so the counts
    # are exact. Ours turns it off for its own client anyway.
    os.environ["DISABLE_GCS_PYTHON_CLIENT_OTEL_BUCKET_METADATA"] = "true"
    return proxy, emulator.stop


def prepare(proxy: CountingProxy) -> ObjectStoreTargets:
    from celery import Celery
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project=PROJECT, credentials=AnonymousCredentials())
    bucket = client.create_bucket(f"bench-{uuid.uuid4().hex[:12]}")
    ours = Celery("ours", set_as_current=False)
    ours.conf.update(
        result_backend="django-storage",
        result_storage="gcs",
        result_storage_config={
            "bucket_name": bucket.name,
            "credentials": AnonymousCredentials(),
            "project_id": PROJECT,
        },
    )
    celery_gcs = Celery("celery", set_as_current=False)
    celery_gcs.conf.update(
        result_backend="celery.backends.gcs:GCSBackendBase",
        gcs_bucket=bucket.name,
        gcs_project=PROJECT,
        gcs_base_path="celery-gcs",
    )
    return ObjectStoreTargets(
        ours,
        ("celery-gcs", celery_gcs, True),
        write=lambda name, data: bucket.blob(name).upload_from_string(data),
        read=lambda name: bucket.blob(name).download_as_bytes(),
        write_once=lambda name, data: bucket.blob(name).upload_from_string(data, if_generation_match=0),
        # No credentials: with STORAGE_EMULATOR_HOST set the client goes anonymous.
        earlier=(
            "storages.backends.gcloud.GoogleCloudStorage",
            {"bucket_name": bucket.name, "project_id": PROJECT, "location": "earlier"},
        ),
    )


if __name__ == "__main__":
    run_object_store_benchmark(__doc__, "fake-gcs-server", start, prepare)
