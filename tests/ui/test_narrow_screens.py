"""The pages on a phone (390 px wide), a tablet (768), just above the width where tables stop
stacking (1100) and a desktop (1280) in real Chromium: nothing wider than the screen or sticking out
of the page's card, every action within reach, long names wrapped, the product and a way to sign
out shown.

Seeded once for the module, from the outside (registration, the authorization flow, the account
pages' forms) for a person of its own, so that what the pages list does not depend on other tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page

from tests.support.site import Browser, Client, Person, create_person, register
from wallet_mcp.account.pages import plural
from wallet_mcp.storage.personal_tokens import PersonalTokenStore
from wallet_mcp.web import pages

pytestmark = pytest.mark.flow

PHONE, DESKTOP = 390, 1280
WIDTHS = [PHONE, 768, 1100, DESKTOP]
SCOPE = "mcp:tools:list mcp:tools:call wallet:accounts:read"
SPACED_NAME = "Household Budget Planner and Monthly Spending Review Assistant for Busy Families"
WORD_NAME = "Superextraordinarily" * 5  # one 100-character word: the longest name registration takes
LONG_URI = "http://localhost:8765/callback/" + "a-rather-long-path-segment/" * 14 + "end"
TOKEN_NAME = "nightly export of every transaction to the household spreadsheet"
PERSONAL_TOKENS = "wallet-mcp-local-PersonalTokensTable"

# every word of the element's text nodes on one line (a word split across lines is returned)
BROKEN_WORDS = """(el) => {
  const broken = [];
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const m of node.data.matchAll(/\\S+/g)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
      if (tops.size > 1) broken.push(m[0]);
    }
  }
  return broken;
}"""
# what sticks out of the page's card (its content box) on the right; not the table headers a
# narrow screen hides (for screen readers only, clipped to a pixel)
STICKING_OUT = """() => {
  const main = document.querySelector("main");
  const style = getComputedStyle(main);
  const right = main.getBoundingClientRect().right - parseFloat(style.paddingRight)
    - parseFloat(style.borderRightWidth);
  const clipped = (el) => el.closest("thead")?.getBoundingClientRect().width <= 1;
  return [...main.querySelectorAll("*")]
    .filter((el) => el.getBoundingClientRect().right > right + 0.5 && !clipped(el))
    .map((el) => `${el.tagName} ${el.className} ${el.textContent.slice(0, 40)}`);
}"""
LINES = """(el) => {
  const range = document.createRange();
  range.selectNodeContents(el);
  return new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
}"""


@dataclass(frozen=True)
class Seeded:
    person: Person
    """An administrator with two connected apps and a personal access token."""
    disabled_person: Person
    spaced: Client
    """Long name with spaces, a long redirect URI; connected twice (two active sessions)."""
    word: Client
    """A name that is one 100-character word; connected once."""
    disabled: Client
    session_cookie: tuple[str, str]


@pytest.fixture(scope="module")
def seeded(stack) -> Seeded:
    person = create_person(stack, admin=True)
    disabled_person = create_person(stack)
    spaced = register(stack, name=SPACED_NAME, redirect_uris=(LONG_URI, "https://app.example.com/cb"))
    word = register(stack, name=WORD_NAME, redirect_uris=(LONG_URI,))
    disabled = register(stack, name="Switched off", redirect_uris=(LONG_URI,))
    browser = Browser(stack.base_url)
    try:
        spaced.tokens(browser, person, SCOPE)
        spaced.tokens(browser, person, SCOPE)
        word.tokens(browser, person, SCOPE)
        now = int(time.time())
        PersonalTokenStore(stack.client("dynamodb"), PERSONAL_TOKENS).create(
            user_id=person.user_id,
            name=TOKEN_NAME,
            scope=("wallet:accounts:read", "wallet:transactions:read"),
            now=now,
            expires_at=now + 86400,
        )
        browser.sign_in(person)
        done = browser.press(
            client_path(disabled.client_id), "/admin/client", client_id=disabled.client_id, action="disable"
        )
        assert "Client disabled." in done.text
        done = browser.press(
            user_path(disabled_person.username), "/admin/users/disable", username=disabled_person.username
        )
        assert "User disabled." in done.text
        (cookie,) = (c for c in browser.http.cookies.jar if c.name.endswith("wallet_session"))
        assert cookie.value
        return Seeded(person, disabled_person, spaced, word, disabled, (cookie.name, cookie.value))
    finally:
        browser.close()


def client_path(client_id: str) -> str:
    return "/admin/client?" + urlencode({"client_id": client_id})


def user_path(username: str) -> str:
    return "/admin/users?" + urlencode({"username": username})


def consent_url(client: Client) -> str:
    return client.authorization_url(SCOPE, extra={"prompt": "consent"})


def open_as(page: Page, stack, seeded: Seeded | None, width: int, url: str) -> None:
    """`url` at this width, signed in as the seeded administrator (`seeded`) or not at all."""
    page.set_viewport_size({"width": width, "height": 800})
    if seeded is not None:
        name, value = seeded.session_cookie
        page.context.add_cookies([{"name": name, "value": value, "url": stack.base_url}])
    page.goto(url if url.startswith("http") else f"{stack.base_url}{url}")


def each_width(page: Page) -> Iterator[int]:
    """The loaded page at every width in turn: the layout is CSS alone (no script), so resizing the
    viewport lays it out as loading it at that width would, for a quarter of the page loads."""
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 800})
        page.evaluate("() => window.scrollTo(0, 0)")
        yield width


def assert_no_horizontal_overflow(page: Page, width: int) -> None:
    scroll_width, inner_width = page.evaluate(
        "() => [document.documentElement.scrollWidth, window.innerWidth]"
    )
    assert inner_width == width
    assert scroll_width <= inner_width, f"{page.url}: {scroll_width}px wide on a {inner_width}px screen"
    assert page.evaluate(STICKING_OUT) == []
    # the stylesheet applied (its hash is in the CSP): without it nothing above means anything
    assert page.evaluate("() => getComputedStyle(document.querySelector('main')).display") == "block"
    assert page.evaluate("() => getComputedStyle(document.body).display") == "grid"


def assert_within_reach(page: Page, selector: str, width: int, *, at_least: int = 1) -> int:
    """Every match of `selector` visible once scrolled to, and inside the screen horizontally."""
    found = page.locator(selector)
    count = found.count()
    assert count >= at_least, f"{selector}: {count} on {page.url}"
    for i in range(count):
        element = found.nth(i)
        element.scroll_into_view_if_needed()
        assert element.is_visible(), f"{selector} #{i}"
        box = element.bounding_box()
        assert box is not None and box["width"] > 0, f"{selector} #{i}"
        assert box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, f"{selector} #{i}: {box}"
    return count


@dataclass(frozen=True)
class Screen:
    url: Callable[[Seeded], str]
    actions: tuple[tuple[str, int], ...]
    """(selector, how many at least)."""
    signed_in: bool = True


SCREENS: dict[str, Screen] = {
    "account": Screen(
        lambda s: "/account",
        (
            ("main table button:has-text('Revoke')", 3),  # two apps, one personal access token
            ("nav button:has-text('Sign out')", 1),
            ("nav a", 3),
        ),
    ),
    "admin-client": Screen(
        lambda s: client_path(s.spaced.client_id),
        (
            ("button:has-text('Mark verified')", 1),
            ("button:has-text('Disable')", 1),
            ("button:has-text('Delete')", 1),
            ("button:has-text('Save changes')", 1),
            ("input[name=scope]", 1),
            ("input[name=refresh_family_ttl]", 1),
            ("button:has-text('Save lifetimes')", 1),
        ),
    ),
    "admin-disabled-client": Screen(
        lambda s: client_path(s.disabled.client_id),
        (("button:has-text('Enable')", 1), ("button:has-text('Delete')", 1)),
    ),
    "admin-user": Screen(
        lambda s: user_path(s.person.username),
        (
            ("button:has-text('Disable')", 1),
            ("main table button:has-text('Revoke')", 3),
            ("button:has-text('Show user')", 1),
        ),
    ),
    "admin-disabled-user": Screen(
        lambda s: user_path(s.disabled_person.username), (("button:has-text('Enable')", 1),)
    ),
    "login": Screen(
        lambda s: s.spaced.authorization_url(SCOPE),
        (("button:has-text('Sign in')", 1), ("#username", 1), ("#password", 1)),
        signed_in=False,
    ),
    "consent": Screen(
        lambda s: consent_url(s.spaced),
        (
            ("button[value=approve]", 1),
            ("button[value=deny]", 1),
            ("a:has-text('Not you? Sign out')", 1),
        ),
    ),
}


@pytest.mark.parametrize("name", list(SCREENS))
def test_the_page_fits_the_screen_and_every_action_is_within_reach(stack, seeded, page, screenshot, name):
    screen = SCREENS[name]
    open_as(page, stack, seeded if screen.signed_in else None, PHONE, screen.url(seeded))
    assert page.locator("main h1").count() == 1, page.inner_text("body")[:500]
    for width in each_width(page):
        assert_no_horizontal_overflow(page, width)
        for selector, at_least in screen.actions:
            assert_within_reach(page, selector, width, at_least=at_least)
        page.evaluate("() => window.scrollTo(0, 0)")
        screenshot(f"{name}-{width}")


def test_the_client_list_fits_the_screen(stack, seeded, page, screenshot):
    """The list is paged (DynamoDB order): the page holding the seeded clients, whichever it is."""
    open_as(page, stack, seeded, PHONE, "/admin?limit=100")
    for _ in range(20):
        if page.locator("tr", has_text=seeded.word.client_id).count():
            break
        page.click("a[rel=next]")
    row = page.locator("tr", has_text=seeded.word.client_id)
    assert LONG_URI in row.inner_text().replace("\n", "")
    for width in each_width(page):
        assert_no_horizontal_overflow(page, width)
        assert_within_reach(page, "a:has-text('New confidential client')", width)
        for client in (seeded.spaced, seeded.word, seeded.disabled):
            if page.locator("tr", has_text=client.client_id).count():
                assert_within_reach(page, f"a[href='{client_path(client.client_id)}']", width)
        row.scroll_into_view_if_needed()
        screenshot(f"clients-{width}")


def test_a_long_application_name_wraps_between_words(stack, seeded, page, screenshot):
    open_as(page, stack, seeded, PHONE, consent_url(seeded.spaced))
    heading = page.locator("h1")
    application = page.locator("dd", has_text=SPACED_NAME)
    for width in each_width(page):
        assert_no_horizontal_overflow(page, width)
        for element in (heading, application):
            assert element.evaluate(BROKEN_WORDS) == [], width
            assert element.evaluate("(el) => el.scrollWidth <= el.clientWidth"), width
        if width == PHONE:
            assert heading.evaluate(LINES) >= 3  # wrapped, not cut off or squeezed
        screenshot(f"consent-{width}")


def test_a_single_huge_word_is_broken_to_fit(stack, seeded, page):
    """Live: the longest name registration takes (100 characters), one word."""
    open_as(page, stack, seeded, PHONE, consent_url(seeded.word))
    heading = page.locator("h1")
    for width in each_width(page):
        assert_no_horizontal_overflow(page, width)
        assert heading.evaluate("(el) => el.scrollWidth <= el.clientWidth"), width
        assert heading.evaluate(BROKEN_WORDS) == [WORD_NAME], width  # wider than the page at any width
        assert_within_reach(page, "button[value=approve]", width)


def test_a_200_character_word_on_the_consent_page(page, screenshot):
    """The page as the function renders it (no registration path takes a name this long)."""
    word = "Supercalifragilistic" * 10
    page.set_viewport_size({"width": PHONE, "height": 800})
    page.set_content(
        pages.consent_page(
            action="/oauth/authorize",
            hidden={"request_id": "r", "csrf_token": "c"},
            client=pages.ClientView(
                name=f"The {word} app", redirect_host="x" * 120 + ".example.com", client_id="c" * 150
            ),
            scopes=("mcp:tools:list", "wallet:accounts:read"),
            username="someone-with-a-rather-long-username@example.com",
            resource="http://localhost:3000/mcp",
        )
    )
    heading = page.locator("h1")
    for width in each_width(page):
        assert_no_horizontal_overflow(page, width)
        assert heading.evaluate("(el) => el.scrollWidth <= el.clientWidth"), width
        assert heading.evaluate(BROKEN_WORDS) == [word], width  # only the word too long for any line
        for selector in ("button[value=approve]", "button[value=deny]", "a:has-text('Not you? Sign out')"):
            assert_within_reach(page, selector, width)
        screenshot(f"consent-{width}")


def test_the_product_is_named_and_not_you_signs_out(stack, seeded, page, screenshot):
    """Its own session (it ends it): the login page, the consent page, then "Not you? Sign out"."""
    page.set_viewport_size({"width": PHONE, "height": 800})
    page.goto(seeded.spaced.authorization_url(SCOPE, extra={"prompt": "login"}))
    assert page.title() == "Sign in"
    assert page.locator(".brand").inner_text() == pages.PRODUCT_NAME == "Wallet"
    page.fill("#username", seeded.person.username)
    page.fill("#password", seeded.person.password)
    page.click("button[type=submit]")
    page.wait_for_selector("button[value=approve]")
    assert page.locator(".brand").inner_text() == "Wallet"
    assert f"Signed in as {seeded.person.username}" in page.inner_text("main")
    assert page.locator("form").count() == 1  # the consent form alone
    link = page.get_by_role("link", name="Not you? Sign out")
    assert link.get_attribute("href") == "/account#sign-out"
    link.click()
    page.wait_for_url(f"{stack.base_url}/account#sign-out")
    sign_out = page.locator("#sign-out button")
    assert sign_out.evaluate("(el) => getComputedStyle(el).outlineStyle") == "solid"  # the target
    screenshot("sign-out")
    sign_out.click()
    page.wait_for_url(f"{stack.base_url}/account")
    assert page.title() == "Sign in"
    assert page.locator("#password").is_visible()


def unit_after(page: Page, row_text: str) -> tuple[str, str]:
    """The active-sessions cell of a row: its text and the noun shown after it (CSS ::after)."""
    cell = page.locator("tr", has_text=row_text).locator("td[data-unit]")
    return cell.inner_text(), cell.evaluate("(el) => getComputedStyle(el, '::after').content")


def test_counts_have_their_plural_right(stack, seeded, page, screenshot):
    assert [f"{n} {plural(n, 'active session')}" for n in (0, 1, 2)] == [
        "0 active sessions",
        "1 active session",
        "2 active sessions",
    ]
    open_as(page, stack, seeded, PHONE, "/account")
    # stacked on a phone, the column header is hidden: the number says what it counts
    assert unit_after(page, SPACED_NAME) == ("2", '" active sessions"')
    assert unit_after(page, WORD_NAME) == ("1", '" active session"')
    screenshot("account")
    page.set_viewport_size({"width": DESKTOP, "height": 800})
    assert unit_after(page, WORD_NAME) == ("1", "none")  # under its "Active sessions" header
    assert page.locator("th", has_text="Active sessions").is_visible()
