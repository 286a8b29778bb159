"""The SQLite account store (design.md §3): accounts, tokens, refresh leases, change generation."""

from codexgw.store.models import Account, StoreError, TokenSet
from codexgw.store.sqlite import Store

__all__ = ["Account", "Store", "StoreError", "TokenSet"]
