"""An Azure lifecycle management policy that deletes expired results.

Azure then deletes them itself, with no requests from Celery, in whole days
counted from each blob's last write. The policy belongs to the storage
account and lives in the management plane (Azure Resource Manager), which the
blob client cannot reach: this module writes the policy document, and
``az storage account management-policy create --policy @policy.json`` (or the
portal, Bicep, Terraform) applies it. ``cleanup()`` needs no policy.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from django_storage_celery_results.probe import expiry_days, merge_rule, require_results_prefix

from .adapter import AzureAdapter


def rule_name(adapter: AzureAdapter) -> str:
    """Rule names are alphanumeric: the container and prefix with the rest dropped."""
    where = "".join(char for char in f"{adapter.container}{adapter.prefix}" if char.isalnum())
    return f"celeryresults{where}"[:256]


def lifecycle_rule(adapter: AzureAdapter, expires: float | datetime.timedelta) -> dict[str, Any]:
    """Our rule: delete blobs under the results prefix whole days after their last write.

    Refuses a result_expires that is not a positive duration, and a results
    location at the container root, where it would delete every blob.
    """
    days = expiry_days(expires)
    require_results_prefix(adapter.prefix, "Azure", "every blob of the container")
    return {
        "enabled": True,
        "name": rule_name(adapter),
        "type": "Lifecycle",
        "definition": {
            "filters": {
                # results are block blobs; a chord's buckets on Azure are append blobs
                "blobTypes": ["blockBlob", "appendBlob"],
                "prefixMatch": [f"{adapter.container}/{adapter.prefix}"],
            },
            "actions": {"baseBlob": {"delete": {"daysAfterModificationGreaterThan": days}}},
        },
    }


def lifecycle_policy(
    adapter: AzureAdapter, expires: float | datetime.timedelta, current: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The account's policy document with our rule added or replaced.

    An account has one policy and applying one replaces it whole: pass the
    current one (``az storage account management-policy show``) to keep its
    other rules.
    """
    rule = lifecycle_rule(adapter, expires)
    _outcome, rules = merge_rule(
        (current or {}).get("rules", ()), rule, lambda other: other.get("name") == rule["name"]
    )
    return {"rules": rules}


def apply_command(adapter: AzureAdapter) -> str:
    """The Azure CLI line that applies policy.json to the results' storage account."""
    return (
        "az storage account management-policy create --account-name "
        f"{adapter.client.account_name} --resource-group <group> --policy @policy.json"
    )


def policy_and_command(
    adapter: AzureAdapter, expires: float | datetime.timedelta
) -> tuple[dict[str, Any], str]:
    """The policy document with our rule, and the command line that applies it."""
    return lifecycle_policy(adapter, expires), apply_command(adapter)
