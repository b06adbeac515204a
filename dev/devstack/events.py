"""API Gateway HTTP API events, payload format 2.0, as the real service builds them.

https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-develop-integrations-lambda.html
Headers are lower-cased and repeated ones joined with commas; cookies move out of the headers
into `cookies`; a body that is not text is base64-encoded.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

ACCOUNT_ID = "123456789012"
"""The emulated AWS account (events' requestContext, the template's ARNs)."""

_TEXT_TYPES = ("text/", "application/json", "application/javascript", "application/xml", "application/xhtml")


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    path: str
    """The raw (percent-encoded) path."""
    query_string: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"


def _is_text(content_type: str | None) -> bool:
    return content_type is not None and content_type.lower().startswith(_TEXT_TYPES)


def _forwarded_port(host: str, proto: str) -> str:
    """The port the client connected to, as API Gateway reports it (its own, never the client's
    header): the Host's port when it has a valid one, else the scheme's."""
    try:
        port = urlsplit(f"//{host}").port
    except ValueError:
        port = None
    return str(port or (443 if proto == "https" else 80))


def build_event(
    request: HttpRequest,
    *,
    route_key: str,
    path_parameters: dict[str, str] | None,
    forwarded_proto: str,
    now: float | None = None,
) -> dict[str, Any]:
    now = time.time() if now is None else now
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        lname = name.lower()
        if lname == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[lname] = f"{headers[lname]},{value}" if lname in headers else value
    host = headers.get("host", "localhost")
    headers["x-forwarded-for"] = request.source_ip
    headers["x-forwarded-proto"] = forwarded_proto
    headers["x-forwarded-port"] = _forwarded_port(host, forwarded_proto)
    request_id = str(uuid.uuid4())
    headers["x-amzn-trace-id"] = f"Root=1-{int(now):08x}-{uuid.uuid4().hex[:24]}"

    query: dict[str, str] = {}
    for name, value in parse_qsl(request.query_string, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value

    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": request.path,
        "rawQueryString": request.query_string,
        "headers": headers,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "local",
            "domainName": host.partition(":")[0],
            "domainPrefix": host.partition(".")[0].partition(":")[0],
            "http": {
                "method": request.method,
                "path": unquote(request.path),
                "protocol": request.protocol,
                "sourceIp": request.source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": formatdate(now, usegmt=True),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if request.body:
        if _is_text(headers.get("content-type")):
            try:
                event["body"] = request.body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(request.body).decode("ascii")
                event["isBase64Encoded"] = True
        else:
            event["body"] = base64.b64encode(request.body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def parse_result(result: Any) -> HttpResponse:
    """A Lambda proxy result (payload 2.0) as the HTTP response API Gateway would send."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # API Gateway's inference for a bare return value: 200 with it as a JSON body
        return HttpResponse(200, [("content-type", "application/json")], json.dumps(result).encode())
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        headers.append((name.lower(), str(value)))
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((name.lower(), str(v)) for v in _as_list(values))
    headers.extend(("set-cookie", c) for c in result.get("cookies") or [])
    body = result.get("body") or ""
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode("utf-8")
    return HttpResponse(int(result["statusCode"]), headers, raw)


def _as_list(values: Any) -> Iterable[Any]:
    return values if isinstance(values, list) else [values]


def gateway_error(status: int, message: str) -> HttpResponse:
    """The bodies API Gateway itself answers with (e.g. {"message":"Not Found"})."""
    body = json.dumps({"message": message}).encode()
    return HttpResponse(status, [("content-type", "application/json")], body)
