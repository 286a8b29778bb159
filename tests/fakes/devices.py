"""Device-code login state (codex-protocol.md §2).

A user code is created by ``POST /api/accounts/deviceauth/usercode``; the test plays the user with
:meth:`FakeUpstream.approve_device` / :meth:`FakeUpstream.deny_device`. Polls answer 403 while
pending (the client keeps polling), and 200 with ``{authorization_code, code_challenge,
code_verifier}`` once approved. Codes expire 15 minutes after creation on the fake's clock.
"""

from __future__ import annotations

import hashlib
import secrets
import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import jwt

if TYPE_CHECKING:
    from .state import FakeAccount, FakeUpstream

DEVICE_CODE_TTL_S = 15 * 60
""""expires in 15 minutes" (codex-protocol.md §2)."""
AUTH_CODE_TTL_S = 10 * 60
INTERVAL = "5"
"""Poll interval, a JSON *string* as the real service sends it (codex-protocol.md §2)."""


@dataclass
class DeviceAuth:
    device_auth_id: str
    user_code: str
    created_at: float
    account: FakeAccount | None = None
    denied: bool = False
    consumed: bool = False


def pkce_challenge(verifier: str) -> str:
    """S256: base64url-no-pad of SHA-256(verifier) (codex-protocol.md §1)."""
    return jwt.b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def _user_code() -> str:
    alphabet = string.ascii_uppercase + string.digits
    return (
        "".join(secrets.choice(alphabet) for _ in range(4))
        + "-"
        + "".join(secrets.choice(alphabet) for _ in range(5))
    )


def _error(message: str, code: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}


class DeviceAuthorizations:
    """All device authorizations of one fake, keyed by user code."""

    def __init__(self, fake: FakeUpstream) -> None:
        self._fake = fake
        self.by_user_code: dict[str, DeviceAuth] = {}

    def create(self) -> DeviceAuth:
        auth = DeviceAuth("deviceauth_" + secrets.token_hex(16), _user_code(), self._fake.clock())
        self.by_user_code[auth.user_code] = auth
        return auth

    def _get(self, user_code: str) -> DeviceAuth:
        try:
            return self.by_user_code[user_code]
        except KeyError:
            raise KeyError(f"no device authorization with user code {user_code!r}") from None

    def approve(self, user_code: str, account: FakeAccount) -> None:
        self._get(user_code).account = account
        self._fake.notify()

    def deny(self, user_code: str) -> None:
        self._get(user_code).denied = True
        self._fake.notify()

    def poll(self, device_auth_id: Any, user_code: Any, origin: str) -> tuple[int, dict[str, Any]]:
        """Answer one ``POST /api/accounts/deviceauth/token``: (status, JSON body).

        ``origin`` is the fake's own ``scheme://host``, from which the redirect URI the client must
        present at the code exchange is derived: ``{issuer}/deviceauth/callback`` (§2 step 4).
        """
        auth = self.by_user_code.get(user_code) if isinstance(user_code, str) else None
        if auth is None or auth.device_auth_id != device_auth_id:
            return 400, _error("Unknown device authorization.", "invalid_device_auth")
        if self._fake.clock() - auth.created_at >= DEVICE_CODE_TTL_S:
            return 400, _error("Device authorization has expired.", "device_auth_expired")
        if auth.denied:
            return 400, _error("The user denied the device authorization.", "access_denied")
        if auth.consumed:
            return 400, _error("Device authorization was already used.", "device_auth_used")
        if auth.account is None:
            return 403, _error("Device authorization is pending.", "deviceauth_authorization_pending")
        auth.consumed = True
        verifier = jwt.b64url(secrets.token_bytes(64))
        challenge = pkce_challenge(verifier)
        code = self._fake.issue_auth_code(
            auth.account,
            code_challenge=challenge,
            redirect_uri=f"{origin}/deviceauth/callback",
            scope="openid profile email offline_access",
        )
        return 200, {"authorization_code": code, "code_challenge": challenge, "code_verifier": verifier}
