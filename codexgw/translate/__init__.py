"""Translation between the OpenAI APIs and the Codex backend's Responses protocol: a sans-IO core.

Request translators (Chat Completions → Responses, the Responses fix-ups), the SSE decoder and
encoders, upstream event facts, the chat-chunk translator, whole-response aggregation, and the
classification of upstream failures. Everything here takes data and returns data (bytes, dicts,
events, decisions): no sockets, files, clocks, trio, httpx or sqlite3, and no import of any codexgw
layer above it (only ``codexgw.errors`` and ``codexgw.config`` below); ``tests/test_layers.py``
pins this.
"""
