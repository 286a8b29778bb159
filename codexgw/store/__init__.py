"""The SQLite account store (design.md §3): accounts, tokens, refresh leases, change generation."""

from codexgw.store.models import STATUS_ACTIVE, STATUS_NEEDS_LOGIN, Account, StoreError, TokenSet
from codexgw.store.sqlite import Store

__all__ = ["STATUS_ACTIVE", "STATUS_NEEDS_LOGIN", "Account", "Store", "StoreError", "TokenSet"]
