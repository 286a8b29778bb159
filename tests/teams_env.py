"""Test helpers for teams: users, keys and owners written to the store as the CLI would."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import trio

from codexgw.policy.fields import key_fields
from codexgw.store.keys import create_key, new_secret
from codexgw.store.sqlite import Store
from codexgw.store.users import add_user, new_password_hash, set_account_owner
from tests.conftest import Env

PASSWORD = "correct horse battery"


@functools.cache
def password_hash() -> str:
    """One scrypt hash of :data:`PASSWORD` for every test (hashing costs ~50 ms)."""
    return new_password_hash(PASSWORD)


def store_of(env: Env) -> Store:
    return Store.open(env.store_dir)


def user(env: Env, name: str, role: str = "member") -> None:
    add_user(store_of(env), name, role, password_hash(), now=time.time())


def own(env: Env, account: str, owner: str | None) -> None:
    assert set_account_owner(store_of(env), account, owner, now=time.time())


def key(env: Env, name: str, **fields: Any) -> str:
    """Create the key ``name`` with ``fields`` (as ``keys create`` takes them); returns its secret."""
    secret = new_secret()
    create_key(store_of(env), key_fields({"name": name, **fields}, now=env.clock()), secret, now=env.clock())
    return secret


async def eventually(
    check: Callable[[], Any], *, within_s: float = 3.0, ignore: tuple[type[BaseException], ...] = ()
) -> float:
    """Poll ``check`` (sync or async) every 20 ms until it returns neither False nor None without
    raising (AssertionError or one of ``ignore``: not yet); returns the seconds it took. Raises
    AssertionError after ``within_s``."""
    start = trio.current_time()
    while True:
        try:
            result = check()
            if hasattr(result, "__await__"):
                result = await result
            if result is not False and result is not None:
                return trio.current_time() - start
        except (AssertionError, *ignore):
            pass
        if trio.current_time() - start > within_s:
            raise AssertionError(f"not true within {within_s} s")
        await trio.sleep(0.02)


def served_by(env: Env) -> list[str]:
    """The chatgpt_account_ids of the ``/codex/responses`` calls the fake got, in order."""
    return [r.headers.get("chatgpt-account-id", "") for r in env.fake.responses_requests()]
