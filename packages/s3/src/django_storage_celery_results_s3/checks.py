"""Checks of an S3 result store: its settings, and a connectivity probe.

``check_settings`` runs with every ``manage.py check`` and makes no request.
``check_connectivity`` talks to S3 (``manage.py check --deploy``, or call it
directly): bucket and credentials, a put/get/delete round trip under the
results prefix, conditional writes, ``s3:ListBucket``, the lifecycle rule and
public access. Messages name the bucket and prefix, never credentials.
"""

from __future__ import annotations

from typing import Any

from django_storage_celery_results.catalogue import OBJECT_STORE_CHECKS, Catalogue
from django_storage_celery_results.probe import Probe, PublicAcl, RoundTrip

from .adapter import S3Adapter
from .lifecycle import current_rule
from .settings_map import S3_SETTINGS

CHECKS = Catalogue("django_storage_celery_results_s3", *OBJECT_STORE_CHECKS)
PUBLIC_GRANTEES = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)


#: Findings from the configuration alone (no request).
check_settings = PublicAcl(
    CHECKS, S3_SETTINGS, "s3", frozenset({"public-read", "public-read-write", "authenticated-read"}), "ACL"
)


class S3Probe(Probe):
    adapter: S3Adapter
    catalogue = CHECKS
    words = RoundTrip(
        write_hint="Grant s3:PutObject on the results prefix (and kms:GenerateDataKey for SSE-KMS).",
        read_hint="Grant s3:GetObject on the results prefix (and kms:Decrypt for SSE-KMS).",
        delete_hint="Grant s3:DeleteObject on the results prefix: forget() and cleanup() need it.",
        create_condition="If-None-Match on PutObject",
        update_condition="If-Match on PutObject",
        stale_version='"celery-check-stale"',
        conditions_hint="Use a store with S3 conditional writes, or set "
        "CELERY_RESULT_STORAGE_ADAPTER = 'generic'.",
    )
    network_hint = (
        "Check endpoint_url / region_name (AWS_S3_ENDPOINT_URL, AWS_S3_REGION_NAME) and the network."
    )
    bucket_hint_also = " and endpoint_url"
    preflight_hint = "Grant s3:ListBucket on the bucket."
    lifecycle_unreadable_hint = "Grant s3:GetLifecycleConfiguration to check it, or make sure cleanup() runs."

    def first_request(self) -> Any:
        adapter = self.adapter
        return adapter.client.list_objects_v2(Bucket=adapter.bucket_name, Prefix=adapter.prefix, MaxKeys=1)

    def without_permission(self) -> None:
        self.add(
            "W010",
            "the credentials lack s3:ListBucket, so S3 answers a missing result with 403 (read as "
            "PENDING, like a 404) and cleanup() cannot list expired results",
            "Grant s3:ListBucket on the bucket for the results prefix, or expire results with a "
            "lifecycle rule (ensure_lifecycle_rule).",
        )

    def read_rule(self) -> tuple[str, int] | None:
        return current_rule(self.adapter)

    def inspect(self, name: str) -> None:
        client, bucket = self.adapter.client, self.adapter.bucket_name
        try:
            grants = client.get_object_acl(Bucket=bucket, Key=self.adapter.key(name)).get("Grants", ())
        except self.errors:
            grants = ()  # ACLs unreadable: nothing to conclude from them
        if any(grant.get("Grantee", {}).get("URI") in PUBLIC_GRANTEES for grant in grants):
            self.add(
                "E015",
                "new results are publicly readable through their ACL",
                "Remove the public ACL (default_acl / AWS_S3_OBJECT_PARAMETERS['ACL']) "
                "and block public access.",
            )
        try:
            status = client.get_bucket_policy_status(Bucket=bucket)["PolicyStatus"]
        except self.errors:
            return  # no policy, or no permission to read it
        if status.get("IsPublic"):
            self.add(
                "E015",
                "the bucket policy makes the bucket public, results included",
                "Use a private bucket for results, or turn on S3 Block Public Access.",
            )


check_connectivity = S3Probe.check
