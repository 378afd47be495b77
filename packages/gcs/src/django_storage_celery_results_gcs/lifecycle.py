"""A GCS lifecycle rule that deletes results under the results prefix after result_expires.

The rule is ``{"action": {"type": "Delete"}, "condition": {"age": N,
"matchesPrefix": ["<location>/"]}}``: GCS deletes each object under the
results prefix N whole days after it was created, with no requests from
Celery. Every write of a result creates a new object generation, so the age
counts from a result's last write. ``matchesPrefix`` keeps the rule away from
every other object of the bucket (and the helper refuses a location at the
bucket root, where it would expire them all). ``cleanup()`` (Celery's
``celery.backend_cleanup`` task) deletes expired results to the second but
needs ``storage.objects.list`` and a scheduler; the README says when to use
which. GCS applies lifecycle changes within about a day and deletes
asynchronously, so a result may outlive the rule's age by a while.
"""

from __future__ import annotations

import datetime
from typing import Any

from django_storage_celery_results.probe import expiry_days, merge_rule, require_results_prefix

from .adapter import GCSAdapter
from .internals import raw_lifecycle_rules

#: Conditions a rule may carry and still expire every result by age alone.
AGE_CONDITIONS = frozenset({"age", "matchesPrefix"})


def _expires_results(rule: dict[str, Any], prefix: str) -> bool:
    """A Delete rule by age alone whose prefixes (none: the whole bucket) cover ours."""
    condition = rule.get("condition", {})
    if rule.get("action", {}).get("type") != "Delete" or "age" not in condition:
        return False
    if set(condition) - AGE_CONDITIONS:
        return False
    return any(prefix.startswith(covered) for covered in condition.get("matchesPrefix", [""]))


def find_expiry_rule(adapter: GCSAdapter, bucket: Any = None) -> dict[str, Any] | None:
    """A rule of the bucket that deletes every result by age; reads the bucket unless given."""
    bucket = bucket or adapter.client.get_bucket(
        adapter.bucket_name, retry=adapter.retry, timeout=adapter.request_timeout
    )
    return next(
        (rule for rule in raw_lifecycle_rules(bucket) if _expires_results(rule, adapter.prefix)), None
    )


def current_rule(adapter: GCSAdapter, bucket: Any = None) -> tuple[str, int] | None:
    """The label and days of the rule that expires every result, or None."""
    rule = find_expiry_rule(adapter, bucket)
    if rule is None:
        return None
    prefixes = rule["condition"].get("matchesPrefix")
    return f"for {prefixes!r}" if prefixes else "for the whole bucket", rule["condition"]["age"]


def ensure_lifecycle_rule(adapter: GCSAdapter, expires_seconds: float | datetime.timedelta) -> str:
    """Create or update our rule; returns "created", "updated" or "unchanged".

    Other rules of the bucket are kept. The update is matched against the
    bucket's metageneration, so a concurrent change to the bucket fails it
    (412) instead of being overwritten: run it again. Refuses a
    result_expires that is not a positive duration.
    """
    days = expiry_days(expires_seconds)
    require_results_prefix(adapter.prefix, "GCS")
    wanted = {"action": {"type": "Delete"}, "condition": {"age": days, "matchesPrefix": [adapter.prefix]}}
    bucket = adapter.client.get_bucket(
        adapter.bucket_name, retry=adapter.retry, timeout=adapter.request_timeout
    )
    outcome, rules = merge_rule(
        raw_lifecycle_rules(bucket), wanted, lambda rule: _is_ours(rule, adapter.prefix)
    )
    if outcome != "unchanged":
        bucket.lifecycle_rules = rules
        bucket.patch(if_metageneration_match=bucket.metageneration, retry=adapter.retry)
    return outcome


def _is_ours(rule: dict[str, Any], prefix: str) -> bool:
    condition = rule.get("condition", {})
    return (
        rule.get("action", {}).get("type") == "Delete"
        and set(condition) == AGE_CONDITIONS
        and condition["matchesPrefix"] == [prefix]
    )
