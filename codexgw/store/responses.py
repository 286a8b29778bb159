"""Stored responses for ``previous_response_id``: ``<store dir>/responses.db`` (SQLite, WAL, 0600).

The ChatGPT backend runs with ``store: false`` (codex-protocol.md §6.3): it keeps nothing, so a client's
``previous_response_id`` means nothing to it. codexgw keeps, per response it relayed, the input items
the client sent for that turn, the output items the upstream produced, the response it followed and
the account that served it. Expanding an id walks that chain back to its start and returns the whole
conversation as one input list (``instructions`` are not carried over, as in the OpenAI API).
:meth:`ResponseStore.find_items` looks output items up by their ``id`` (for ``item_reference`` input
items, which the backend cannot resolve either).

Theory of operation:

* **One row per response**, holding only that turn's new items, so a long conversation costs
  O(turns), not O(turns²). A chain whose ancestor is gone (expired or evicted) cannot be expanded.
* **Item index:** ``response_items`` maps the ``id`` of every stored output item (``msg_…``,
  ``fc_…``, ``rs_…``: the ids the client saw) to its response. Input items are stored as sent upstream,
  without ids, so they cannot be referenced. Index rows go when their response goes.
* **Bounded:** a row expires ``ttl_s`` after it was last written or used (using a chain renews every
  row of it); beyond ``max_responses`` rows or ``max_bytes`` of items the least recently used go
  first. Pruning runs on open and
  every ``PRUNE_EVERY`` writes.
* **Files and threads** as in :mod:`codexgw.store.sqlite`: a separate file (so a busy conversation log
  never contends with the account store), a connection per operation, safe from any thread; the
  server calls it through ``trio.to_thread``.
* **Tenants.** Each row names the caller that produced it (``tenant``: the API key's
  :attr:`~codexgw.policy.keys.ApiKey.tenant`, ``None`` for a gateway without keys). A chain or an
  item is found only by the same tenant, so on a team gateway one user's key can never continue or
  read another user's conversation (an id of someone else's answers ``previous_response_not_found``,
  exactly as an unknown one). Files from before the column was added get it on open (``NULL``: the
  keyless tenant).
* **Encryption at rest.** The items are conversation content: in an encrypted store the ``input``
  and ``output`` columns are AES-GCM ``enc1:…`` values under the account store's key (``opener``;
  :mod:`codexgw.store.crypto`). Ids, sizes and times stay clear (the index needs them).
  ``secure_delete = FAST`` zeroes replaced values where that costs no extra I/O; ``store encrypt``
  vacuums the rest away.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from codexgw.store.crypto import Opener, is_encrypted
from codexgw.store.models import StoreError

__all__ = ["RESPONSES_DB_FILENAME", "History", "ResponseStore", "StoredResponse"]

RESPONSES_DB_FILENAME = "responses.db"
DEFAULT_TTL_S = 7 * 24 * 3600.0
"""How long a stored response stays usable after its last use (seconds)."""
DEFAULT_MAX_RESPONSES = 20_000
"""Most rows kept; the least recently used beyond this are evicted."""
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
"""Most item bytes kept (JSON); the least recently used beyond this are evicted."""
MAX_CHAIN = 10_000
"""Longest ``previous_response_id`` chain followed (guards against a cycle or a runaway chain)."""
PRUNE_EVERY = 200

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    id TEXT PRIMARY KEY,
    previous_id TEXT,
    account_id INTEGER,
    input TEXT NOT NULL,
    output TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    tenant TEXT
);
CREATE INDEX IF NOT EXISTS responses_expires_at ON responses (expires_at);
CREATE TABLE IF NOT EXISTS response_items (
    item_id TEXT PRIMARY KEY,
    response_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS response_items_response_id ON response_items (response_id);
"""


@dataclass(frozen=True)
class StoredResponse:
    """One relayed response, as kept for ``previous_response_id``.

    Attributes:
        id: the upstream's response id (``resp_…``), which the client saw.
        previous_id: the ``previous_response_id`` the request named, or ``None``.
        account_id: the codexgw account that served it (its encrypted reasoning is readable only there).
        input: this turn's input items as sent upstream (after fix-ups), without the expanded history.
        output: the response's output items (``response.output_item.done`` items).
        tenant: the caller it belongs to (:attr:`codexgw.policy.keys.ApiKey.tenant`; ``None``: no key).
    """

    id: str
    previous_id: str | None
    account_id: int | None
    input: list[dict[str, Any]]
    output: list[dict[str, Any]]
    tenant: str | None = None


@dataclass
class History:
    """A conversation expanded from a ``previous_response_id``.

    Attributes:
        items: every input and output item of the chain, oldest first.
        owners: for each item, the account that produced it (output items) or ``None`` (input items).
            The route extends it past ``items`` to cover the client's new input when it resolved
            ``item_reference`` items there (see ``codexgw.api.responses``).
        account_id: the account that served the latest response of the chain.
    """

    items: list[dict[str, Any]] = field(default_factory=list)
    owners: list[int | None] = field(default_factory=list)
    account_id: int | None = None


