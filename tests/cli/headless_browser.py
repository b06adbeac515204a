"""A stand-in for the system browser, for `$BROWSER`: `python tests/cli/headless_browser.py URL`.

A person at the real sign-in and consent pages, played by `tests/support/browser.FormBrowser`,
who then follows the authorization server's final redirect to the command's loopback callback.
Who signs in and what they press come from `WALLET_TEST_USERNAME`, `WALLET_TEST_PASSWORD` and
`WALLET_TEST_DECISION` (default: the demo user, approve); each visit is appended as a JSON line to
`WALLET_TEST_BROWSER_LOG` when set: the pages seen (`login`, `consent`), the notices they showed
(such as the consent page's "You allowed this before"), and the callback's status. Needs the
repository root on PYTHONPATH.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import sys

import httpx

from devstack.seed import DEMO_PASSWORD, DEMO_USERNAME
from tests.support.browser import FormBrowser

NOTICE = re.compile(r'<p class="notice" role="status">(.*?)</p>', re.DOTALL)


async def visit(url: str) -> int:
    browser = FormBrowser(
        os.environ.get("WALLET_TEST_USERNAME", DEMO_USERNAME),
        os.environ.get("WALLET_TEST_PASSWORD", DEMO_PASSWORD),
        decision=os.environ.get("WALLET_TEST_DECISION", "approve"),
    )
    notices: list[str] = []

    async def read_notices(response: httpx.Response) -> None:
        if response.status_code == 200 and "html" in response.headers.get("content-type", ""):
            await response.aread()
            notices.extend(html.unescape(re.sub(r"<[^>]+>", "", n)) for n in NOTICE.findall(response.text))

    browser.client.event_hooks = {"response": [read_notices]}
    try:
        landing = await browser.authorize(url)
        callback = await browser.client.get(landing.url)
    finally:
        await browser.aclose()
    return record(browser.pages_seen, notices, callback.status_code)


def record(pages: list[str], notices: list[str], callback_status: int) -> int:
    log = os.environ.get("WALLET_TEST_BROWSER_LOG")
    if log:
        line = {"pages": pages, "notices": notices, "callback_status": callback_status}
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")
    return 0 if callback_status == 200 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(visit(sys.argv[1])))
