"""A real `celery worker` and a client on a missing bucket or container: the client's
``.get()`` raises the error naming the bucket and its setting at once (it used
to wait for its timeout on S3 and GCS), and the worker logs its failed write as
that error."""

from __future__ import annotations

import json
import time

import pytest

from django_storage_celery_results.exceptions import ResultStoreMisconfigured

pytestmark = pytest.mark.e2e

MISSING = "no-such-results-bucket"


def missing_store(request, preset: str) -> tuple[dict, str]:
    """The config pointing at a missing bucket, and the setting the error must name."""
    if preset == "s3":
        return {**request.getfixturevalue("s3_config"), "bucket_name": MISSING}, "AWS_STORAGE_BUCKET_NAME"
    if preset == "gcs":
        # with STORAGE_EMULATOR_HOST (set by gcs_config, inherited by the worker) the client is anonymous
        config = request.getfixturevalue("gcs_config")
        config = {key: value for key, value in config.items() if key != "credentials"}
        return {**config, "bucket_name": MISSING}, "GS_BUCKET_NAME"
    return {**request.getfixturevalue("azure_config"), "azure_container": MISSING}, "AZURE_CONTAINER"


@pytest.mark.parametrize("preset", ["s3", "gcs", "azure"])
def test_a_missing_bucket_fails_the_client_and_the_worker_names_it(
    request, preset, redis_url, start_worker, make_app
):
    config, setting = missing_store(request, preset)
    worker = start_worker(
        broker_url=redis_url, result_storage=preset, result_storage_config=json.dumps(config)
    )
    client = make_app(broker_url=redis_url, result_storage=preset, result_storage_config=config)
    result = client.send_task("tests.add", (1, 2))
    started = time.monotonic()
    with pytest.raises(ResultStoreMisconfigured, match=rf"'{MISSING}' does not exist.*{setting}"):
        result.get(timeout=60)
    assert time.monotonic() - started < 30  # an error at once, not the timeout

    deadline = time.monotonic() + 30
    while f"'{MISSING}' does not exist" not in worker.output() and time.monotonic() < deadline:
        time.sleep(0.2)
    output = worker.output()
    assert "ResultStoreMisconfigured" in output, output
    assert f"'{MISSING}' does not exist" in output and setting in output, output
