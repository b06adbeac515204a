"""PKCE (RFC 7636): the verifier and challenge grammars match whole strings, nothing more."""

from __future__ import annotations

import pytest

from wallet_mcp.primitives import pkce

VERIFIER = "v" * 43
CHALLENGE = pkce.s256(VERIFIER)


@pytest.mark.parametrize(
    "verifier",
    ["a" * 43, "A" * 128, "0123456789-._~" * 4, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"],
)
def test_verifiers_in_the_rfc7636_grammar_are_valid(verifier: str) -> None:
    assert pkce.is_valid_verifier(verifier)


@pytest.mark.parametrize(
    "verifier",
    [
        "",
        "a" * 42,
        "a" * 129,
        "a" * 43 + "\n",
        "a" * 43 + "\r\n",
        "\n" + "a" * 43,
        "a" * 43 + " ",
        "a" * 43 + "\t",
        "a" * 20 + "+" + "a" * 22,
        "a" * 20 + "/" + "a" * 22,
        "a" * 20 + "=" + "a" * 22,
        "a" * 42 + "é",
        "a" * 42 + "\u0660",  # a non-ASCII digit
    ],
)
def test_verifiers_outside_the_grammar_are_invalid(verifier: str) -> None:
    assert not pkce.is_valid_verifier(verifier)


@pytest.mark.parametrize(
    "challenge",
    [
        CHALLENGE + "\n",
        CHALLENGE + "\r\n",
        CHALLENGE + "=",
        CHALLENGE[:-1],
        CHALLENGE + "A",
        " " + CHALLENGE,
        CHALLENGE[:-1] + "+",
        CHALLENGE[:-1] + "é",
    ],
)
def test_challenges_outside_the_grammar_are_invalid(challenge: str) -> None:
    assert not pkce.is_valid_challenge(challenge)


def test_an_s256_challenge_is_valid() -> None:
    assert pkce.is_valid_challenge(CHALLENGE)


def test_the_rfc7636_appendix_b_example() -> None:
    assert (
        pkce.s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
        == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )


@pytest.mark.parametrize("suffix", ["\n", "\r\n", " ", "\t"])
def test_a_verifier_outside_the_grammar_fails_even_when_its_hash_is_the_challenge(suffix: str) -> None:
    verifier = VERIFIER + suffix
    assert not pkce.verify(verifier, pkce.s256(verifier))


def test_the_matching_verifier_verifies() -> None:
    assert pkce.verify(VERIFIER, CHALLENGE)
    assert not pkce.verify("w" * 43, CHALLENGE)
