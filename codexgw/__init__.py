"""codexgw: an OpenAI-compatible gateway over a pool of ChatGPT (Codex) subscription logins."""

__version__ = "0.1.0"
