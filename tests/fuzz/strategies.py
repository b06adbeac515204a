"""Hostile inputs shared by the endpoint fuzz tests: odd text, form bodies, headers, JSON values.

Every strategy mixes values the endpoints really use (so a generated request can get past the first
check and reach the code behind it) with garbage: control characters, NUL, bidirectional overrides,
lone surrogates (as percent-escapes in forms, as `\\ud800` escapes in JSON), huge values and
duplicated parameters.
"""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import quote, quote_plus

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ = settings(
    derandomize=True,  # CI runs the same examples every time
    database=None,  # nothing written outside the test tree
    deadline=None,  # moto's latency varies; a slow example is not a failure
    print_blob=False,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one moto stack per test, shared by its examples
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
        HealthCheck.filter_too_much,
    ],
)
"""The settings every fuzz test starts from; each sets its own `max_examples`."""

HUGE = 20_000
"""Larger than every body limit of the stack (16 KiB forms and JSON)."""


def chance(one_in: int) -> st.SearchStrategy[bool]:
    """True about one time in `one_in`. Not `integers(0, n - 1) == 0`: Hypothesis draws the bounds of
    a range far more often than the values between them (about 4 in 10 in a run of this suite)."""
    return st.integers(0, 10_000).map(lambda i: i % one_in == one_in // 2)


def mostly(
    usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any], one_in: int = 10
) -> st.SearchStrategy[Any]:
    """`usual`, except one time in `one_in` `odd`: each field of a request is broken now and then, so
    most requests get past the first check and some reach the code behind the last."""
    return chance(one_in).flatmap(lambda rare: odd if rare else usual)


ODD_STRINGS: tuple[str, ...] = (
    "",
    " ",
    "\t",
    "\x00",
    "a\x00b",
    "\x07\x1b[31m",
    "\r\n",
    "\u202e",
    "\u202egnp.exe",
    "\u2066admin\u2069",
    "\ufeff",
    "\u200b",
    "\ufffd",
    "\uffff",
    "e\u0301",
    "é",
    "💰",
    "\U0001d54f",  # mathematical double-struck X: outside the BMP
    "١٢",
    "İ",
    "ß",
    "null",
    "true",
    "[]",
    "{}",
    "0",
    "-0",
    "-1",
    "1e309",
    "NaN",
    "Infinity",
    "0x10",
    "99999999999999999999999",
    "%",
    "%%",
    "%zz",
    "%00",
    "+",
    "&",
    "=",
    "#",
    "?",
    "/",
    "\\",
    "..",
    "../../etc/passwd",
    '"',
    "'",
    "<script>alert(1)</script>",
    "' OR '1'='1",
    "${jndi:ldap://x}",
    "{{7*7}}",
    "javascript:alert(1)",
    "data:text/html,hi",
    "https://evil.example.com/",
    "http://localhost:abc/",
    "http://[::1/",
    "http://127.0.0.1:99999/",
    "a" * 257,
    "x" * 2049,
    "€" * 700,
)

_TEXT_CHARS = st.characters(blacklist_categories=("Cs",))
_HEADER_CHARS = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r\n")


def odd_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """Text that is strange, random or (one time in ten) huge; never a lone surrogate (see
    `SURROGATE_ESCAPES` and `LONE_SURROGATES`)."""
    strange_or_random = st.one_of(st.sampled_from(ODD_STRINGS), st.text(_TEXT_CHARS, max_size=max_size))
    return mostly(strange_or_random, huge_text)


huge_text = st.builds(
    lambda c, n: c * n, st.sampled_from(["a", "é", "\u202e", "\x00", "💰", "%"]), st.integers(1000, HUGE)
)


def header_text(max_size: int = 40) -> st.SearchStrategy[str]:
    """What API Gateway can deliver in a header value (no NUL, CR or LF)."""
    return st.one_of(
        st.sampled_from([s for s in ODD_STRINGS if not any(c in s for c in "\x00\r\n")]),
        st.text(_HEADER_CHARS, max_size=max_size),
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=max_size),
    )


SOURCE_ADDRESSES = st.integers(0, 2**20).map(lambda i: f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}")
"""Where requests come from: spread over many addresses (the per-address limits would otherwise answer
429 to nearly everything), with a few drawn often enough to reach those limits now and then."""

SURROGATE_ESCAPES = ("%ED%A0%80", "%ED%BF%BF", "%C0%80", "%FF", "%80", "%E2%82")
"""Percent-escapes that do not decode to UTF-8: surrogates, overlong NUL, stray bytes."""


# --- form bodies -------------------------------------------------------------------------------


Pairs = list[tuple[str, str, bool]]


@st.composite
def random_pairs(draw: st.DrawFn, values: dict[str, st.SearchStrategy[str]], max_pairs: int = 8) -> Pairs:
    """(name, value, encoded) triples: real parameter names with plausible or odd values, unknown
    names, the same name twice; `encoded=False` puts the value on the wire as it is."""
    names = st.one_of(st.sampled_from(sorted(values)), odd_text(12))
    pairs = []
    for _ in range(draw(st.integers(0, max_pairs))):
        name = draw(names)
        pairs.append((name, draw(value_for(name, values)), draw(st.booleans())))
    return pairs


def value_for(name: str, values: dict[str, st.SearchStrategy[str]]) -> st.SearchStrategy[str]:
    """Mostly a plausible value for that parameter, else odd text or (rarely) an undecodable escape."""
    plausible = values.get(name)
    odd = mostly(odd_text(), st.sampled_from(SURROGATE_ESCAPES))
    return odd if plausible is None else mostly(plausible, odd, one_in=3)


