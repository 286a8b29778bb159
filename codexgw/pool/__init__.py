"""Account selection: which account serves the next request, and what the upstream said about each
account's health and quota; a sans-IO core.

The scheduler (:class:`~codexgw.pool.scheduler.Pool`), its strategies, session affinity, cooldowns,
quota parsing and the health rules are plain classes and functions over plain data, with time
passed in as ``now`` (epoch s): no sockets, files, clocks, trio, httpx or sqlite3, and no import of
any codexgw layer above it; ``upstream/`` carries its decisions out. ``tests/test_layers.py`` pins
this.
"""
