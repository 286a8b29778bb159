"""The gateway's side towards the Codex backend: the layer that carries out the cores' decisions.

:class:`~codexgw.upstream.gateway.Gateway` holds the running state (accounts in memory, the pool,
the refresher, the model catalogue); ``failover`` opens a stream on some account and moves to
another before the first byte; ``stream`` and ``heartbeat`` relay it; ``prober`` asks for quota;
``headers`` are the Codex client's. It does I/O (trio, httpx through ``client/``, the store) and
sits below ``api/``, above ``auth/``, ``client/``, ``store/`` and the sans-IO cores.
"""
