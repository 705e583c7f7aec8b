"""Positional schemes, one module each, by where they plug in: added to the embeddings
(``embedder``: sinusoidal, learned; ``abacus``: digit places), applied to queries and keys
(``rope``), added to the attention scores (``alibi``, ``relative_bias``).

The table of schemes is ``toyformer.config.positional.SCHEMES``: each row names the class that
builds its scheme. The class has the interface of its plug point (the protocols below) and a
``from_config`` constructor; ``build`` imports and constructs it. A new scheme is its module
plus one row of that table.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol
from collections.abc import Callable

import torch

from toyformer.config.positional import Scheme
from toyformer.errors import ConfigError


class AddedPositions(Protocol):
    """Plug ``embedding``: ``from_config(cfg, max_len, width)``; positions ``[B, T]`` -> the term
    ``[B, T, width]`` added to the token embeddings. A scheme with ``table=True`` is an
    ``nn.Embedding`` of ``max_len`` rows (its ``weight`` is shown as the position embeddings)."""

    def __call__(self, pos: torch.Tensor) -> torch.Tensor: ...


class RotatedPositions(Protocol):
    """Plug ``rotation``: ``from_config(cfg)``; ``at(pos [B, T])`` gives the function that rotates
    queries or keys ``[B, H, T, d_head]`` by those positions."""

    def at(self, pos: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]: ...


class ScoreBias(Protocol):
    """Plug ``scores``: ``from_config(cfg, causal)``; query positions ``[B, Tq]`` and key positions
    ``[B, Tk]`` -> the bias ``[B, H, Tq, Tk]`` added to the attention scores; ``pairs`` the same for
    each query's own keys ``[B, Tq or 1, K]`` -> ``[B, H, Tq, K]`` (attention through a window)."""

    def __call__(self, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor: ...

    def pairs(self, q_pos: torch.Tensor, k_pos: torch.Tensor) -> torch.Tensor: ...


def scheme_class(scheme: Scheme) -> type:
    """The class a row names (``"package.module:Class"``, imported now, or the class itself)."""
    if not isinstance(scheme.module, str):
        if scheme.module is None:
            raise ConfigError(f"positional scheme {scheme.name!r} plugs in nowhere; it builds no module")
        return scheme.module
    path, _, attr = scheme.module.partition(":")
    try:
        return getattr(importlib.import_module(path), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"positional scheme {scheme.name!r}: cannot import {scheme.module!r} ({exc})") from None


def build(scheme: Scheme, cfg, **context) -> Any:
    """The module of ``scheme`` for the model config ``cfg`` (an ``nn.Module`` with its plug point's
    interface); ``context`` is what its plug point passes (``max_len``, ``width`` for ``embedding``;
    ``causal`` for ``scores``)."""
    return scheme_class(scheme).from_config(cfg, **context)  # type: ignore[attr-defined]
