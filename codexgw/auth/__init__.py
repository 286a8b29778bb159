"""Login flows with I/O: browser login with PKCE and its local callback listener, device-code login,
token refresh (single-flight across processes through the store's lease), and Codex ``auth.json``
files linked to an account (codex-protocol.md §1-§5).

It sends what the sans-IO ``oauth/`` core builds, with httpx and trio, and writes the results to
``store/``; it sits below ``upstream/`` and the CLI, above ``client/``, ``store/`` and the cores.
"""
