"""The notifier's shell: looks at the pool every few seconds and posts what :mod:`codexgw.pool.notices`
decides, to an ntfy topic or a JSON webhook (``[notify]`` in ``config.toml``).

:meth:`Notifier.run` is a task of the serve nursery. Each round builds the ``/status`` document
(:func:`codexgw.status.status_from_pool`: no token in it), feeds it with ``now`` to
:class:`~codexgw.pool.notices.Notices`, and posts each notice with the shared httpx client:

* **ntfy** (``format = "ntfy"``, or ``auto`` with a host name starting ``ntfy``): the message as
  the plain-text body, with ``Title``, ``Priority`` and ``Tags`` headers (ntfy's publish API);
* **JSON** (any other webhook): :meth:`Notice.as_json` as the body.

A failure to notify (refused, timed out, a non-2xx answer) is logged as one warning naming the
URL's host only (an ntfy topic name works as a password) and never stops the server or the loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import trio

from codexgw.client import calls
from codexgw.config import NotifySettings
from codexgw.errors import UpstreamConnectionError
from codexgw.pool.notices import Notice, Notices, Thresholds
from codexgw.status import status_from_pool
from codexgw.upstream.accounts import AccountState

__all__ = ["POST_TIMEOUT_S", "Notifier", "wire_format"]

log = logging.getLogger("codexgw.notify")

POST_TIMEOUT_S = 10.0
"""Timeout of one notification POST, seconds."""


def wire_format(settings: NotifySettings) -> str:
    """``ntfy`` or ``json``: ``auto`` means ntfy when the URL's host name starts with ``ntfy``."""
    if settings.format != "auto":
        return settings.format
    host = urlsplit(settings.url).hostname or ""
    return "ntfy" if host.startswith("ntfy") else "json"


class Notifier:
    """Posts the pool's notices (see the module docstring).

    Args:
        settings: where to post, thresholds and interval.
        accounts: the running server's accounts and pool.
        http: the shared httpx client.
        clock: returns epoch seconds; injected for tests.
    """

    def __init__(
        self,
        settings: NotifySettings,
        accounts: AccountState,
        http: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.accounts = accounts
        self.http = http
        self.clock = clock
        self.core = Notices(
            Thresholds(
                low_percent=settings.low_percent,
                critical_percent=settings.critical_percent,
                interval_s=settings.interval_s,
            )
        )
        self.format = wire_format(settings)
        self.host = urlsplit(settings.url).hostname or "the notification URL"
        self.sent = 0
        self.failed = 0

    def check(self) -> list[Notice]:
        """One round of decisions: the notices the pool's state calls for now."""
        now = self.clock()
        doc = status_from_pool(self.accounts.pool.describe(now), self.accounts.accounts.values(), now=now)
        return self.core.observe(doc, now)

    async def post(self, notice: Notice) -> bool:
        """Send one notice; log (never raise) a failure. Returns True when the receiver took it."""
        if self.format == "ntfy":
            headers = {"Title": notice.title, "Priority": notice.priority, "Tags": notice.tag}
            request = {"content": notice.message.encode("utf-8"), "headers": headers}
        else:
            request = {"json": notice.as_json()}
        try:  # errors name the host only: an ntfy topic name works as a password
            response = await calls.request(
                self.http, "POST", self.settings.url, peer=self.host, timeout=POST_TIMEOUT_S, **request
            )
        except UpstreamConnectionError as exc:
            problem = exc.message
        else:
            if response.is_success:
                self.sent += 1
                log.info("notified %s: %s", self.host, notice.title)
                return True
            problem = f"{self.host} answered HTTP {response.status_code}"
        self.failed += 1
        log.warning("could not send the notification %r: %s", notice.title, problem)
        return False

    async def run(self) -> None:
        """Check every ``settings.poll_s`` and post what comes out, forever (a serve nursery task)."""
        while True:
            for notice in self.check():
                await self.post(notice)
            await trio.sleep(self.settings.poll_s)
