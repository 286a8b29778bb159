"""The process-wide cookie jar: Cloudflare's cookies only, as the Codex client keeps (codex-protocol.md §6.2)."""

from __future__ import annotations

import http.cookiejar
import urllib.request

import httpx

CLOUDFLARE_COOKIES = frozenset(
    {"__cf_bm", "__cflb", "__cfruid", "__cfseq", "__cfwaitingroom", "_cfuvid", "cf_clearance"}
)
"""The only cookies the Codex client keeps and sends (codex-protocol.md §6.2)."""


class CloudflareOnly(http.cookiejar.DefaultCookiePolicy):
    """A cookie policy that accepts Cloudflare's cookies only (codex-protocol.md §6.2).

    The standard rules (domain, path, expiry) still apply, so a cookie set by chatgpt.com goes back
    to chatgpt.com only. Any other cookie (a backend session cookie, say) is refused: in a pool it
    would follow every account.
    """

    def set_ok(self, cookie: http.cookiejar.Cookie, request: urllib.request.Request) -> bool:
        return cookie.name in CLOUDFLARE_COOKIES and super().set_ok(cookie, request)


def cloudflare_jar() -> http.cookiejar.CookieJar:
    """An empty jar with the :class:`CloudflareOnly` policy: the process-wide jar of the Codex client."""
    return http.cookiejar.CookieJar(policy=CloudflareOnly())


class CloudflareCookieJar:
    """Applies a :func:`cloudflare_jar` to requests sent without the client (:class:`UpstreamSender`)."""

    def __init__(self, jar: http.cookiejar.CookieJar | None = None) -> None:
        self.cookies = httpx.Cookies(jar if jar is not None else cloudflare_jar())

    def absorb(self, response: httpx.Response) -> None:
        """Keep the Cloudflare cookies ``response`` sets (its ``request`` must be set)."""
        if "set-cookie" in response.headers:
            self.cookies.extract_cookies(response)

    def apply(self, request: httpx.Request) -> None:
        """Add a ``Cookie`` header with the kept cookies that match ``request``'s URL, if any."""
        if len(self.cookies.jar):
            self.cookies.set_cookie_header(request)
