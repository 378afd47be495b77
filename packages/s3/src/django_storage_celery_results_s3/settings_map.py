"""Every AWS_* Django setting and the S3Storage constructor argument it feeds.

One table, as data: the preset and CELERY_RESULT_STORAGE_CONFIG are validated
against it (an unknown key names the closest valid one) and the README shows
it. S3Storage reads these settings itself; a key in
CELERY_RESULT_STORAGE_CONFIG wins over the setting.
"""

from __future__ import annotations

#: constructor argument -> Django settings (first set one wins) and meaning
S3_SETTINGS: dict[str, tuple[tuple[str, ...], str]] = {
    "access_key": (("AWS_S3_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"), "access key id"),
    "secret_key": (("AWS_S3_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"), "secret access key"),
    "security_token": (("AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"), "session token of temporary credentials"),
    "session_profile": (("AWS_S3_SESSION_PROFILE",), "profile of ~/.aws/config (not with keys)"),
    "bucket_name": (("AWS_STORAGE_BUCKET_NAME",), "bucket"),
    "location": (("AWS_LOCATION",), "key prefix (folder) inside the bucket; preset: celery-results"),
    "endpoint_url": (("AWS_S3_ENDPOINT_URL",), "endpoint of an S3-compatible store"),
    "region_name": (("AWS_S3_REGION_NAME",), "region"),
    "addressing_style": (("AWS_S3_ADDRESSING_STYLE",), "'virtual' or 'path'"),
    "signature_version": (("AWS_S3_SIGNATURE_VERSION",), "request signature version"),
    "client_config": (("AWS_S3_CLIENT_CONFIG",), "botocore Config (retries, timeouts, max_pool_connections)"),
    "use_ssl": (("AWS_S3_USE_SSL",), "use HTTPS"),
    "verify": (("AWS_S3_VERIFY",), "TLS verification: bool or CA bundle path"),
    "proxies": (("AWS_S3_PROXIES",), "HTTP proxies"),
    "object_parameters": (("AWS_S3_OBJECT_PARAMETERS",), "PutObject parameters (SSE, StorageClass, ...)"),
    "default_acl": (("AWS_DEFAULT_ACL",), "canned ACL; preset: none sent (private)"),
    "file_overwrite": (("AWS_S3_FILE_OVERWRITE",), "overwrite in place; preset: True"),
    "max_memory_size": (("AWS_S3_MAX_MEMORY_SIZE",), "storage.open() buffer (not used for results)"),
    "transfer_config": (("AWS_S3_TRANSFER_CONFIG",), "s3transfer config (not used for results)"),
    "use_threads": (("AWS_S3_USE_THREADS",), "deprecated by django-storages"),
    "querystring_auth": (("AWS_QUERYSTRING_AUTH",), "signed URLs from storage.url()"),
    "querystring_expire": (("AWS_QUERYSTRING_EXPIRE",), "signed URL lifetime"),
    "custom_domain": (("AWS_S3_CUSTOM_DOMAIN",), "domain for storage.url()"),
    "url_protocol": (("AWS_S3_URL_PROTOCOL",), "protocol for storage.url()"),
    "cloudfront_key_id": (("AWS_CLOUDFRONT_KEY_ID",), "CloudFront signed URLs"),
    "cloudfront_key": (("AWS_CLOUDFRONT_KEY",), "CloudFront signed URLs"),
    "cloudfront_signer": ((), "CloudFront signer object (constructor only)"),
    "file_name_charset": (("AWS_S3_FILE_NAME_CHARSET",), "name charset"),
    "gzip": (("AWS_IS_GZIPPED",), "gzip on save() (results use result_compression)"),
    "gzip_content_types": (("GZIP_CONTENT_TYPES",), "types gzipped on save()"),
}

#: What core's provider contract takes: argument -> settings.
SETTINGS_BY_ARGUMENT = {argument: names for argument, (names, _meaning) in S3_SETTINGS.items()}
