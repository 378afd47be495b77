"""Azure requests as the tests see them through the counting proxy, and faults to inject."""

from __future__ import annotations

from urllib.parse import parse_qs

from tests.emulators import Fault, Request, condition, xml_error


def azure_error(status: int, code: str, method: str | None = None) -> Fault:
    """An Azure error answer: XML, and the code in a header too."""
    return xml_error(status, code, method, ("x-ms-error-code", code))


def calls(requests: list[Request]) -> list[str]:
    """Requests as 'METHOD?comp=... condition' (path-independent) for exact budgets."""
    return [f"{request.method}{_operation(request)}{condition(request)}" for request in requests]


def _operation(request: Request) -> str:
    comp = parse_qs(request.query).get("comp")
    return f"?comp={comp[0]}" if comp else ""


def no_sdk_retries(config: dict) -> dict:
    return {**config, "client_options": {"retry_total": 0}}
