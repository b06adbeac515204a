"""The person behind an MCP host: the elicitation callback of the official SDK client opens the
confirmation URL in the demo user's browser (`FormBrowser`) and approves or declines there."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import mcp_types as types
from mcp import Client
from mcp.shared.exceptions import MCPError, UrlElicitationRequiredError

from tests.forms import parse
from tests.support.browser import FormBrowser


class Person:
    """The demo user at their browser, deciding each confirmation they are shown."""

    def __init__(self, browser: FormBrowser, decision: str) -> None:
        self.browser = browser
        self.decision = decision
        self.opened: list[str] = []

    async def confirm(self, url: str) -> str:
        client = self.browser.client
        response = await client.get(url)
        for _ in range(4):
            if response.status_code in (302, 303):
                response = await client.get(urljoin(str(response.url), response.headers["location"]))
                continue
            (*_, form), text = parse(response.text)
            if "password" in form.fields:  # no session yet: sign in, and come back here
                data = form.submission({"username": self.browser.username, "password": self.browser.password})
                response = await client.post(urljoin(str(response.url), form.action), data=data)
                continue
            assert "Confirm a payment" in text, text
            data = form.submission(button=("decision", self.decision))
            decided = await client.post(urljoin(str(response.url), form.action), data=data)
            assert decided.status_code == 200, decided.text[:500]
            return decided.text
        raise AssertionError("too many steps")

    async def elicit(self, _context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        assert isinstance(params, types.ElicitRequestURLParams)
        assert urlsplit(params.url).path == "/account/confirm"
        self.opened.append(params.url)
        await self.confirm(params.url)
        return types.ElicitResult(action="accept")  # URL mode: the person went to the page


async def call_as_host(client: Client, person: Person, mode: str, arguments: dict) -> types.CallToolResult:
    """What a host does: on 2026-07-28 the SDK loops; on 2025-11-25 the -32042 error's URL goes to
    the same callback, then the same call again (client/elicitation §URL Elicitation Required)."""
    if mode != "legacy":
        return await client.call_tool("createTransaction", arguments)
    try:
        return await client.call_tool("createTransaction", arguments)
    except MCPError as exc:
        assert exc.error.code == types.URL_ELICITATION_REQUIRED, exc.error
        (elicitation,) = UrlElicitationRequiredError.from_error(exc.error).elicitations
        await person.elicit(None, elicitation)
    return await client.call_tool("createTransaction", arguments)
