"""`/admin/enterprise`: the trusted enterprise IdPs (docs/enterprise.md), the grants each made with
ID-JAGs, and cutting one off at once (`Revoker.end_idp`: every token issued on its grants stops
within a revocation poll, new ID-JAGs are refused, its grants leave the people's /account) or
restoring it (`Revoker.restore_idp`: new grants are honoured again; nothing from before returns);
and linking an IdP's subject to a wallet user by hand, for an IdP whose subjects map by `link`
(the same identity link an upstream sign-in through that issuer writes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

from wallet_mcp.config.enterprise import TrustedIdp
from wallet_mcp.oauth.rules.revocation import Actor, Revoker
from wallet_mcp.storage.audit import AuditEvent, AuditLog
from wallet_mcp.storage.consents import Consent, ConsentStore
from wallet_mcp.storage.identity_links import IdentityLink, IdentityLinkStore
from wallet_mcp.storage.revocations import RevocationList
from wallet_mcp.storage.users import UserStore
from wallet_mcp.web.pages import document, hidden_inputs

MAX_LISTED: Final = 200
"""Grants listed per IdP (each costs a user lookup for its login name)."""


@dataclass(frozen=True, slots=True)
class ListedGrant:
    consent: Consent
    username: str | None


@dataclass(frozen=True, slots=True)
class IdpOverview:
    idp: TrustedIdp
    cut_off: bool
    grants: tuple[ListedGrant, ...]
    more: bool


class EnterpriseAdmin:
    def __init__(
        self,
        trusted: Sequence[TrustedIdp],
        consents: ConsentStore,
        users: UserStore,
        revocations: RevocationList,
        revoker: Revoker,
        clock: Callable[[], int],
        links: IdentityLinkStore | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self._links = links
        self._audit = audit
        self._trusted = {idp.id: idp for idp in trusted}
        self._consents = consents
        self._users = users
        self._revocations = revocations
        self._revoker = revoker
        self._clock = clock

    def known(self, idp_id: str) -> bool:
        return idp_id in self._trusted

    def overview(self) -> list[IdpOverview]:
        cut = self._revocations.idp_cutoffs(self._trusted, now=self._clock())
        found = []
        for idp in self._trusted.values():
            grants = self._consents.granted_by_idp(idp.id)
            listed = []
            for consent in grants[:MAX_LISTED]:
                user = self._users.get_by_id(consent.user_id)
                listed.append(ListedGrant(consent, user.username if user else None))
            state = cut.get(idp.id)
            found.append(
                IdpOverview(
                    idp, state is not None and state.disabled, tuple(listed), len(grants) > MAX_LISTED
                )
            )
        return found

    def cut_off(self, idp_id: str, actor: Actor) -> int:
        """Every grant of the IdP ends; how many were recorded."""
        return self._revoker.end_idp(idp_id, actor).consents

    def restore(self, idp_id: str, actor: Actor) -> None:
        self._revoker.restore_idp(idp_id, actor)

    def link(self, idp_id: str, subject: str, username: str, actor: Actor) -> str | None:
        """Link the IdP's `subject` to the user; None when done, else why not (for the admin)."""
        assert self._links is not None and self._audit is not None, "linking needs the users table"
        idp = self._trusted[idp_id]
        subject = subject.strip()
        if not 1 <= len(subject) <= 512 or not subject.isprintable():
            return "Give the subject (the sub claim) the identity provider asserts."
        user = self._users.get(username)
        if user is None:
            return "No such user."
        link = IdentityLink(idp.issuer, subject, idp.id, user.user_id, user.username, self._clock())
        if not self._links.link(link):
            return "That subject is linked to a user already."
        self._audit.record(
            AuditEvent(
                "upstream_identity_linked",
                subject=user.user_id,
                source=actor.source,
                details={"provider": idp.id, "issuer": idp.issuer, "how": "admin", "by": actor.user_id},
            )
        )
        return None


def enterprise_page(nav: str, overview: Sequence[IdpOverview], csrf_token: str, notice: str | None) -> str:
    sections = "".join(_section(o, csrf_token) for o in overview) or (
        '<p class="muted">No enterprise identity provider is trusted (the TrustedEnterpriseIdps '
        "parameter, docs/enterprise.md).</p>"
    )
    alert = f'<p class="notice" role="status">{escape(notice)}</p>' if notice else ""
    body = (
        f"{nav}<h1>Enterprise identity providers</h1>{alert}"
        '<p class="lead">Companies whose identity provider grants its people access to this wallet '
        "server through their MCP applications (ID-JAG, no consent page). Cutting one off ends every "
        "grant it made at once and refuses new ones until it is restored.</p>"
        f"{sections}"
    )
    return document("Enterprise identity providers", body, wide=True)


def _section(o: IdpOverview, csrf_token: str) -> str:
    idp = o.idp
    status = '<span class="tag">cut off</span>' if o.cut_off else '<span class="tag">trusted</span>'
    action, label, style = (
        ("restore", "Restore", "") if o.cut_off else ("cut_off", "Cut off", ' class="danger"')
    )
    button = (
        '<form method="post" action="/admin/enterprise">'
        f"{hidden_inputs({'csrf_token': csrf_token, 'idp': idp.id, 'action': action})}"
        f'<button{style} type="submit" aria-label="{label} {escape(idp.name)}">{label}</button></form>'
    )
    if o.grants:
        rows = "".join(
            "<tr>"
            f'<td class="name">{escape(g.username or g.consent.user_id)}</td>'
            f"<td><code>{escape(g.consent.client_id)}</code></td>"
            f'<td data-label="Scopes">{escape(" ".join(g.consent.enterprise_scope))}</td>'
            f'<td data-label="Last granted">{_when(g.consent.updated_at)}</td>'
            "</tr>"
            for g in o.grants
        )
        more = '<p class="muted">More grants than listed.</p>' if o.more else ""
        listing = (
            "<table><thead><tr><th>User</th><th>Client</th><th>Scopes</th><th>Last granted</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>{more}"
        )
    else:
        listing = '<p class="muted">No grants recorded.</p>'
    link = (
        '<form method="post" action="/admin/enterprise">'
        f"{hidden_inputs({'csrf_token': csrf_token, 'idp': idp.id, 'action': 'link'})}"
        f'<label for="subject-{idp.id}">Subject (sub)</label>'
        f'<input id="subject-{idp.id}" name="subject" type="text" required>'
        f'<label for="username-{idp.id}">Wallet user</label>'
        f'<input id="username-{idp.id}" name="username" type="text" required>'
        '<div class="actions"><button type="submit">Link</button></div></form>'
        if idp.subject == "link"
        else ""
    )
    return (
        f"<section><h2>{escape(idp.name)} {status}</h2>"
        f"<p><code>{escape(idp.issuer)}</code> · subjects by <code>{escape(idp.subject)}</code> · "
        f"clients {', '.join(f'<code>{escape(c)}</code>' for c in sorted(idp.client_ids))} · "
        f"may grant {escape(' '.join(idp.scopes))}</p>"
        f"{button}{listing}{link}</section>"
    )


def _when(epoch: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")
