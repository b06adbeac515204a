"""The local stack driven from the outside, as people and clients use it: a browser (cookies, forms
with their hidden fields and buttons) for users and administrators, and plain HTTP for clients
(registration, token, revocation, introspection, the MCP endpoint and the wallet API).

Synchronous on purpose: each step of an access test waits for the previous one."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx

from tests.forms import Form, parse
from tests.support.local_stack import LocalStack
from wallet_mcp.credentials.passwords import hash_password
from wallet_mcp.primitives import pkce
from wallet_mcp.storage.users import UserRecord, UserStore

USERS_TABLE = "wallet-mcp-local-UsersTable"
MCP_CALL_SCOPES = "mcp:tools:call wallet:accounts:read"


def next_second() -> None:
    """Wait for the wall clock's next second. Cut-offs are kept to the second and cover their own
    second (docs/security.md): a new grant right after a cut-off is issued in the next one."""
    start = int(time.time())
    while int(time.time()) == start:
        time.sleep(0.02)


def eventually(check: Callable[[], bool], *, timeout: float = 10.0, every: float = 0.2) -> bool:
    """Polls `check` until it holds or `timeout` passes (a revocation reaches resource servers
    within one revocation poll, not at once); the last result."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(every)


@dataclass(frozen=True)
class Person:
    username: str
    password: str
    user_id: str


def create_person(stack: LocalStack, *, admin: bool = False) -> Person:
    """A user in the stack's users table (what `wallet-mcp admin create-user` writes)."""
    username = f"user-{uuid.uuid4().hex[:10]}"
    password = secrets.token_urlsafe(12)
    record = UserRecord(
        username=username,
        user_id=str(uuid.uuid4()),
        password_hash=hash_password(password),
        created_at=int(time.time()),
        roles=("admin",) if admin else (),
    )
    UserStore(stack.client("dynamodb"), USERS_TABLE).create(record)
    return Person(username, password, record.user_id)


@dataclass
class Page:
    response: httpx.Response

    @property
    def status(self) -> int:
        return self.response.status_code

    @property
    def html(self) -> str:
        return self.response.text

    @property
    def forms(self) -> list[Form]:
        return parse(self.html)[0]

    @property
    def text(self) -> str:
        return parse(self.html)[1]

    @property
    def location(self) -> str | None:
        return self.response.headers.get("location")

    def form(self, target: str, **fields: str) -> Form:
        """The form posting to `target` whose hidden fields include `fields`."""
        for form in self.forms:
            if form.action == target and all(form.fields.get(k) == v for k, v in fields.items()):
                return form
        raise AssertionError(f"no form for {target} {fields} on the page: {self.text[-600:]}")


@dataclass
class Landing:
    """Where an authorization ended: the client's redirect URI with its parameters."""

    url: str
    params: dict[str, str]


@dataclass
class Browser:
    """A person's browser: one cookie jar, forms submitted as a browser submits them."""

    base_url: str
    http: httpx.Client = field(init=False)
    pages_seen: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.base_url, follow_redirects=False, timeout=30)

    def close(self) -> None:
        self.http.close()

    def get(self, url: str, params: Mapping[str, str] | None = None) -> Page:
        return Page(self.http.get(url, params=params))

    def submit(self, page: Page, form: Form, values: Mapping[str, str] | None = None) -> Page:
        target = urljoin(str(page.response.url), form.action)
        headers = {"origin": self.base_url, "sec-fetch-site": "same-origin"}
        return Page(self.http.post(target, data=form.submission(dict(values or {})), headers=headers))

    def submit_pairs(self, page: Page, form: Form, pairs: Sequence[tuple[str, str]]) -> Page:
        """A submission with repeated fields (checkbox groups): the form's hidden fields, then `pairs`."""
        names = {name for name, _ in pairs}
        data = [
            (k, v) for k, v in form.fields.items() if k not in names and (k, "checkbox") not in form.inputs
        ]
        target = urljoin(str(page.response.url), form.action)
        headers = {
            "origin": self.base_url,
            "sec-fetch-site": "same-origin",
            "content-type": "application/x-www-form-urlencoded",
        }
        return Page(self.http.post(target, content=urlencode([*data, *pairs]), headers=headers))

    def follow(self, page: Page) -> Page:
        while page.status in (302, 303) and page.location and page.location.startswith(("/", self.base_url)):
            page = self.get(urljoin(str(page.response.url), page.location))
        return page

    # --- the account pages -----------------------------------------------------------------------

    def sign_in(self, person: Person, next_path: str = "/account") -> Page:
        """Sign in on the account pages (unless this browser is signed in already)."""
        page = self.get("/account", {"next": next_path})
        if not any("password" in form.fields for form in page.forms):
            return page
        (form,) = page.forms
        signed_in = self.submit(page, form, {"username": person.username, "password": person.password})
        assert signed_in.status == 303, signed_in.text[:500]
        return self.follow(signed_in)

    def press(self, path: str, target: str, *, confirm: bool = True, **fields: str) -> Page:
        """On the page at `path`, submit the form posting to `target` with these hidden fields,
        confirming on the confirmation page if one follows."""
        page = self.get(path)
        assert page.status == 200, page.text[:500]
        result = self.submit(page, page.form(target, **fields))
        if confirm and result.status == 200 and any(f.fields.get("confirm") == "yes" for f in result.forms):
            result = self.submit(result, result.form(target, confirm="yes"))
        return self.follow(result)

    # --- the authorization endpoint --------------------------------------------------------------

    def authorize(self, url: str, person: Person, *, decision: str = "approve") -> Landing | Page:
        """Follow an authorization URL as the person would: sign in if asked, answer the consent
        page. The landing at the client, or the page where it stopped (an error page)."""
        page = self.get(url)
        for _ in range(6):
            if page.status in (302, 303) and page.location:
                location = urljoin(str(page.response.url), page.location)
                if urlsplit(location).path.endswith("/oauth/authorize"):
                    page = self.get(location)
                    continue
                return Landing(location, {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()})
            if page.status != 200 or not page.forms:
                return page
            (form,) = page.forms
            if "password" in form.fields:
                self.pages_seen.append("login")
                page = self.submit(page, form, {"username": person.username, "password": person.password})
            else:
                self.pages_seen.append("consent")
                page = self.submit(page, form, {"decision": decision})
        raise AssertionError("too many steps")


