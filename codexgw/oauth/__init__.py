"""OAuth 2.0 with auth.openai.com as the Codex CLI speaks it, as a sans-IO core (codex-protocol.md §1-§4).

Requests to send (:class:`~codexgw.oauth.tokens.HttpRequestSpec`) and parsers of the answers for
the refresh, code-exchange, API-key, revoke (``tokens``) and device-code (``device``) exchanges;
PKCE and the authorize URL (``pkce``); JWT claims (``jwt``). No sockets, files, clocks, trio, httpx
or sqlite3, and no import of any codexgw layer above it: ``auth/`` sends what this builds, and
``store/`` may read claims with it. ``tests/test_layers.py`` pins this.
"""
