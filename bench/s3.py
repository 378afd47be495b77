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
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import (
    OPERATIONS,
    PAYLOAD,
    Measurement,
    Runs,
    arguments,
    backend_operations,
    celery_app,
    group_joins,
    measure_object_store,
    object_store_goals,
    object_store_report,
)
from tests.emulators import CountingProxy, start_moto

CREDENTIALS = {"access_key": "testing", "secret_key": "testing", "region_name": "us-east-1"}
#: What Celery's own s3 backend reached against raw boto3 when the goals were set.
CELERY_BEFORE = {"store new result": "0.42x", "read result": "0.34x"}


def raw_operations(client, bucket: str, encoded: bytes, count: int) -> Runs:
    def write(i: int) -> None:
        client.put_object(Bucket=bucket, Key=f"raw/r-{i}", Body=encoded)

    def read(i: int) -> None:
        client.get_object(Bucket=bucket, Key=f"raw/r-{i % count}")["Body"].read()

    return dict(zip(OPERATIONS, (write, read, lambda i: (write(i), write(i))), strict=True))


def goals(measurements: list[Measurement]) -> dict[tuple[str, str], str]:
    notes = object_store_goals(measurements)
    for operation, before in CELERY_BEFORE.items():
        notes[("celery-s3", operation)] = f"was {before}"
    return notes


def main() -> None:
    args = arguments(__doc__, count=150, latency=True)
    import boto3

    started = time.perf_counter()
    with start_moto() as moto, CountingProxy(moto.url) as proxy:
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        client = boto3.client(
            "s3",
            endpoint_url=proxy.url,
            aws_access_key_id=CREDENTIALS["access_key"],
            aws_secret_access_key=CREDENTIALS["secret_key"],
            region_name=CREDENTIALS["region_name"],
        )
        client.create_bucket(Bucket=bucket)
        ours = celery_app(
            "ours",
            result_storage="s3",
            result_storage_config={"bucket_name": bucket, "endpoint_url": proxy.url, **CREDENTIALS},
        )
        celery_s3 = celery_app(
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
        targets = {
            "raw": raw_operations(client, bucket, encoded, args.count),
            "ours": backend_operations(ours.backend, args.count),
            "celery-s3": backend_operations(celery_s3.backend, args.count),
        }
        # Celery's s3 backend has no batch read: join() gets the results one by one.
        joins = group_joins(
            {"ours": ours, "celery-s3": celery_s3},
            lambda task_id: client.put_object(Bucket=bucket, Key=f"raw/g-{task_id}", Body=encoded),
            lambda task_id: client.get_object(Bucket=bucket, Key=f"raw/g-{task_id}")["Body"].read(),
        )
        measurements = measure_object_store(proxy, targets, joins, args)
    print(object_store_report(measurements, args, "moto server", started, goals(measurements)))


if __name__ == "__main__":
    main()