# --- clients ---------------------------------------------------------------------------------------


@dataclass
class Client:
    """An OAuth client as seen from outside: its credentials and its redirect URI."""

    stack: LocalStack
    client_id: str
    redirect_uri: str
    secret: str | None = None
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    def authorization_url(
        self, scope: str, *, resource: str | None = None, extra: Mapping[str, str] | None = None
    ) -> str:
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": scope,
            "state": "st",
            "code_challenge": pkce.s256(self.verifier),
            "code_challenge_method": "S256",
            **({"resource": resource} if resource else {}),
            **(extra or {}),
        }
        return f"{self.stack.base_url}/oauth/authorize?{urlencode(query)}"

    def _auth(self, data: dict[str, str]) -> dict[str, str]:
        if self.secret is None:
            data["client_id"] = self.client_id
            return {}
        basic = base64.b64encode(f"{self.client_id}:{self.secret}".encode()).decode()
        return {"authorization": f"Basic {basic}"}

    def post(self, path: str, data: dict[str, str]) -> httpx.Response:
        headers = self._auth(data)
        return httpx.post(f"{self.stack.base_url}{path}", data=data, headers=headers, timeout=30)

    def exchange(self, landing: Landing | Page, *, redirect_uri: str | None = None) -> httpx.Response:
        assert isinstance(landing, Landing), landing.text[:500] if isinstance(landing, Page) else landing
        assert "code" in landing.params, landing.params
        return self.post(
            "/oauth/token",
            {
                "grant_type": "authorization_code",
                "code": landing.params["code"],
                "redirect_uri": redirect_uri or landing.url.split("?", 1)[0],
                "code_verifier": self.verifier,
            },
        )

    def tokens(
        self, browser: Browser, person: Person, scope: str, *, resource: str | None = None
    ) -> dict[str, Any]:
        """Authorization code flow end to end (the person approves)."""
        landing = browser.authorize(self.authorization_url(scope, resource=resource), person)
        response = self.exchange(landing)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def refresh(self, refresh_token: str) -> httpx.Response:
        return self.post("/oauth/token", {"grant_type": "refresh_token", "refresh_token": refresh_token})

    def client_credentials(self, scope: str, *, resource: str | None = None) -> httpx.Response:
        data = {"grant_type": "client_credentials", "scope": scope}
        if resource:
            data["resource"] = resource
        return self.post("/oauth/token", data)

    def revoke(self, token: str) -> httpx.Response:
        return self.post("/oauth/revoke", {"token": token})

    def introspect(self, token: str) -> httpx.Response:
        return self.post("/oauth/introspect", {"token": token})


def register(
    stack: LocalStack,
    *,
    redirect_uris: Sequence[str] = ("https://app.example.com/cb",),
    confidential: bool = False,
    refresh: bool = True,
    name: str = "Access test",
    **extra: Any,
) -> Client:
    grants = ["authorization_code", *(["refresh_token"] if refresh else [])]
    body: dict[str, Any] = {
        "client_name": name,
        "redirect_uris": list(redirect_uris),
        "grant_types": grants,
        "token_endpoint_auth_method": "client_secret_basic" if confidential else "none",
        **extra,
    }
    response = httpx.post(f"{stack.base_url}/oauth/register", json=body, timeout=30)
    assert response.status_code == 201, response.text
    info = response.json()
    return Client(stack, info["client_id"], next(iter(redirect_uris), ""), info.get("client_secret"))


# --- resource servers ------------------------------------------------------------------------------


def mcp_call(stack: LocalStack, token: str, tool: str = "getTotalBalance") -> httpx.Response:
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {}}}
    return httpx.post(
        stack.mcp_url,
        content=json.dumps(message),
        headers={
            "authorization": f"Bearer {token}",
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
        },
        timeout=30,
    )


def api_get(stack: LocalStack, token: str, path: str = "/api/balance") -> httpx.Response:
    return httpx.get(f"{stack.base_url}{path}", headers={"authorization": f"Bearer {token}"}, timeout=30)


def refused(response: httpx.Response) -> bool:
    """A resource server's answer to a token that no longer works: 401 invalid_token."""
    return response.status_code == 401 and 'error="invalid_token"' in response.headers.get(
        "www-authenticate", ""
    )


def error_code(response: httpx.Response) -> str | None:
    try:
        return str(response.json().get("error"))
    except ValueError:
        return None
