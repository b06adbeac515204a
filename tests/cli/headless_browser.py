"""A stand-in for the system browser, for `$BROWSER`: `python tests/cli/headless_browser.py URL`.

A person at the real sign-in and consent pages, played by `tests/support/browser.FormBrowser`,
who then follows the authorization server's final redirect to the command's loopback callback.
Who signs in and what they press come from `WALLET_TEST_USERNAME`, `WALLET_TEST_PASSWORD` and
`WALLET_TEST_DECISION` (default: the demo user, approve); each visit is appended as a JSON line to
`WALLET_TEST_BROWSER_LOG` when set. Needs the repository root on PYTHONPATH.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from devstack.seed import DEMO_PASSWORD, DEMO_USERNAME
from tests.support.browser import FormBrowser


async def visit(url: str) -> int:
    browser = FormBrowser(
        os.environ.get("WALLET_TEST_USERNAME", DEMO_USERNAME),
        os.environ.get("WALLET_TEST_PASSWORD", DEMO_PASSWORD),
        decision=os.environ.get("WALLET_TEST_DECISION", "approve"),
    )
    try:
        landing = await browser.authorize(url)
        callback = await browser.client.get(landing.url)
    finally:
        await browser.aclose()
    return record(browser.pages_seen, callback.status_code)


def record(pages: list[str], callback_status: int) -> int:
    log = os.environ.get("WALLET_TEST_BROWSER_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"pages": pages, "callback_status": callback_status}) + "\n")
    return 0 if callback_status == 200 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(visit(sys.argv[1])))
