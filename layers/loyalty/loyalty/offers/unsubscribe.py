"""The unsubscribe link in every message: signed per member and channel; GET shows a confirmation page, POST (the
page's button, or a mail client's one-click unsubscribe) turns the member's consent for that channel off."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import datetime
from html import escape
from urllib.parse import urlencode

from loyalty.consent import CONSENT_FIELD, opt_out
from loyalty.observability import logger, metrics
from loyalty.ports.directory import Directory


def unsubscribe_token(secret: str, member_id: str, channel: str) -> str:
    return hmac.new(secret.encode(), f"{member_id}:{channel}".encode(), hashlib.sha256).hexdigest()[:32]


def unsubscribe_url(base_url: str, secret: str, member_id: str, channel: str) -> str:
    query = urlencode({"m": member_id, "c": channel, "t": unsubscribe_token(secret, member_id, channel)})
    return f"{base_url.rstrip('/')}/unsubscribe?{query}"


def valid_unsubscribe(secret: str, member_id: str, channel: str, token: str) -> bool:
    expected = unsubscribe_token(secret, member_id, channel).encode()
    return bool(secret) and hmac.compare_digest(expected, token.encode("utf-8", "surrogatepass"))  # any text


class Unsubscribe:
    def __init__(
        self, directory: Directory, secret: Callable[[], str], programme_name: str, clock: Callable[[], datetime]
    ) -> None:
        self.directory = directory
        self.secret = secret
        self.programme_name = programme_name
        self.clock = clock

    def confirm(self, query: Mapping[str, str], raw_query: str) -> tuple[int, str]:
        """The confirmation page (status, HTML): a button that posts the same signed link."""
        checked = self._checked(query)
        if checked is None:
            return self._invalid()
        action = f"/unsubscribe?{escape(raw_query)}"
        form = f'<form method="post" action="{action}"><button type="submit">Unsubscribe</button></form>'
        return 200, self._page("Unsubscribe", f"Stop receiving offers by {escape(checked[1])}? {form}")

    def unsubscribe(self, query: Mapping[str, str]) -> tuple[int, str]:
        """Opt the member out of the link's channel (status, HTML)."""
        checked = self._checked(query)
        if checked is None:
            return self._invalid()
        member_id, channel = checked
        opt_out(self.directory, member_id, channel, self.clock(), "unsubscribe link")
        logger.info("member unsubscribed", member_id=member_id, channel=channel)
        metrics.add_metric(name="Unsubscribed", unit="Count", value=1)
        return 200, self._page("You are unsubscribed", f"You will no longer receive offers by {escape(channel)}.")

    def _checked(self, query: Mapping[str, str]) -> tuple[str, str] | None:
        member_id, channel, token = query.get("m", ""), query.get("c", ""), query.get("t", "")
        if (
            channel not in CONSENT_FIELD
            or not member_id
            or not valid_unsubscribe(self.secret(), member_id, channel, token)
        ):
            return None
        return member_id, channel

    def _invalid(self) -> tuple[int, str]:
        return 400, self._page("This link is not valid", "Please use the link in the message you received.")

    def _page(self, title: str, text: str) -> str:
        return (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title></head>'
            f"<body><h1>{escape(title)}</h1><p>{text}</p><p>{escape(self.programme_name)}</p></body></html>"
        )
