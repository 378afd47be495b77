"""Azure requests as the tests see them through the counting proxy, and faults to inject."""

from __future__ import annotations

from urllib.parse import parse_qs

from tests.emulators import Fault, Request, condition


def azure_error(status: int, code: str, method: str | None = None) -> Fault:
    """An Azure-style XML error answer, for requests with the given method."""
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{code}</Code><Message>injected</Message></Error>'
    )
    return Fault(
        status,
        body.encode(),
        (("Content-Type", "application/xml"), ("x-ms-error-code", code)),
        matches=lambda request: method is None or request.method == method,
    )


def calls(requests: list[Request]) -> list[str]:
    """Requests as 'METHOD?comp=... condition' (path-independent) for exact budgets."""
    return [f"{request.method}{_operation(request)}{condition(request)}" for request in requests]


def _operation(request: Request) -> str:
    comp = parse_qs(request.query).get("comp")
    return f"?comp={comp[0]}" if comp else ""


def no_sdk_retries(config: dict) -> dict:
    return {**config, "client_options": {"retry_total": 0}}