@st.composite
def mutated(draw: st.DrawFn, template: dict[str, str], values: dict[str, st.SearchStrategy[str]]) -> Pairs:
    """A valid request with a few changes: a value replaced, a parameter dropped, added or repeated."""
    pairs: Pairs = [(name, value, True) for name, value in template.items()]
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["replace", "replace", "drop", "add", "repeat", "raw"]))
        at = draw(st.integers(0, max(len(pairs) - 1, 0)))
        if op == "add" or not pairs:
            name = draw(st.one_of(st.sampled_from(sorted(values)), odd_text(12)))
            pairs.insert(at, (name, draw(value_for(name, values)), True))
        elif op == "replace":
            name = pairs[at][0]
            pairs[at] = (name, draw(value_for(name, values)), draw(st.booleans()))
        elif op == "drop":
            del pairs[at]
        elif op == "repeat":
            pairs.append(pairs[at])
        else:
            pairs[at] = (pairs[at][0], pairs[at][1], False)
    return pairs


def form_pairs(
    values: dict[str, st.SearchStrategy[str]], templates: tuple[dict[str, str], ...] = ()
) -> st.SearchStrategy[Pairs]:
    """Random parameters, or (more often, when there are templates) a valid request mutated."""
    if not templates:
        return random_pairs(values)
    valid_and_mutated = st.sampled_from(templates).flatmap(lambda t: mutated(t, values))
    return st.one_of(random_pairs(values), valid_and_mutated, valid_and_mutated)


def encode_form(pairs: Pairs) -> str:
    return "&".join(
        f"{quote_plus(name)}={quote_plus(value) if encoded else value}" for name, value, encoded in pairs
    )


def form_body(
    values: dict[str, st.SearchStrategy[str]], templates: tuple[dict[str, str], ...] = ()
) -> st.SearchStrategy[bytes]:
    """A form body: mostly well-formed and real-looking, sometimes raw bytes."""
    pairs = form_pairs(values, templates)
    well_formed = pairs.map(lambda p: encode_form(p).encode())
    malformed = st.one_of(
        pairs.map(lambda p: encode_form(p).encode() + b"&x=\xed\xa0\x80\xff"),
        st.binary(max_size=64),
        st.just(b"a=" + b"b" * HUGE),
    )
    return mostly(well_formed, malformed)


FORM = "application/x-www-form-urlencoded"
ODD_FORM_CONTENT_TYPES = (
    "application/x-www-form-urlencoded; charset=utf-8",
    "APPLICATION/X-WWW-FORM-URLENCODED",
    "application/x-www-form-urlencoded;charset=latin-1",
    "application/json",
    "text/plain",
    "multipart/form-data; boundary=x",
    "application/octet-stream",
    "",
    ";",
    "application/x-www-form-urlencoded\u202e",
    None,
)
FORM_CONTENT_TYPES: st.SearchStrategy[str | None] = mostly(
    st.just(FORM), st.sampled_from(ODD_FORM_CONTENT_TYPES)
)
"""Mostly the right one (so that the request gets further), sometimes another or none."""


# --- Authorization headers -----------------------------------------------------------------------


def basic(client_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def authorization_headers(
    client_ids: st.SearchStrategy[str], secrets: st.SearchStrategy[str]
) -> st.SearchStrategy[str | None]:
    """None, Basic with real or odd credentials (form-encoded or not), broken Basic, Bearer, binary."""
    return st.one_of(
        st.none(),
        st.builds(basic, client_ids, secrets),
        st.builds(lambda i, s: basic(quote_plus(i), quote_plus(s)), client_ids, secrets),
        st.builds(lambda i: "Basic " + base64.b64encode(i.encode()).decode(), client_ids),  # no colon
        st.builds(lambda t: "Basic " + t, header_text()),
        st.builds(lambda b: "Basic " + base64.b64encode(b).decode(), st.binary(max_size=48)),
        st.builds(lambda t: "Bearer " + t, header_text()),
        st.sampled_from(["Basic", "Basic ", "Basic ===", "basic Og==", "Bearer", "Digest x", "Basic Og=="]),
        header_text(),
    )


# --- JSON ------------------------------------------------------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    odd_text(),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(odd_text(12), children, max_size=4),
    max_leaves=12,
)


def nested(depth: int) -> str:
    """A JSON array nested `depth` deep (beyond Python's recursion limit past ~1000)."""
    return "[" * depth + "]" * depth


LONE_SURROGATES = ("\\ud800", "\\udfff", "\\ud83d", "\\udc00x")
"""JSON escapes of lone surrogates: valid JSON text, not valid Unicode once decoded."""


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def path_segment(text: str) -> str:
    return quote(text, safe="")


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values valid for the small JSON Schema subset pydantic writes for the tools' arguments."""
    if "anyOf" in schema:
        return st.one_of(*(from_schema(option) for option in schema["anyOf"]))
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "string":
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True)
        return st.text(_TEXT_CHARS, min_size=schema.get("minLength", 0), max_size=schema.get("maxLength", 40))
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        return st.floats(allow_nan=False, allow_infinity=False)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        return st.fixed_dictionaries(
            {name: from_schema(properties[name]) for name in sorted(required)},
            optional={name: from_schema(s) for name, s in properties.items() if name not in required},
        )
    return json_values
