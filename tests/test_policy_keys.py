"""The teams core's keys, scope and access rules (codexgw/policy/keys.py, scope.py, access.py)."""

from __future__ import annotations

import hashlib

import pytest

from codexgw.errors import AuthenticationError
from codexgw.policy.access import Principal, may_see
from codexgw.policy.keys import MASTER_KEY, ApiKey, KeyRing, key_digest, key_prefix, secret_from, token_of
from codexgw.policy.scope import AccountRef, key_scope

NOW = 1_800_000_000.0


def make_key(secret: str, name: str = "ci", **kw: object) -> ApiKey:
    return ApiKey(name=name, prefix=key_prefix(secret), digest=key_digest(secret), **kw)  # type: ignore[arg-type]


def test_secret_format_is_cgw_and_256_bits_of_base64url() -> None:
    secret = secret_from(bytes(range(32)))
    assert secret.startswith("cgw-") and len(secret) == 4 + 43
    assert set(secret[4:]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert key_prefix(secret) == secret[:12]
    assert key_digest(secret) == hashlib.sha256(secret.encode()).hexdigest()
    with pytest.raises(ValueError):
        secret_from(b"short")


def test_token_of_reads_bearer_then_x_api_key() -> None:
    assert token_of({"authorization": "Bearer abc "}) == "abc"
    assert token_of({"authorization": "bearer abc"}) == "abc"
    assert token_of({"x-api-key": "xyz"}) == "xyz"
    assert token_of({"authorization": "Basic zzz", "x-api-key": "xyz"}) == "xyz"
    assert token_of({}) == ""


def test_an_open_ring_lets_anything_pass_anonymously() -> None:
    ring = KeyRing()
    assert not ring.required
    assert ring.authenticate("", NOW) is None
    assert ring.authenticate("sk-whatever", NOW) is None


def test_the_master_key_is_unscoped_admin_and_compared_exactly() -> None:
    ring = KeyRing(master="gw-secret")
    assert ring.required
    assert ring.authenticate("gw-secret", NOW) is MASTER_KEY
    assert MASTER_KEY.admin and not MASTER_KEY.limited and MASTER_KEY.owner is None
    for wrong in ("", "gw-secre", "gw-secret2"):
        with pytest.raises(AuthenticationError) as info:
            ring.authenticate(wrong, NOW)
        assert info.value.code == "invalid_api_key" and info.value.status == 401


def test_stored_keys_are_found_by_digest_and_refused_when_revoked_or_expired() -> None:
    a, b, c = (secret_from(bytes([i]) * 32) for i in (1, 2, 3))
    ring = KeyRing([make_key(a, "a"), make_key(b, "b", revoked_at=NOW - 1), make_key(c, "c", expires_at=NOW)])
    assert ring.required
    assert ring.authenticate(a, NOW).name == "a"  # type: ignore[union-attr]
    with pytest.raises(AuthenticationError, match="revoked"):
        ring.authenticate(b, NOW)
    with pytest.raises(AuthenticationError, match="expired"):
        ring.authenticate(c, NOW)  # expires_at <= now: expired
    assert ring.authenticate(c, NOW - 1) is not None
    with pytest.raises(AuthenticationError, match="Invalid API key"):
        ring.authenticate(a[:-1] + ("A" if a[-1] != "A" else "B"), NOW)  # same prefix, other digest
    with pytest.raises(AuthenticationError):
        ring.authenticate("", NOW)


def test_two_keys_sharing_a_prefix_are_told_apart_by_digest() -> None:
    one = "cgw-SAMEPREF" + "x" * 35
    two = "cgw-SAMEPREF" + "y" * 35
    ring = KeyRing([make_key(one, "one"), make_key(two, "two")])
    assert ring.authenticate(one, NOW).name == "one"  # type: ignore[union-attr]
    assert ring.authenticate(two, NOW).name == "two"  # type: ignore[union-attr]


def test_a_rotated_secret_stays_valid_until_its_grace_ends() -> None:
    old, new = secret_from(b"o" * 32), secret_from(b"n" * 32)
    key = make_key(new, "ci", old_prefix=key_prefix(old), old_digest=key_digest(old), grace_until=NOW + 3600)
    ring = KeyRing([key])
    assert ring.authenticate(new, NOW).name == "ci"  # type: ignore[union-attr]
    assert ring.authenticate(old, NOW + 3599).name == "ci"  # type: ignore[union-attr]
    with pytest.raises(AuthenticationError, match="rotated"):
        ring.authenticate(old, NOW + 3600)
    assert ring.authenticate(new, NOW + 3600) is not None


def test_public_shape_never_holds_the_digest() -> None:
    secret = secret_from(b"k" * 32)
    key = make_key(secret, models=frozenset({"gpt-5.5"}), accounts=("a",), revoked_at=NOW)
    shown = key.public(NOW)
    assert set(shown) == {
        "name", "prefix", "owner", "admin", "accounts", "models", "rpm", "tpm", "tokens_per_day",
        "max_streams", "expires_at", "reasoning_mode", "max_effort", "created_at", "revoked_at",
        "last_used_at", "status",
    }  # fmt: skip
    assert shown["status"] == "revoked" and shown["models"] == ["gpt-5.5"] and shown["accounts"] == ["a"]
    assert key.digest not in repr(key) and secret not in repr(shown)


ACCOUNTS = [
    AccountRef(1, "a1", "ada"),
    AccountRef(2, "a2", "ada"),
    AccountRef(3, "b1", "bob"),
    AccountRef(4, "s", None),
]


@pytest.mark.parametrize(
    ("owner", "names", "expected"),
    [
        (None, None, None),
        ("ada", None, {1, 2}),
        ("ada", ("a2", "b1"), {2}),
        (None, ("b1", "s", "gone"), {3, 4}),
        ("carol", None, set()),
    ],
)
def test_key_scope_is_the_owners_accounts_narrowed_by_names(
    owner: str | None, names: tuple[str, ...] | None, expected: set[int] | None
) -> None:
    key = ApiKey(name="k", owner=owner, accounts=names)
    scope = key_scope(key, ACCOUNTS)
    assert scope == (None if expected is None else frozenset(expected))


def test_members_see_only_their_own_things_admins_everything() -> None:
    ada = Principal("ada", "member")
    root = Principal("root", "admin")
    key = Principal("ops", "admin", via="key", key="ops")
    master = Principal("--api-key", "admin", via="master")
    assert may_see(ada, "ada") and not may_see(ada, "bob") and not may_see(ada, None)
    assert may_see(root, "bob") and may_see(root, None) and may_see(key, "ada")
    assert (ada.actor, key.actor, master.actor) == ("ada", "key:ops", "--api-key")
    assert ada.user == "ada" and key.user is None
