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
from tests.emulators import CountingProxy, start_moto

CREDENTIALS = {"access_key": "testing", "secret_key": "testing", "region_name": "us-east-1"}
#: What Celery's own s3 backend reached against raw boto3 when the goals were set.
CELERY_BEFORE = {"store new result": "0.42x", "read result": "0.34x"}


def main() -> None:
    args = object_store_args(__doc__)
    setup_django()
    import boto3
    from celery import Celery

    started = time.perf_counter()
    moto = start_moto()
    proxy = CountingProxy(moto.url)
    try:
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        client = boto3.client(
            "s3",
            endpoint_url=proxy.url,
            aws_access_key_id=CREDENTIALS["access_key"],
            aws_secret_access_key=CREDENTIALS["secret_key"],
            region_name=CREDENTIALS["region_name"],
        )
        client.create_bucket(Bucket=bucket)

        def app_for(name: str, **conf) -> Celery:
            app = Celery(name, set_as_current=False)
            app.conf.update({"result_backend": "django-storage", **conf})
            return app

        ours = app_for(
            "ours",
            result_storage="s3",
            result_storage_config={"bucket_name": bucket, "endpoint_url": proxy.url, **CREDENTIALS},
        )
        celery_s3 = app_for(
            "celery",
            result_backend="s3://",
            s3_endpoint_url=proxy.url,
            s3_bucket=bucket,
            s3_base_path="celery-s3/",
            s3_access_key_id=CREDENTIALS["access_key"],
            s3_secret_access_key=CREDENTIALS["secret_key"],
            s3_region=CREDENTIALS["region_name"],
        )
        encoded = ours.backend.encode({"status": "SUCCESS", "result": PAYLOAD})
        proxy.delay = args.latency / 1000

        def write(key: str) -> None:
            client.put_object(Bucket=bucket, Key=key, Body=encoded)

        def read(key: str) -> None:
            client.get_object(Bucket=bucket, Key=key)["Body"].read()

        targets = {
            "raw": raw_operations(write, read, args.count),
            "ours": backend_operations(ours.backend, args.count),
            "celery-s3": backend_operations(celery_s3.backend, args.count),
        }
        # Celery's s3 backend has no batch read: join() gets the results one by one.
        joins = group_joins({"ours": (ours, True), "celery-s3": (celery_s3, False)}, write, read)
        measurements = object_store_measurements(targets, joins, args.count, proxy)
    finally:
        proxy.close()
        moto.stop()

    print(
        f"1 KiB results; best of 3 runs of {args.count} operations ({join_count(args.count)} joins); "
        f"{os.cpu_count()} CPUs; moto server behind the counting proxy (+{args.latency:g} ms); "
        f"{time.perf_counter() - started:.0f} s"
    )
    before = {("celery-s3", operation): f"was {ratio}" for operation, ratio in CELERY_BEFORE.items()}
    goals = object_store_goals(measurements, before)
    print(report(measurements, baseline="raw", calls="requests/op", goals=goals))


if __name__ == "__main__":
    main()
