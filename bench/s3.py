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

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import django
from django.conf import settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import CallCounter, Measurement, compare, report
from tests.emulators import CountingProxy, start_moto

PAYLOAD = {"value": "x" * 900, "numbers": list(range(10))}  # about 1 KiB as JSON
GROUP = 100
CREDENTIALS = {"access_key": "testing", "secret_key": "testing", "region_name": "us-east-1"}
#: What Celery's own s3 backend reached against raw boto3 when the goals were set.
CELERY_BEFORE = {"store new result": "0.42x", "read result": "0.34x"}


def proxy_requests(proxy: CountingProxy) -> CallCounter:
    @contextmanager
    def counter() -> Iterator[Callable[[], int]]:
        with proxy.counting() as seen:
            yield lambda: len(seen)

    return counter


Runs = dict[str, Callable[[int], object]]
OPERATIONS = ("store new result", "read result", "STARTED then SUCCESS")
JOIN = f"group join of {GROUP}"


def raw_operations(client, bucket: str, encoded: bytes, count: int) -> Runs:
    def write(i: int) -> None:
        client.put_object(Bucket=bucket, Key=f"raw/r-{i}", Body=encoded)

    def read(i: int) -> None:
        client.get_object(Bucket=bucket, Key=f"raw/r-{i % count}")["Body"].read()

    return dict(zip(OPERATIONS, (write, read, lambda i: (write(i), write(i))), strict=True))


def backend_operations(backend, count: int) -> Runs:
    from celery import states

    ids = [str(uuid.uuid4()) for _ in range(3 * count + 1)]
    two_step = [str(uuid.uuid4()) for _ in range(3 * count + 1)]

    def store(i: int) -> None:
        backend.store_result(ids[i], PAYLOAD, states.SUCCESS)

    def read(i: int) -> None:
        backend.get_task_meta(ids[i % count], cache=False)

    def started_then_success(i: int) -> None:
        backend.mark_as_started(two_step[i])
        backend.store_result(two_step[i], PAYLOAD, states.SUCCESS)

    return dict(zip(OPERATIONS, (store, read, started_then_success), strict=True))


def group_joins(ours, celery_s3, client, bucket: str, encoded: bytes) -> Runs:
    from celery import states
    from celery.result import AsyncResult, ResultSet

    ids = [str(uuid.uuid4()) for _ in range(GROUP)]
    for task_id in ids:
        ours.backend.store_result(task_id, PAYLOAD, states.SUCCESS)
        celery_s3.backend.store_result(task_id, PAYLOAD, states.SUCCESS)
        client.put_object(Bucket=bucket, Key=f"raw/g-{task_id}", Body=encoded)

    def join(app, native: bool) -> Callable[[int], object]:
        def run(_: int) -> None:
            app.backend._cache.clear()
            results = ResultSet([AsyncResult(task_id, app=app) for task_id in ids], app=app)
            values = results.join_native(timeout=30) if native else results.join(timeout=30)
            assert len(values) == GROUP

        return run

    def read_sequentially(_: int) -> None:
        for task_id in ids:
            client.get_object(Bucket=bucket, Key=f"raw/g-{task_id}")["Body"].read()

    # Celery's s3 backend has no batch read: join() gets the results one by one.
    return {
        "raw": read_sequentially,
        "ours": join(ours, native=True),
        "celery-s3": join(celery_s3, native=False),
    }


def goals(measurements: list[Measurement]) -> dict[tuple[str, str], str]:
    """The issue's targets, met or missed, next to the figures they judge."""
    rate = {(m.target, m.operation): m.per_second for m in measurements}
    notes = {}
    for operation in ("store new result", "read result"):
        ratio = rate[("ours", operation)] / rate[("raw", operation)]
        met = "met" if ratio >= 0.8 else "MISSED"
        notes[("ours", operation)] = f">= 0.80x: {met}"
        notes[("celery-s3", operation)] = f"was {CELERY_BEFORE[operation]}"
    ours, sequential = 1000 / rate[("ours", JOIN)], 1000 / rate[("raw", JOIN)]
    met = "met" if sequential / ours >= 3 else "MISSED"
    notes[("ours", JOIN)] = f"{ours:.0f} ms vs {sequential:.0f} ms sequential; >= 3x faster: {met}"
    return notes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=150, help="operations per timed run (default 150)")
    parser.add_argument(
        "--latency",
        type=float,
        default=0,
        help="milliseconds the proxy waits before forwarding each request, like a network round trip",
    )
    args = parser.parse_args()
    if not settings.configured:
        settings.configure(INSTALLED_APPS=["django_storage_celery_results"], USE_TZ=True)
    django.setup()
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
        counter = proxy_requests(proxy)
        proxy.delay = args.latency / 1000

        targets = {
            "raw": raw_operations(client, bucket, encoded, args.count),
            "ours": backend_operations(ours.backend, args.count),
            "celery-s3": backend_operations(celery_s3.backend, args.count),
        }
        measurements: list[Measurement] = []
        for operation in OPERATIONS:
            runs = {target: operations[operation] for target, operations in targets.items()}
            measurements += compare(operation, runs, args.count, counter)
        joins = max(3, args.count // 100)
        measurements += compare(JOIN, group_joins(ours, celery_s3, client, bucket, encoded), joins, counter)
    finally:
        proxy.close()
        moto.stop()

    print(
        f"1 KiB results; best of 3 runs of {args.count} operations ({joins} joins); "
        f"{os.cpu_count()} CPUs; moto server behind the counting proxy (+{args.latency:g} ms); "
        f"{time.perf_counter() - started:.0f} s"
    )
    print(report(measurements, baseline="raw", calls="requests/op", goals=goals(measurements)))


if __name__ == "__main__":
    main()
