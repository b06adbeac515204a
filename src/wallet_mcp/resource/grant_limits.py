"""The limits of the caller's grant, for a request that reaches the wallet (`/mcp` and `/api`).

After the bearer pipeline (`authenticate.py`) and only for requests that touch the wallet (so the
MCP catalog calls stay free of AWS calls): the consent record's limits (`wallet.grant_limits`),
and the grant's chosen duration through the grant rule (`oauth.rules.grants.lapsed`) — over, the
token is refused as any dead grant is: 401 `invalid_token` saying why.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from wallet_mcp.oauth.rules.grants import lapsed
from wallet_mcp.primitives import bearer
from wallet_mcp.resource.authenticate import BearerChallenge, Caller
from wallet_mcp.wallet.grant_limits import GrantView, GrantViews


class GrantLimitsCheck:
    def __init__(
        self, views: GrantViews, *, resource_metadata_url: str, clock: Callable[[], float] = time.time
    ) -> None:
        self._views = views
        self._resource_metadata_url = resource_metadata_url
        self._clock = clock

    def view(self, caller: Caller, scope_hint: Iterable[str] = ()) -> GrantView | None:
        principal = caller.principal
        view = self._views.view_of(
            owner=caller.owner, subject=principal.subject, client_id=principal.client_id
        )
        if view is None:
            return None
        reason = lapsed(view.limits.expires_at, int(self._clock()))
        if reason is not None:
            raise BearerChallenge(
                bearer.invalid_token(self._resource_metadata_url, reason, tuple(scope_hint)),
                client_id=principal.client_id,
            )
        return view
