"""Form-encoded request bodies, parsed strictly (RFC 6749 §3.1, §3.2, Appendix B)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from wallet_mcp.primitives.errors import InvalidRequest, PayloadTooLarge

MAX_FORM_BYTES = 16 * 1024


def parse_form(body: bytes, content_type: str | None, *, max_bytes: int = MAX_FORM_BYTES) -> dict[str, str]:
    """The parameters of an `application/x-www-form-urlencoded` body.

    A parameter sent twice is an error (RFC 6749 §3.1: "MUST NOT be included more than once");
    a parameter sent without a value is treated as omitted (§3.1).
    """
    params: dict[str, str] = {}
    for name, value in _pairs(body, content_type, max_bytes):
        if name in params:
            raise InvalidRequest(f"parameter sent more than once: {name}")
        params[name] = value
    return {name: value for name, value in params.items() if value != ""}


@dataclass(frozen=True, slots=True)
class PageForm:
    """A form a page of this server submitted: single fields, and the groups (checkboxes) whose
    name may repeat."""

    fields: dict[str, str]
    groups: dict[str, list[str]] = field(default_factory=dict)


def parse_page_form(
    body: bytes, content_type: str | None, *, groups: Collection[str] = (), max_bytes: int = MAX_FORM_BYTES
) -> PageForm:
    """Like `parse_form`, but the names in `groups` may repeat (each gets the list of its values;
    an unchecked group is an empty list). Empty single fields are kept as ""."""
    fields: dict[str, str] = {}
    found: dict[str, list[str]] = {name: [] for name in groups}
    for name, value in _pairs(body, content_type, max_bytes):
        if name in found:
            found[name].append(value)
        elif name in fields:
            raise InvalidRequest(f"parameter sent more than once: {name}")
        else:
            fields[name] = value
    return PageForm(fields, found)


def _pairs(body: bytes, content_type: str | None, max_bytes: int) -> list[tuple[str, str]]:
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
    return pairs
