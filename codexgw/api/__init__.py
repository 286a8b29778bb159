"""The HTTP edge: the OpenAI-compatible routes (``/v1/responses``, ``/v1/chat/completions``,
``/v1/models``, ``/status``, ``/metrics``, ``/health``) on QuartTrio and, for the two hot routes,
plain ASGI.

Routes read the request, call ``translate/`` for the protocol and ``upstream/`` for the work, and
write the answer (OpenAI-shaped errors, SSE). It sits below ``serve`` (which builds the app) and
above every other layer.
"""
