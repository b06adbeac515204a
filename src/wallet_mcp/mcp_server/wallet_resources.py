"""The wallet as MCP resources.

    wallet://accounts             every account (JSON)         mcp:resources:read + wallet:accounts:read
    wallet://accounts/{id}        one account (a template)     the same
    wallet://transactions/recent  the 20 newest transactions   mcp:resources:read + wallet:transactions:read
    wallet://reports/{slug}       a report the user saved      mcp:resources:read + wallet:analytics:read
    ui://wallet-mcp/*.html        the MCP Apps views (HTML)    mcp:resources:read (mcp_server/apps.py)

`mcp:resources:write` governs the resources the user creates: saving and deleting reports
(`saveSpendingReport`, `deleteSpendingReport`). Listing shows the accounts and reports only when
the token may read them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

import mcp_types as types

from wallet_mcp.mcp_server import apps
from wallet_mcp.mcp_server.completions import CompletionRefused, bounded, ranked
from wallet_mcp.primitives import scopes
from wallet_mcp.tokens.access_tokens import AccessToken
from wallet_mcp.wallet.owners import OwnerResolver
from wallet_mcp.wallet.service import SavedReports, WalletError, WalletService
from wallet_mcp.wallet.store import WalletStore

_JSON: Final = "application/json"


class ResourceNotFound(Exception):
    pass


def scopes_for_uri(uri: str) -> tuple[str, ...]:
    """What reading `uri` needs (an unknown URI needs only the resource scope: it is then not found)."""
    if uri == "wallet://accounts" or uri.startswith("wallet://accounts/"):
        return (scopes.RESOURCES_READ, scopes.ACCOUNTS_READ)
    if uri == "wallet://transactions/recent":
        return (scopes.RESOURCES_READ, scopes.TRANSACTIONS_READ)
    if uri.startswith("wallet://reports/"):
        return (scopes.RESOURCES_READ, scopes.ANALYTICS_READ)
    # a view is the same HTML for everyone and holds no data (the host hands it the tool result,
    # read with the tool's own scopes): the resource scope alone
    return (scopes.RESOURCES_READ,)


@dataclass(frozen=True, slots=True)
class WalletResources:
    service: WalletService
    store: WalletStore
    owners: OwnerResolver

    def templates(self) -> list[types.ResourceTemplate]:
        return [
            types.ResourceTemplate(
                uri_template="wallet://accounts/{id}",
                name="account",
                title="Account",
                description="One account of the user's wallet, with its balance",
                mime_type=_JSON,
            ),
            types.ResourceTemplate(
                uri_template="wallet://reports/{slug}",
                name="report",
                title="Saved report",
                description="A spending report the user saved with saveSpendingReport",
                mime_type=_JSON,
            ),
        ]

    def complete(self, principal: AccessToken, uri: str, argument: str, typed: str) -> types.Completion:
        """Suggestions for a template's variable (MCP server/utilities/completion, `ref/resource`):
        the ids of the user's accounts, or the slugs of their saved reports, whose id starts with
        what was typed or whose name matches it. Needs the scopes of reading the template
        (`scopes_for_uri`), checked by the HTTP layer."""
        owner = self.owners.owner_of(principal)
        if uri == "wallet://accounts/{id}" and argument == "id":
            named = [(a.account_id, a.name) for a in self.service.accounts(owner)]
        elif uri == "wallet://reports/{slug}" and argument == "slug":
            named = [(r.slug, r.name) for r in SavedReports(self.store).reports(owner)]
        elif uri in {t.uri_template for t in self.templates()}:
            raise CompletionRefused(f"the template {uri} has no variable {argument[:64]!r}")
        else:
            raise CompletionRefused(f"no resource template {uri[:200]!r}")
        found = [key for key, _ in named if key.startswith(typed.strip())]
        for name in ranked((name for _, name in named), typed).values:
            found += [key for key, n in named if n == name and key not in found]
        return bounded(found)

    def list(self, principal: AccessToken) -> list[types.Resource]:
        resources = [
            types.Resource(
                uri="wallet://accounts",
                name="accounts",
                title="Accounts",
                description="Every account in the user's wallet, with balances",
                mime_type=_JSON,
            ),
            types.Resource(
                uri="wallet://transactions/recent",
                name="recent-transactions",
                title="Recent transactions",
                description="The 20 most recent transactions, newest first",
                mime_type=_JSON,
            ),
            *(
                types.Resource(
                    uri=view.uri,
                    name=view.name,
                    title=view.title,
                    description=view.description,
                    mime_type=apps.APP_MIME_TYPE,
                    _meta=apps.resource_meta(),
                )
                for view in apps.VIEWS
            ),
        ]
        owner = self.owners.owner_of(principal)
        if scopes.ACCOUNTS_READ in principal.scopes:
            resources.extend(
                types.Resource(
                    uri=f"wallet://accounts/{a.account_id}",
                    name=f"account-{a.account_id}",
                    title=a.name,
                    description=f"{a.account_type} account in {a.currency}",
                    mime_type=_JSON,
                )
                for a in self.service.accounts(owner)
            )
        if scopes.ANALYTICS_READ in principal.scopes:
            resources.extend(
                types.Resource(
                    uri=f"wallet://reports/{r.slug}", name=f"report-{r.slug}", title=r.name, mime_type=_JSON
                )
                for r in SavedReports(self.store).reports(owner)
            )
        return resources

    def read(self, principal: AccessToken, uri: str) -> str:
        """The resource's JSON text; ResourceNotFound for a URI that names nothing of this user's."""
        owner = self.owners.owner_of(principal)
        body: Any
        try:
            if uri == "wallet://accounts":
                body = {"accounts": [a.to_json() for a in self.service.accounts(owner)]}
            elif uri.startswith("wallet://accounts/"):
                body = self.service.account(owner, uri.removeprefix("wallet://accounts/")).to_json()
            elif uri == "wallet://transactions/recent":
                page = self.service.recent_transactions(owner, limit=20)
                body = {"transactions": [t.to_json() for t in page.transactions]}
            elif uri.startswith("wallet://reports/"):
                saved, content = SavedReports(self.store).report(owner, uri.removeprefix("wallet://reports/"))
                body = {"name": saved.name, **content}
            else:
                raise ResourceNotFound(uri)
        except WalletError as exc:
            if exc.status == 404:
                raise ResourceNotFound(uri) from exc
            raise
        return json.dumps(body, ensure_ascii=False, indent=2)
