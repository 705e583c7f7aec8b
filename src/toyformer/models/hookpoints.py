"""Hook points: a stable name for every activation of a model, and hooks attached by name.

Every module that has activations worth reading keeps three plain attributes: ``hook_name``
(its stable name, e.g. ``encoder.blocks.0``), ``hook_points`` (the activations it offers, e.g.
``resid_pre``) and ``tap``, which is ``None`` unless a hook is attached to one of its points.
Its forward passes each activation through ``if self.tap is not None: x = self.tap(point, x)``:
with nothing attached that is one attribute test, and the computation is the one without hooks,
bit for bit. The names (the TransformerLens name beside each, where the concept exists there):

=================================== ======================= ===================================
name                                shape                   TransformerLens
=================================== ======================= ===================================
``{stack}.embed.tok``               ``[B, T, d]``           ``hook_embed``
``{stack}.embed.pos``               ``[B, T, d]``           ``hook_pos_embed`` (added schemes)
``{stack}.embed.pos_end``, ``.place`` ``[B, T, d]``         (positions from the end, digit places)
``{stack}.blocks.{i}.resid_pre``    ``[B, T, d]``           ``blocks.{i}.hook_resid_pre``
``{stack}.blocks.{i}.resid_mid``    ``[B, T, d]``           ``blocks.{i}.hook_resid_mid``
``{stack}.blocks.{i}.resid_cross``  ``[B, T, d]``           (after cross-attention; seq2seq)
``{stack}.blocks.{i}.resid_post``   ``[B, T, d]``           ``blocks.{i}.hook_resid_post``
``{...}.attn.q_in`` (``k_in``, ``v_in``) ``[B, T, H, d]``   ``blocks.{i}.hook_q_input`` (...)
``{...}.attn.q`` (``k``, ``v``)     ``[B, T, H, d_head]``   ``blocks.{i}.attn.hook_q`` (...)
``{...}.attn.scores``               ``[B, H, Tq, Tk]``      ``blocks.{i}.attn.hook_attn_scores``
``{...}.attn.pattern``              ``[B, H, Tq, Tk]``      ``blocks.{i}.attn.hook_pattern``
``{...}.attn.z``                    ``[B, Tq, H, d_head]``  ``blocks.{i}.attn.hook_z``
``{...}.attn.result``               ``[B, Tq, H, d]``       ``blocks.{i}.attn.hook_result``
``{...}.attn.out``                  ``[B, Tq, d]``          ``blocks.{i}.hook_attn_out``
``{...}.cross_attn.*``              as ``attn``             (no cross-attention there)
``{stack}.blocks.{i}.ff.in``        ``[B, T, d]``           ``blocks.{i}.hook_mlp_in``
``{stack}.blocks.{i}.ff.hidden``    ``[B, T, d_ff]``        ``blocks.{i}.mlp.hook_post``
``{stack}.blocks.{i}.ff.out``       ``[B, T, d]``           ``blocks.{i}.hook_mlp_out``
``{stack}.final_norm``              ``[B, T, d]``           ``ln_final.hook_normalized``
``pooled``                          ``[B, d]``              (classifier: the pooled vector)
``logits``                          ``[B, V]``, ``[B, T, V]`` (the model's output)
=================================== ======================= ===================================

``{stack}`` is ``encoder`` or ``decoder``; ``z`` is each head's output before the output
projection (the weighted values), so setting ``z[:, :, h]`` to zero removes head ``h``. ``q_in``,
``k_in``, ``v_in`` and ``ff.in`` are the residual stream as each head and the feed-forward block
read it, before the block's norm (cross-attention: ``k_in``/``v_in`` are copies of the encoder's
output), so that one head's input can be changed alone (path patching, circuits). A hook is
``fn(activation, name)``; what it returns (if not ``None``) replaces the activation downstream.
Asking for ``pattern`` makes that attention module compute its weights explicitly (the fused
kernel does not return them); the output is the same up to rounding. Hooks that only read the
other points change nothing; replacing ``q_in``/``k_in``/``v_in``, ``scores`` or ``result`` makes
the module compute that part head by head (the same up to rounding).

>>> with hooks(model, {"encoder.blocks.0.attn.pattern": lambda w, name: print(name, w.shape)}):  # doctest: +SKIP
...     model(batch)
encoder.blocks.0.attn.pattern torch.Size([8, 4, 6, 6])
"""