def _switch_to_wal(conn: sqlite3.Connection, *, tries: int = 50) -> None:
    """``PRAGMA journal_mode=WAL``, retried: the switch takes an exclusive lock that the busy timeout
    does not wait for, so processes opening the file at once (``serve --workers``) saw 'database is
    locked'."""
    for attempt in range(tries):
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or attempt == tries - 1:
                raise
            time.sleep(0.05 + 0.05 * random.random())


class ResponseStore:
    """Synchronous access to ``<directory>/responses.db``; construct with :meth:`open`.

    Args:
        directory: the codexgw store directory (already 0700, or created so).
        ttl_s: see :data:`DEFAULT_TTL_S`.
        max_responses: see :data:`DEFAULT_MAX_RESPONSES`.
        max_bytes: see :data:`DEFAULT_MAX_BYTES`.
        opener: seals and opens the item columns (the account store's :attr:`Store.opener`);
            default: unencrypted.
    """

    def __init__(
        self,
        directory: Path,
        *,
        ttl_s: float = DEFAULT_TTL_S,
        max_responses: int = DEFAULT_MAX_RESPONSES,
        max_bytes: int = DEFAULT_MAX_BYTES,
        opener: Opener | None = None,
    ) -> None:
        self.opener = opener or Opener()
        self.directory = Path(directory).expanduser()
        self.path = self.directory / RESPONSES_DB_FILENAME
        self.ttl_s = ttl_s
        self.max_responses = max_responses
        self.max_bytes = max_bytes
        self._writes = 0

    @classmethod
    def open(cls, directory: Path | str, **kw: Any) -> ResponseStore:
        """Create (0600, WAL) or open the responses database and prune it.

        Raises:
            StoreError: the file cannot be created or is not a database.
        """
        store = cls(Path(directory), **kw)
        try:
            store.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            os.close(os.open(store.path, os.O_RDWR | os.O_CREAT, 0o600))
            with closing(store._connect()) as conn:
                _switch_to_wal(conn)
                conn.executescript(SCHEMA)
                columns = {row[1] for row in conn.execute("PRAGMA table_info(responses)")}
                if "tenant" not in columns:  # a file from before tenants
                    conn.execute("ALTER TABLE responses ADD COLUMN tenant TEXT")
            for suffix in ("", "-wal", "-shm"):
                path = store.path.with_name(store.path.name + suffix)
                if path.exists():
                    os.chmod(path, 0o600)
        except OSError as e:
            raise StoreError(f"cannot open {store.path}: {e.strerror or e}") from None
        except sqlite3.DatabaseError as e:
            raise StoreError(f"{store.path}: {e}") from None
        store.prune()
        return store

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
        conn.execute("PRAGMA busy_timeout=10000")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA secure_delete=FAST")
        return conn

    def put(self, response: StoredResponse, *, now: float | None = None) -> None:
        """Keep ``response`` (replacing a row with the same id)."""
        now = time.time() if now is None else now
        input_json = json.dumps(response.input, separators=(",", ":"))
        output_json = json.dumps(response.output, separators=(",", ":"))
        size = len(input_json) + len(output_json)
        input_json = self.opener.seal(input_json, "responses.input")  # type: ignore[assignment]
        output_json = self.opener.seal(output_json, "responses.output")  # type: ignore[assignment]
        row = (response.id, response.previous_id, response.account_id, input_json, output_json, size)
        ids = [(item["id"], response.id) for item in response.output if isinstance(item.get("id"), str)]
        with closing(self._connect()) as conn:
            conn.execute("BEGIN")
            conn.execute(
                "INSERT OR REPLACE INTO responses (id, previous_id, account_id, input, output, size,"
                " created_at, expires_at, tenant) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (*row, now, now + self.ttl_s, response.tenant),
            )
            conn.executemany("INSERT OR REPLACE INTO response_items VALUES (?, ?)", ids)
            conn.execute("COMMIT")
        self._writes += 1
        if self._writes % PRUNE_EVERY == 0:
            self.prune(now=now)

    def expand(
        self, response_id: str, *, tenant: str | None = None, now: float | None = None
    ) -> History | None:
        """The whole conversation up to and including ``response_id``, or ``None`` if unknown.

        ``None`` also when the chain is broken (an ancestor expired or was evicted), longer than
        :data:`MAX_CHAIN`, or any row of it belongs to another ``tenant``. Every row of a found
        chain is renewed for another ``ttl_s``.
        """
        now = time.time() if now is None else now
        chain: list[tuple[str, int | None, str, str]] = []
        seen: set[str] = set()
        with closing(self._connect()) as conn:
            current: str | None = response_id
            while current is not None:
                if current in seen or len(chain) >= MAX_CHAIN:
                    return None
                seen.add(current)
                row = conn.execute(
                    "SELECT previous_id, account_id, input, output FROM responses"
                    " WHERE id = ? AND expires_at > ? AND tenant IS ?",
                    (current, now, tenant),
                ).fetchone()
                if row is None:
                    return None
                previous_id, account_id, input_json, output_json = row
                chain.append((current, account_id, input_json, output_json))
                current = previous_id
            conn.executemany(
                "UPDATE responses SET expires_at = ? WHERE id = ?", [(now + self.ttl_s, c[0]) for c in chain]
            )
        history = History(account_id=chain[0][1])
        for _id, account_id, input_json, output_json in reversed(chain):
            inputs = json.loads(self.opener(input_json, "responses.input"))
            outputs = json.loads(self.opener(output_json, "responses.output"))
            history.items += inputs + outputs
            history.owners += [None] * len(inputs) + [account_id] * len(outputs)
        return history

    def find_items(
        self, item_ids: Iterable[str], *, tenant: str | None = None, now: float | None = None
    ) -> dict[str, tuple[dict[str, Any], int | None]]:
        """The stored output items with these ids: ``{id: (item, account that produced it)}``.

        Ids that are unknown, whose response expired or was evicted, or that belong to another
        ``tenant`` are missing from the result.
        Every response an item is found in is renewed for another ``ttl_s``.
        """
        now = time.time() if now is None else now
        found: dict[str, tuple[dict[str, Any], int | None]] = {}
        rows: dict[str, tuple[int | None, list[Any]]] = {}
        with closing(self._connect()) as conn:
            for item_id in dict.fromkeys(item_ids):
                row = conn.execute(
                    "SELECT r.id, r.account_id, r.output FROM response_items i JOIN responses r "
                    "ON r.id = i.response_id WHERE i.item_id = ? AND r.expires_at > ? AND r.tenant IS ?",
                    (item_id, now, tenant),
                ).fetchone()
                if row is None:
                    continue
                response_id, account_id, output_json = row
                if response_id not in rows:
                    rows[response_id] = (account_id, json.loads(self.opener(output_json, "responses.output")))
                for item in rows[response_id][1]:
                    if isinstance(item, dict) and item.get("id") == item_id:
                        found[item_id] = (item, account_id)
                        break
            conn.executemany(
                "UPDATE responses SET expires_at = ? WHERE id = ?", [(now + self.ttl_s, r) for r in rows]
            )
        return found

    def prune(self, *, now: float | None = None) -> int:
        """Delete expired rows, then the least recently used beyond ``max_responses`` or ``max_bytes``.

        Returns:
            How many rows were deleted.
        """
        now = time.time() if now is None else now
        with closing(self._connect()) as conn:
            deleted = conn.execute("DELETE FROM responses WHERE expires_at <= ?", (now,)).rowcount
            deleted += conn.execute(
                "DELETE FROM responses WHERE id IN (SELECT id FROM responses ORDER BY expires_at DESC "
                "LIMIT -1 OFFSET ?)",
                (self.max_responses,),
            ).rowcount
            deleted += conn.execute(
                "DELETE FROM responses WHERE id IN (SELECT id FROM (SELECT id, SUM(size) OVER "
                "(ORDER BY expires_at DESC, id) AS total FROM responses) WHERE total > ?)",
                (self.max_bytes,),
            ).rowcount
            if deleted:
                conn.execute("DELETE FROM response_items WHERE response_id NOT IN (SELECT id FROM responses)")
        return deleted

    def count(self) -> int:
        """Number of rows (expired ones not yet pruned included)."""
        with closing(self._connect()) as conn:
            return int(conn.execute("SELECT count(*) FROM responses").fetchone()[0])

    def reseal(self, opener: Opener) -> int:
        """Rewrite every row's items through ``opener`` (encrypting or decrypting them), in one
        transaction, and use it from now on. Rows already in the wanted form are left alone.
        Returns the number of rows rewritten.

        Raises:
            StoreError: a row does not open with the current opener.
        """
        count = 0
        with closing(self._connect()) as conn:
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("BEGIN IMMEDIATE")
            try:
                ids = [r[0] for r in conn.execute("SELECT id FROM responses")]
                for response_id in ids:
                    input_json, output_json = conn.execute(
                        "SELECT input, output FROM responses WHERE id = ?", (response_id,)
                    ).fetchone()
                    sealed = opener.cipher is not None
                    if is_encrypted(input_json) == sealed and is_encrypted(output_json) == sealed:
                        continue
                    conn.execute(
                        "UPDATE responses SET input = ?, output = ? WHERE id = ?",
                        (
                            opener.seal(self.opener(input_json, "responses.input"), "responses.input"),
                            opener.seal(self.opener(output_json, "responses.output"), "responses.output"),
                            response_id,
                        ),
                    )
                    count += 1
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        self.opener = opener
        return count
