"""A user at a browser, played by httpx: follows the authorization URL, fills in the login form,
presses a consent button, and reports where the authorization server sent it back."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from tests.forms import parse


@dataclass
class Landing:
    """Where the browser ended up: the client's redirect URI and its query parameters."""

    url: str
    params: dict[str, str]


@dataclass
class FormBrowser:
    username: str
    password: str
    decision: str = "approve"
    choices: dict[str, str] = field(default_factory=dict)
    """Limits chosen on the consent page (caps, over_cap, duration), as its fields."""
    keep_accounts: tuple[str, ...] | None = None
    """The names of the accounts left ticked on the consent page (None: all of them)."""
    accounts_seen: dict[str, str] = field(default_factory=dict)
    """Account name → id, as the consent page listed them."""
    pages_seen: list[str] = field(default_factory=list)
    client: httpx.AsyncClient = field(
        default_factory=lambda: httpx.AsyncClient(timeout=30, follow_redirects=False)
    )

    async def authorize(self, url: str) -> Landing:
        response = await self.client.get(url)
        for _ in range(6):
            if response.status_code in (302, 303):
                location = urljoin(str(response.url), response.headers["location"])
                parts = urlsplit(location)
                if parts.path.endswith("/oauth/authorize"):
                    response = await self.client.get(location)
                    continue
                return Landing(location, {k: v[0] for k, v in parse_qs(parts.query).items()})
            if response.status_code != 200:
                raise AssertionError(
                    f"authorization page answered {response.status_code}: {response.text[:500]}"
                )
            (form,), _ = parse(response.text)
            self.pages_seen.append("login" if "password" in form.fields else "consent")
            if "password" in form.fields:
                data = form.submission({"username": self.username, "password": self.password})
            else:
                data = form.submission(self.choices, button=("decision", self.decision))
                listed = dict(re.findall(r'name="account:([^"]+)"[^>]*>\s*([^<(]+?)\s*\(', response.text))
                self.accounts_seen = {name: account_id for account_id, name in listed.items()}
                if self.keep_accounts is not None:
                    for account_id, name in listed.items():
                        if name not in self.keep_accounts:
                            del data[f"account:{account_id}"]  # an unticked box is not sent
            response = await self.client.post(urljoin(str(response.url), form.action), data=data)
        raise AssertionError("too many steps")

    async def aclose(self) -> None:
        await self.client.aclose()
