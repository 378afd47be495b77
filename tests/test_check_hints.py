"""Check hints point where the value came from, counts read right, and the lifecycle
helpers refuse a result_expires that cannot make a rule."""

from __future__ import annotations

import pytest

from django_storage_celery_results.checks import check_result_storage
from django_storage_celery_results.exceptions import ImproperlyConfigured

DAY = 86400
PUBLIC = {"s3": ("public-read", "ACL"), "gcs": ("publicRead", "acl")}
SETTINGS = {
    "s3": {"default_acl": "AWS_DEFAULT_ACL", "object_parameters": "AWS_S3_OBJECT_PARAMETERS"},
    "gcs": {"default_acl": "GS_DEFAULT_ACL", "object_parameters": "GS_OBJECT_PARAMETERS"},
}
CLASSES = {"s3": "storages.backends.s3.S3Storage", "gcs": "storages.backends.gcloud.GoogleCloudStorage"}


def public_acl_error(make_app, storage: str, config: dict):
    app = make_app(result_storage=storage, result_storage_config=config)
    app.set_current()
    errors = [message for message in check_result_storage() if message.id.endswith(".E001")]
    assert len(errors) == 1, errors
    return errors[0]


@pytest.mark.parametrize("preset", ["s3", "gcs"])
def test_a_public_default_acl_in_the_config_on_the_preset(request, make_app, preset):
    acl, _ = PUBLIC[preset]
    error = public_acl_error(
        make_app, preset, {**request.getfixturevalue(f"{preset}_config"), "default_acl": acl}
    )
    assert "CELERY_RESULT_STORAGE_CONFIG['default_acl']" in error.msg
    assert (
        error.hint
        == "Set CELERY_RESULT_STORAGE_CONFIG['default_acl'] = None (no ACL is sent: the bucket decides)."
    )
    assert "preset" not in error.hint and SETTINGS[preset]["object_parameters"] not in error.hint


@pytest.mark.parametrize("preset", ["s3", "gcs"])
def test_a_public_acl_among_the_object_parameters_in_the_config(request, make_app, preset):
    acl, parameter = PUBLIC[preset]
    config = {**request.getfixturevalue(f"{preset}_config"), "object_parameters": {parameter: acl}}
    error = public_acl_error(make_app, preset, config)
    assert error.hint == f"Remove {parameter!r} from CELERY_RESULT_STORAGE_CONFIG['object_parameters']."
    assert "default_acl" not in error.hint and "preset" not in error.hint


@pytest.mark.parametrize("preset", ["s3", "gcs"])
def test_a_public_acl_among_the_object_parameters_setting(request, make_app, settings, preset):
    acl, parameter = PUBLIC[preset]
    setattr(settings, SETTINGS[preset]["object_parameters"], {parameter: acl})
    error = public_acl_error(make_app, preset, request.getfixturevalue(f"{preset}_config"))
    assert error.hint == f"Remove {parameter!r} from {SETTINGS[preset]['object_parameters']}."


@pytest.mark.parametrize("preset", ["s3", "gcs"])
def test_a_public_default_acl_setting_off_the_preset_suggests_it(request, make_app, settings, preset):
    acl, _ = PUBLIC[preset]
    setattr(settings, SETTINGS[preset]["default_acl"], acl)
    error = public_acl_error(make_app, CLASSES[preset], request.getfixturevalue(f"{preset}_config"))
    setting = SETTINGS[preset]["default_acl"]
    assert f"(from {setting})" in error.msg
    assert f"it wins over {setting}" in error.hint and f"use the {preset!r} preset" in error.hint


def test_w012_counts_one_day_in_the_singular(make_app, s3_config):
    from django_storage_celery_results_s3 import check_connectivity, ensure_lifecycle_rule

    adapter = make_app(result_storage="s3", result_storage_config=s3_config).backend.adapter
    ensure_lifecycle_rule(adapter, 2 * DAY)
    (message,) = check_connectivity(adapter, DAY)
    assert message.id.endswith(".W012")
    assert "after 2 days, result_expires asks for 1 day" in message.msg and "1 days" not in message.msg


def test_azure_expiry_advice_counts_one_day_in_the_singular(make_app, azure_config):
    from django_storage_celery_results_azure import check_connectivity

    adapter = make_app(result_storage="azure", result_storage_config=azure_config).backend.adapter
    (message,) = check_connectivity(adapter, DAY)
    assert "after 1 day (" in message.msg and "1 days" not in message.msg
    (message,) = check_connectivity(adapter, 3 * DAY)
    assert "after 3 days (" in message.msg


@pytest.mark.parametrize("expires", [None, 0, -5, 0.0])
@pytest.mark.parametrize("preset", ["s3", "gcs", "azure"])
def test_lifecycle_helpers_refuse_a_result_expires_that_makes_no_rule(request, make_app, preset, expires):
    import django_storage_celery_results_azure
    import django_storage_celery_results_gcs
    import django_storage_celery_results_s3

    helper = {
        "s3": django_storage_celery_results_s3.ensure_lifecycle_rule,
        "gcs": django_storage_celery_results_gcs.ensure_lifecycle_rule,
        "azure": django_storage_celery_results_azure.lifecycle_policy,
    }[preset]
    adapter = make_app(
        result_storage=preset, result_storage_config=request.getfixturevalue(f"{preset}_config")
    ).backend.adapter
    with pytest.raises(ImproperlyConfigured, match=rf"result_expires .*not {expires!r}"):
        helper(adapter, expires)
