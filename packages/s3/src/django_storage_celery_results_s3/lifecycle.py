"""An S3 lifecycle rule that expires the results prefix after result_expires.

S3 then deletes expired results itself, with no requests from Celery, in
whole days counted from each object's last write. ``cleanup()`` (Celery's
``celery.backend_cleanup`` task) deletes them to the second but needs
``s3:ListBucket`` and a scheduler; the README says when to use which.
"""

from __future__ import annotations

import datetime
from typing import Any

from botocore.exceptions import ClientError

from django_storage_celery_results.probe import expiry_days, merge_rule, require_results_prefix

from .adapter import S3Adapter
from .errors import status_and_code


def rule_id(adapter: S3Adapter) -> str:
    return f"celery-results:{adapter.prefix}"[:255]


def _rules(adapter: S3Adapter) -> list[dict[str, Any]]:
    try:
        response = adapter.client.get_bucket_lifecycle_configuration(Bucket=adapter.bucket_name)
    except ClientError as exc:
        if status_and_code(exc)[1] == "NoSuchLifecycleConfiguration":
            return []
        raise
    return list(response.get("Rules", ()))


def _rule_prefix(rule: dict[str, Any]) -> str | None:
    """The key prefix a rule applies to, or None when it also filters on tags or size."""
    rule_filter = rule.get("Filter")
    if rule_filter is None:
        return rule.get("Prefix", "")  # the legacy form
    if set(rule_filter) - {"Prefix"}:
        return None
    return rule_filter.get("Prefix", "")


def find_expiry_rule(adapter: S3Adapter) -> dict[str, Any] | None:
    """An enabled rule that expires every result (its prefix covers ours)."""
    for rule in _rules(adapter):
        prefix = _rule_prefix(rule)
        expiration = rule.get("Expiration", {})
        if (
            rule.get("Status") == "Enabled"
            and prefix is not None
            and adapter.prefix.startswith(prefix)
            and "Days" in expiration
        ):
            return rule
    return None


def current_rule(adapter: S3Adapter) -> tuple[str, int] | None:
    """The label and days of the rule that expires every result, or None."""
    rule = find_expiry_rule(adapter)
    return None if rule is None else (repr(rule.get("ID")), rule["Expiration"]["Days"])


def ensure_lifecycle_rule(adapter: S3Adapter, expires_seconds: float | datetime.timedelta) -> str:
    """Create or update our rule; returns "created", "updated" or "unchanged".

    Other rules of the bucket are kept. Refuses a results location at the
    bucket root, where the rule would expire every object of the bucket, and
    a result_expires that is not a positive duration.
    """
    days = expiry_days(expires_seconds)
    require_results_prefix(adapter.prefix, "S3")
    wanted = {
        "ID": rule_id(adapter),
        "Status": "Enabled",
        "Filter": {"Prefix": adapter.prefix},
        "Expiration": {"Days": days},
    }
    outcome, rules = merge_rule(
        _rules(adapter),
        wanted,
        is_ours=lambda rule: rule.get("ID") == wanted["ID"],
        same=lambda current, wanted: all(current.get(key) == value for key, value in wanted.items()),
    )
    if outcome != "unchanged":
        adapter.client.put_bucket_lifecycle_configuration(
            Bucket=adapter.bucket_name, LifecycleConfiguration={"Rules": rules}
        )
    return outcome
