"""A stand-in for the admin API (teams contract §4), in memory, until issue 12's lands on main.

Just enough to drive every dashboard page in a browser: one admin ``admin``/``correct horse``,
CSRF on state changes, three accounts with quota, a device login the test approves, keys (the
secret once), usage, users, settings and ``/api/events``.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import trio
from quart import Blueprint, Response, request

from codexgw.api.common import json_response

NOW = time.time()


def window(used: float, minutes: int, reset_in_s: float) -> dict[str, Any]:
    return {"used_percent": used, "window_minutes": minutes, "resets_at": NOW + reset_in_s}


def account(name: str, used: float, weekly: float, **kw: Any) -> dict[str, Any]:
    row = {
        "name": name, "email": f"{name}@example.com", "plan_type": "pro", "owner": None, "enabled": True,
        "weight": 1, "status": "ok", "status_reason": None, "pinned": False, "usable": True, "cooldown": None,
        "quota": {"primary": window(used, 300, 3600 * 2.5), "secondary": window(weekly, 10080, 86400 * 3),
                  "headroom_percent": 100 - max(used, weekly), "observed_at": NOW},
        "requests": 12, "errors": 0, "last_error": None, "last_used_at": NOW - 95,
        "access_expires_at": NOW + 3000, "last_refresh": NOW - 600,
    }  # fmt: skip
    row.update(kw)
    return row


class Stub:
    """The state and the blueprint."""

    def __init__(self) -> None:
        self.csrf = secrets.token_urlsafe(16)
        self.sessions: set[str] = set()
        self.accounts = {
            a["name"]: a
            for a in [
                account("alice", 23, 41),
                account("bob", 67, 88),
                account(
                    "carol",
                    100,
                    52,
                    status="cooling",
                    status_reason="usage_limit_reached",
                    usable=False,
                    cooldown={"until": NOW + 754, "in_s": 754, "reason": "usage_limit_reached"},
                ),
            ]
        }
        self.pool = {"strategy": "round-robin", "pinned": None}
        self.keys: dict[str, dict[str, Any]] = {}
        self.users = {"admin": {"name": "admin", "role": "admin", "created_at": NOW - 86400}}
        self.settings = {"reasoning_mode": "content", "probe_interval_s": 300, "default_cooldown_s": 60}
        self.logins: dict[str, dict[str, Any]] = {}
        self.listeners: list[trio.MemorySendChannel[tuple[str, Any]]] = []
        self.bp = self._blueprint()

    async def emit(self, event: str, data: Any) -> None:
        for send in list(self.listeners):
            try:
                send.send_nowait((event, data))
            except (trio.WouldBlock, trio.BrokenResourceError):
                self.listeners.remove(send)

    async def approve(self, login_id: str, name: str = "dave") -> None:
        self.accounts[name] = account(name, 0, 0)
        self.logins[login_id].update(status="approved", account=name)
        await self.emit("account", self.accounts[name])
        await self.emit("login", self.logins[login_id])

    def pool_doc(self) -> dict[str, Any]:
        usable = [a for a in self.accounts.values() if a["usable"] and a["enabled"]]
        return {
            **self.pool,
            "strategies": [
                {"name": "round-robin", "help": "Each request goes to the next account in turn."},
                {"name": "least-used", "help": "The account with the fewest requests in flight."},
                {"name": "quota", "help": "The account with the most quota left."},
            ],
            "accounts": len(self.accounts),
            "usable": len(usable),
            "headroom": {"accounts": len(self.accounts), "percent": 44.0, "primary_percent": 36.7,
                         "secondary_percent": 39.7},
        }  # fmt: skip

    def _blueprint(self) -> Blueprint:
        bp = Blueprint("stub_api", __name__)
        stub = self

        def err(status: int, code: str, message: str) -> Response:
            return json_response({"error": {"message": message, "type": "invalid_request_error",
                                            "param": None, "code": code}}, status=status)  # fmt: skip

        @bp.before_request
        async def auth() -> Response | None:
            if request.path in ("/api/session", "/api/setup") and request.method == "POST":
                return None
            if request.cookies.get("codexgw_session") not in stub.sessions:
                return err(401, "unauthenticated", "log in first")
            if request.method not in ("GET", "HEAD") and request.headers.get("x-csrf-token") != stub.csrf:
                return err(403, "csrf_failed", "missing or wrong CSRF token")
            return None

        def session_answer() -> Response:
            return json_response({"user": {"name": "admin", "role": "admin"}, "csrf_token": stub.csrf,
                                  "expires_at": NOW + 86400})  # fmt: skip

        @bp.post("/api/session")
        async def login() -> Response:
            body = await request.get_json()
            if (body or {}).get("password") != "correct horse":
                return err(401, "unauthenticated", "wrong user name or password")
            sid = secrets.token_urlsafe(16)
            stub.sessions.add(sid)
            resp = session_answer()
            resp.set_cookie("codexgw_session", sid, httponly=True, samesite="Strict", path="/")
            return resp

        @bp.get("/api/session")
        async def get_session() -> Response:
            return session_answer()

        @bp.delete("/api/session")
        async def logout() -> Response:
            stub.sessions.discard(request.cookies.get("codexgw_session", ""))
            return Response(b"", status=204)

        @bp.get("/api/accounts")
        async def accounts() -> Response:
            return json_response({"data": list(stub.accounts.values())})

        @bp.get("/api/accounts/<name>")
        async def one_account(name: str) -> Response:
            return json_response(stub.accounts[name])

        @bp.patch("/api/accounts/<name>")
        async def patch_account(name: str) -> Response:
            row = stub.accounts[name]
            row.update(await request.get_json())
            row["status"] = "ok" if row["enabled"] else "disabled"
            await stub.emit("account", row)
            return json_response(row)

        @bp.post("/api/accounts/<name>/<action>")
        async def act(name: str, action: str) -> Response:
            return json_response(stub.accounts[name])

        @bp.get("/api/pool")
        async def pool() -> Response:
            return json_response(stub.pool_doc())

        @bp.patch("/api/pool")
        async def patch_pool() -> Response:
            stub.pool.update(await request.get_json())
            for a in stub.accounts.values():
                a["pinned"] = a["name"] == stub.pool["pinned"]
            await stub.emit("pool", stub.pool_doc())
            return json_response(stub.pool_doc())

        @bp.post("/api/logins/device")
        async def device() -> Response:
            lid = secrets.token_hex(4)
            stub.logins[lid] = {"id": lid, "kind": "device", "user_code": "ABCD-1234",
                                "verification_uri": "https://auth.openai.com/codex/device", "expires_in": 900,
                                "expires_at": NOW + 900, "status": "pending"}  # fmt: skip
            return json_response(stub.logins[lid])

        @bp.get("/api/logins/<lid>")
        async def get_login(lid: str) -> Response:
            return json_response(stub.logins[lid])

        @bp.get("/api/keys")
        async def keys() -> Response:
            return json_response({"data": list(stub.keys.values())})

        @bp.post("/api/keys")
        async def create_key() -> Response:
            body = await request.get_json()
            secret = "cgw-" + secrets.token_urlsafe(32)
            key = {"name": body["name"], "prefix": secret[:12], "owner": None, "admin": False,
                   "accounts": body.get("accounts"), "models": body.get("models"), "rpm": body.get("rpm"),
                   "tpm": body.get("tpm"), "tokens_per_day": body.get("tokens_per_day"),
                   "max_streams": None, "expires_at": None, "reasoning_mode": None, "max_effort": None,
                   "created_at": NOW, "revoked_at": None, "last_used_at": None, "status": "active"}  # fmt: skip
            stub.keys[key["name"]] = key
            await stub.emit("key", key)
            return json_response({**key, "secret": secret})

        @bp.get("/api/keys/<name>/usage")
        async def key_usage(name: str) -> Response:
            return await usage()

        @bp.get("/api/usage")
        async def usage() -> Response:
            by = request.args.get("by", "day")
            step = 3600 if by == "hour" else 86400
            if by in ("hour", "day"):
                base = int(NOW // step) * step
                rows = [{"bucket": base - i * step, "requests": 20 + 7 * (i % 4), "errors": i % 3,
                         "input_tokens": 9000 + 1300 * (i % 5), "cached_tokens": 4000, "output_tokens": 2100 * (1 + i % 3),
                         "reasoning_tokens": 600} for i in range(6)]  # fmt: skip
            else:
                names = {
                    "account": list(stub.accounts),
                    "key": ["ci", "laptop", "-"],
                    "model": ["gpt-5.5", "gpt-5.4-mini"],
                }
                rows = [{"bucket": n, "requests": 40 - 9 * i, "errors": i, "input_tokens": 52000 - 15000 * i,
                         "cached_tokens": 0, "output_tokens": 8000 - 2000 * i, "reasoning_tokens": 0}
                        for i, n in enumerate(names[by])]  # fmt: skip
            return json_response({"since": request.args.get("since"), "by": by, "data": rows})

        @bp.get("/api/users")
        async def users() -> Response:
            return json_response({"data": list(stub.users.values())})

        @bp.get("/api/settings")
        async def settings() -> Response:
            return json_response(stub.settings)

        @bp.get("/api/events")
        async def events() -> Response:
            send, receive = trio.open_memory_channel[tuple[str, Any]](100)
            stub.listeners.append(send)

            async def stream():  # type: ignore[no-untyped-def]
                yield b": hello\n\n"
                async for event, data in receive:
                    import json

                    yield f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()

            resp = Response(stream(), content_type="text/event-stream")
            resp.headers["cache-control"] = "no-cache"
            resp.timeout = None
            return resp

        return bp
