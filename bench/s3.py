"""Benchmark: results in S3, 1 KiB each, against a moto server.

    hatch run bench:s3 [--count N] [--latency MS]

Targets, measured in one run against one emulator behind one counting proxy
(so requests per operation are exact, and every target pays the same hops):
  raw        boto3 put_object/get_object: the baseline
  ours       this backend with the S3 provider
  celery-s3  Celery's own s3:// backend
plus a 100-result group join: ours (join_native) and Celery's s3 backend
(join) vs 100 sequential raw GETs.

All three use boto3 clients with the same settings: endpoint, credentials,
region and otherwise botocore's defaults (Celery's backend takes no others).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import ObjectStoreTargets, run_object_store_benchmark
from support.proxy import CountingProxy
from support.stores.s3 import S3_CREDENTIALS as CREDENTIALS
from support.stores.s3 import S3Store, s3_client

#: What Celery's own s3 backend reached against raw boto3 when the goals were set.
CELERY_BEFORE = {"store new result": "0.42x", "read result": "0.34x"}


def start() -> tuple[CountingProxy, Callable[[], None]]:
    emulator = S3Store.start()
    return emulator.proxy, emulator.stop


def prepare(proxy: CountingProxy) -> ObjectStoreTargets:
    from celery import Celery

    bucket = f"bench-{uuid.uuid4().hex[:12]}"
    client = s3_client(proxy.url)
    client.create_bucket(Bucket=bucket)
    ours = Celery("ours", set_as_current=False)
    ours.conf.update(
        result_backend="django-storage",
        result_storage="s3",
        result_storage_config={"bucket_name": bucket, "endpoint_url": proxy.url, **CREDENTIALS},
    )
    celery_s3 = Celery("celery", set_as_current=False)
    celery_s3.conf.update(
        result_backend="s3://",
        s3_endpoint_url=proxy.url,
        s3_bucket=bucket,
        s3_base_path="celery-s3/",
        s3_access_key_id=CREDENTIALS["access_key"],
        s3_secret_access_key=CREDENTIALS["secret_key"],
        s3_region=CREDENTIALS["region_name"],
    )
    return ObjectStoreTargets(
        ours,
        # Celery's s3 backend has no batch read: join() gets the results one by one.
        ("celery-s3", celery_s3, False),
        write=lambda key, data: client.put_object(Bucket=bucket, Key=key, Body=data),
        read=lambda key: client.get_object(Bucket=bucket, Key=key)["Body"].read(),
        write_once=lambda key, data: client.put_object(Bucket=bucket, Key=key, Body=data, IfNoneMatch="*"),
        earlier=(
            "storages.backends.s3boto3.S3Boto3Storage",
            {"bucket_name": bucket, "endpoint_url": proxy.url, "location": "earlier", **CREDENTIALS},
        ),
    )


if __name__ == "__main__":
    before = {("celery-s3", operation): f"was {ratio}" for operation, ratio in CELERY_BEFORE.items()}
    run_object_store_benchmark(__doc__, "moto server", start, prepare, before)
