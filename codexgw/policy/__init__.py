"""Teams: who may call the gateway and how much, as a sans-IO core (issue 12, the teams contract).

API keys and their lookup (``keys``), the scope of a key in the pool (``scope``), the per-request
policy in the contract's order (``request``: authenticate, model allowlist, rate limits, effort
ceiling, default reasoning display), the rate-limit counters (``limits``), the usage ledger kept in
memory and flushed in batches (``usage``), what a user may see and change (``access``), password
hashing (``passwords``), failed-login throttling (``throttle``), and the values of the CLI and API
(``fields``, ``durations``).

Plain classes and functions over plain data, time passed in as ``now`` (epoch s): no sockets,
files, clocks, randomness, trio, httpx or sqlite3, and no import of any codexgw layer above it
(``errors`` and the sans-IO ``translate`` for the reasoning efforts and modes). ``upstream/teams``
carries its decisions out; ``store/`` keeps what it decides. ``tests/test_layers.py`` pins this.
"""
