"""OpenAI-compatible chat completions over the describe graph (``/v1``).

As in vLLM's OpenAI entrypoints: :mod:`.protocol` holds the wire models,
:mod:`.service` the use case (messages → media + conversation, checks, charging,
idempotency, whole and streamed answers); the HTTP router stays thin.
"""