from __future__ import annotations

from contextlib import contextmanager
from collections.abc import Callable

import torch
from torch import nn

from toyformer.errors import ConfigError

Hook = Callable[[torch.Tensor, str], "torch.Tensor | None"]


class Hookable(nn.Module):
    """A module with hook points: its stable ``hook_name``, its ``hook_points`` and the hooks
    attached now (``tap``: None while none is, so an idle point costs one attribute test)."""

    hook_name: str
    hook_points: tuple[str, ...]
    tap: Tap | None


def hookable(module: Hookable, name: str, points: tuple[str, ...]) -> None:
    """Give ``module`` a stable ``name`` and its hook ``points`` (no hook attached)."""
    module.hook_name, module.hook_points, module.tap = name, tuple(points), None


class Tap:
    """The hooks attached to one module: ``tap(point, x)`` runs those of ``{prefix}{point}``."""

    def __init__(self, prefix: str, table: dict[str, list[Hook]]):
        self.prefix, self.table = prefix, table

    def wants(self, point: str) -> bool:
        return self.prefix + point in self.table

    def wants_any(self, points) -> bool:
        return any(self.prefix + p in self.table for p in points)

    def __call__(self, point: str, x: torch.Tensor) -> torch.Tensor:
        name = self.prefix + point
        for fn in self.table.get(name, ()):
            out = fn(x, name)
            if out is not None:
                x = out
        return x


def _prefix(module: Hookable) -> str:
    return f"{module.hook_name}." if module.hook_name else ""


def hook_modules(model: nn.Module) -> list[Hookable]:
    """The modules with hook points, in the order their names are listed (a module marked
    ``hooks_last`` after everything inside it)."""
    out: list[Hookable] = []

    def walk(m: nn.Module) -> None:
        own = isinstance(m, Hookable)
        last = getattr(m, "hooks_last", False)
        if isinstance(m, Hookable) and not last:
            out.append(m)
        for child in m.children():
            walk(child)
        if isinstance(m, Hookable) and own and last:
            out.append(m)

    walk(model)
    return out


def hook_names(model: nn.Module) -> list[str]:
    """Every hook name of ``model``, in forward order per stack.

    >>> from toyformer import ModelConfig, build_model, get_task
    >>> m = build_model(ModelConfig(n_layers=1, d_model=8, n_heads=2), "tagger", get_task("reverse"), (20, 20))
    >>> hook_names(m)[:4]
    ['encoder.embed.tok', 'encoder.embed.pos', 'encoder.blocks.0.resid_pre', 'encoder.blocks.0.resid_mid']
    """
    return [_prefix(m) + p for m in hook_modules(model) for p in m.hook_points]


def check_names(model: nn.Module, names, what: str = "hook") -> list[str]:
    """``names`` as a list; an unknown one is a one-line ConfigError listing the valid ones."""
    valid = hook_names(model)
    known = set(valid)
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        if name not in known:
            raise ConfigError(f"unknown {what} name {name!r}; valid: {', '.join(valid)}")
    return names


@contextmanager
def hooks(model: nn.Module, table: dict[str, Hook | list[Hook]]):
    """Attach ``{name: fn}`` (or ``{name: [fn, ...]}``) to ``model`` while the block runs; nested
    uses add to each other and unwind in order. Unknown names: a ConfigError listing the valid
    ones, before anything is attached."""
    check_names(model, list(table))
    fns = {name: list(f) if isinstance(f, (list, tuple)) else [f] for name, f in table.items()}
    attached: list[tuple[Hookable, Tap | None]] = []
    try:
        for m in hook_modules(model):
            prefix = _prefix(m)
            mine = {prefix + p: fns[prefix + p] for p in m.hook_points if prefix + p in fns}
            if not mine:
                continue
            before = m.tap
            merged = {k: list(v) for k, v in (before.table.items() if before is not None else ())}
            for name, more in mine.items():
                merged[name] = merged.get(name, []) + more
            attached.append((m, before))
            m.tap = Tap(prefix, merged)
        yield model
    finally:
        for m, before in reversed(attached):
            m.tap = before
