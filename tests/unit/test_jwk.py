import base64

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicNumbers

from wallet_mcp.tokens.jwk import thumbprint, to_jwk

# RFC 7638 §3.1, the worked example
N = (
    "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
    "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY"
    "368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0f"
    "M4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
)


def _key():
    n = int.from_bytes(base64.urlsafe_b64decode(N + "=" * (-len(N) % 4)), "big")
    return RSAPublicNumbers(65537, n).public_key()


def test_thumbprint_matches_rfc7638_example():
    assert thumbprint(_key()) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_jwk_carries_kid_use_and_alg():
    jwk = to_jwk(_key())
    assert jwk == {
        "kty": "RSA",
        "use": "sig",
        "alg": "RS256",
        "kid": "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
        "n": N,
        "e": "AQAB",
    }
