"""The dashboard's routes: ``/`` (redirect), the pages under ``/dashboard``, and their static files.

The pages hold no account, key or usage data: the browser reads that from ``/api`` with the session
cookie (which the API checks), so serving a page needs no login and a gateway started with
``--api-key`` still shows its login page (the key guards ``/v1``). A page whose API calls answer
401 sends the browser to ``/dashboard/login``.

Static files are read once from the package (``importlib.resources``: a plain checkout, the wheel,
or the zipapp) and served from memory with a content hash as ``ETag``.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from importlib import resources

from quart import Blueprint, Response, redirect, render_template, request

from codexgw import __version__

bp = Blueprint("dashboard", __name__, template_folder="templates")

CSP = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
"""The pages' Content-Security-Policy: this origin only, no inline script or style, no framing."""

SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}
"""Sent with every dashboard page and static file."""


@dataclass(frozen=True)
class Page:
    """One page: its path under ``/dashboard``, template, title, and whether only admins see it
    in the navigation (the API enforces the rule; the menu only follows it)."""

    slug: str
    template: str
    title: str
    nav: bool = True
    admin: bool = False


PAGES = (
    Page("", "pool.html", "Pool"),
    Page("add", "add.html", "Add account"),
    Page("keys", "keys.html", "API keys"),
    Page("usage", "usage.html", "Usage"),
    Page("log", "log.html", "Live log"),
    Page("settings", "settings.html", "Settings", admin=True),
    Page("users", "users.html", "Users", admin=True),
    Page("login", "login.html", "Log in", nav=False),
    Page("setup", "setup.html", "Set up", nav=False),
)
"""Every page, in menu order."""

_BY_SLUG = {page.slug: page for page in PAGES}


@dataclass(frozen=True)
class StaticFile:
    """A static file held in memory: its bytes, MIME type and strong ``ETag``."""

    body: bytes
    content_type: str
    etag: str


def load_static() -> dict[str, StaticFile]:
    """Every file under ``static/``, by its path relative to it (``js/app.js``)."""
    files: dict[str, StaticFile] = {}

    def walk(node: resources.abc.Traversable, prefix: str) -> None:
        for child in node.iterdir():
            name = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, name + "/")
            elif not child.name.startswith("."):
                body = child.read_bytes()
                kind = mimetypes.guess_type(child.name)[0] or "application/octet-stream"
                if kind.startswith("text/") or kind.endswith("javascript"):
                    kind += "; charset=utf-8"
                files[name] = StaticFile(body, kind, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')

    walk(resources.files(__package__) / "static", "")
    return files


_STATIC: dict[str, StaticFile] = {}


def static_files() -> dict[str, StaticFile]:
    """The static files, loaded on first use."""
    if not _STATIC:
        _STATIC.update(load_static())
    return _STATIC


@bp.after_request
async def security_headers(response: Response) -> Response:
    """CSP and friends on every dashboard answer; pages are never cached (they follow the login)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if (response.content_type or "").startswith("text/html"):
        response.headers["cache-control"] = "no-store"
    return response


@bp.get("/")
async def root() -> Response:
    """``/`` → ``/dashboard``."""
    return redirect("/dashboard", 302)


@bp.get("/dashboard")
@bp.get("/dashboard/")
@bp.get("/dashboard/<slug>")
async def page(slug: str = "") -> Response | tuple[str, int]:
    """One page of :data:`PAGES`, rendered (404 for an unknown name)."""
    found = _BY_SLUG.get(slug)
    if found is None:
        return await render_template("notfound.html", **_context(None)), 404
    return Response(
        await render_template(found.template, **_context(found)), content_type="text/html; charset=utf-8"
    )


@bp.get("/dashboard/static/<path:name>")
async def static(name: str) -> Response:
    """A file of ``static/`` (404 otherwise), revalidated by ``ETag``."""
    file = static_files().get(name)
    if file is None:
        return Response("not found\n", status=404, content_type="text/plain")
    headers = {"etag": file.etag, "cache-control": "no-cache"}
    if file.etag in request.headers.get("if-none-match", ""):
        return Response(b"", status=304, headers=headers)
    return Response(file.body, content_type=file.content_type, headers=headers)


def _context(current: Page | None) -> dict[str, object]:
    return {
        "pages": [p for p in PAGES if p.nav],
        "current": current,
        "version": __version__,
        "asset": _asset_url,
    }


def _asset_url(name: str) -> str:
    """``/dashboard/static/NAME?v=HASH``: a changed file gets a new URL (the query busts caches)."""
    file = static_files().get(name)
    if file is None:
        raise KeyError(f"no static file {name!r}")
    return f"/dashboard/static/{name}?v={file.etag.strip(chr(34))[:10]}"
