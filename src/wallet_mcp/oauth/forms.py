"""Form-encoded request bodies, parsed strictly (RFC 6749 §3.1, §3.2, Appendix B)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from wallet_mcp.oauth.errors import InvalidRequest, PayloadTooLarge

MAX_FORM_BYTES = 16 * 1024


def parse_form(body: bytes, content_type: str | None, *, max_bytes: int = MAX_FORM_BYTES) -> dict[str, str]:
    """The parameters of an `application/x-www-form-urlencoded` body.

    A parameter sent twice is an error (RFC 6749 §3.1: "MUST NOT be included more than once");
    a parameter sent without a value is treated as omitted (§3.1).
    """
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise InvalidRequest("the body must be application/x-www-form-urlencoded")
    if len(body) > max_bytes:
        raise PayloadTooLarge("request body too large")
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRequest("the body is not valid form encoding") from exc
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise InvalidRequest(f"parameter sent more than once: {name}")
        params[name] = value
    return {name: value for name, value in params.items() if value != ""}
