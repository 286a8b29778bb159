"""httpx plumbing for the upstream: the shared client, sharded connection pools, the Cloudflare
cookie jar, the hot-path sender, and the one place where httpx errors become codexgw errors
(``client.errors``).

It knows HTTP, not the Codex protocol; it sits beside ``store/`` (the two never import each other),
below ``auth/`` and ``upstream/``, and imports only ``codexgw.errors`` of codexgw.
"""
