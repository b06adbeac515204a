"""What the in-memory revocation snapshot refuses: listed token ids, and a client's tokens issued
at or before its cut-off."""

from __future__ import annotations

import pytest

from wallet_mcp.storage.revocations import Revoked
from wallet_mcp.tokens.access_tokens import AccessToken


def token(jti: str = "t1", client_id: str = "app", issued_at: int = 1_000) -> AccessToken:
    return AccessToken(
        subject="user-1",
        client_id=client_id,
        scopes=frozenset({"mcp:tools:call"}),
        audience="http://localhost:3000/mcp",
        issued_at=issued_at,
        expires_at=issued_at + 3600,
        jti=jti,
    )


@pytest.mark.parametrize(
    ("revoked", "candidate", "refused"),
    [
        (Revoked(), token(), False),
        (Revoked(jtis=frozenset({"t1"})), token(), True),
        (Revoked(jtis=frozenset({"t2"})), token(), False),
        (Revoked(clients={"app": 1_000}), token(issued_at=999), True),
        (Revoked(clients={"app": 1_000}), token(issued_at=1_000), True),  # the cut-off's own second
        (Revoked(clients={"app": 1_000}), token(issued_at=1_001), False),  # issued after it
        (Revoked(clients={"other": 5_000}), token(), False),  # another client's cut-off
    ],
)
def test_revoked_covers(revoked, candidate, refused):
    assert revoked.covers(candidate) is refused
