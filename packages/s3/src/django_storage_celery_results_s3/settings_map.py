"""Every AWS_* Django setting and the S3Storage constructor argument it feeds.

One table, as data: the preset and CELERY_RESULT_STORAGE_CONFIG are validated
against it (an unknown key names the closest valid one) and the README shows
it. S3Storage reads these settings itself; a key in
CELERY_RESULT_STORAGE_CONFIG wins over the setting.
"""

from __future__ import annotations

from django_storage_celery_results.providers import Setting

#: constructor argument, the Django settings that feed it (first set one wins), meaning
S3_SETTINGS = (
    Setting("access_key", ("AWS_S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"), "access key id"),
    Setting("secret_key", ("AWS_S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"), "secret access key"),
    Setting(
        "security_token",
        ("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"),
        "session token of temporary credentials",
    ),
    Setting("session_profile", ("AWS_S3_SESSION_PROFILE",), "profile of ~/.aws/config (not with keys)"),
    Setting("bucket_name", ("AWS_STORAGE_BUCKET_NAME",), "bucket"),
    Setting("location", ("AWS_LOCATION",), "key prefix (folder) inside the bucket; preset: celery-results"),
    Setting("endpoint_url", ("AWS_S3_ENDPOINT_URL",), "endpoint of an S3-compatible store"),
    Setting("region_name", ("AWS_S3_REGION_NAME",), "region"),
    Setting("addressing_style", ("AWS_S3_ADDRESSING_STYLE",), "'virtual' or 'path'"),
    Setting("signature_version", ("AWS_S3_SIGNATURE_VERSION",), "request signature version"),
    Setting(
        "client_config",
        ("AWS_S3_CLIENT_CONFIG",),
        "botocore Config (retries, timeouts, max_pool_connections)",
    ),
    Setting("use_ssl", ("AWS_S3_USE_SSL",), "use HTTPS"),
    Setting("verify", ("AWS_S3_VERIFY",), "TLS verification: bool or CA bundle path"),
    Setting("proxies", ("AWS_S3_PROXIES",), "HTTP proxies"),
    Setting(
        "object_parameters",
        ("AWS_S3_OBJECT_PARAMETERS",),
        "PutObject parameters (SSE, StorageClass, ...)",
    ),
    Setting("default_acl", ("AWS_DEFAULT_ACL",), "canned ACL; preset: none sent (private)"),
    Setting("file_overwrite", ("AWS_S3_FILE_OVERWRITE",), "overwrite in place; preset: True"),
    Setting("max_memory_size", ("AWS_S3_MAX_MEMORY_SIZE",), "storage.open() buffer (not used for results)"),
    Setting("transfer_config", ("AWS_S3_TRANSFER_CONFIG",), "s3transfer config (not used for results)"),
    Setting("use_threads", ("AWS_S3_USE_THREADS",), "deprecated by django-storages"),
    Setting("querystring_auth", ("AWS_QUERYSTRING_AUTH",), "signed URLs from storage.url()"),
    Setting("querystring_expire", ("AWS_QUERYSTRING_EXPIRE",), "signed URL lifetime"),
    Setting("custom_domain", ("AWS_S3_CUSTOM_DOMAIN",), "domain for storage.url()"),
    Setting("url_protocol", ("AWS_S3_URL_PROTOCOL",), "protocol for storage.url()"),
    Setting("cloudfront_key_id", ("AWS_CLOUDFRONT_KEY_ID",), "CloudFront signed URLs"),
    Setting("cloudfront_key", ("AWS_CLOUDFRONT_KEY",), "CloudFront signed URLs"),
    Setting("cloudfront_signer", (), "CloudFront signer object (constructor only)"),
    Setting("file_name_charset", ("AWS_S3_FILE_NAME_CHARSET",), "name charset"),
    Setting("gzip", ("AWS_IS_GZIPPED",), "gzip on save() (results use result_compression)"),
    Setting("gzip_content_types", ("GZIP_CONTENT_TYPES",), "types gzipped on save()"),
)
