"""Positional schemes, by where they plug in: added to the embeddings (``embedder``: sinusoidal,
learned; ``abacus``: digit places), applied to queries and keys (``rope``), added to the
attention scores (``alibi``, ``relative_bias``)."""
