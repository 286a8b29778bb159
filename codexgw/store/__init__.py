"""The SQLite account store (design.md §3): accounts, tokens, refresh leases, change generation,
pool settings, stored responses.

Synchronous and thread- and process-safe; the server calls it through ``trio.to_thread``. It sits
beside ``client/`` (neither imports the other), below ``auth/``, ``upstream/``, ``api/`` and the
CLI, and reads JWT claims with the sans-IO ``oauth/`` core and account health with ``pool/``.
"""

from codexgw.store.models import Account, StoreError, TokenSet
from codexgw.store.sqlite import Store

__all__ = ["Account", "Store", "StoreError", "TokenSet"]
