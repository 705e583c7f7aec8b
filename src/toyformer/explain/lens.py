"""The logit lens and direct logit attribution.

**Logit lens.** The model's own read-out (final norm, pooling for a classifier, output head)
applied to the residual stream after each layer of the stream that produces the answer: from
which layer on is the answer already there? The last layer's lens is the model's output.

**Direct logit attribution.** In a pre-norm model the residual before the final norm is a sum:
embeddings + each head's output + each attention bias + each feed-forward output. With the final
LayerNorm's scale taken from the real residual (a linear map per position, as TransformerLens's
``apply_ln``), each term's contribution to the correct answer's logit (centred: minus the mean
over the vocabulary) adds up, with the biases of the norm and the head, to that logit. Post-norm models,
MLP output heads and flatten pooling are not sums of this kind: their rows say why instead.

>>> [round(r["exact_match"], 2) for r in logit_lens("runs/rev")]          # doctest: +SKIP
[0.0, 0.0, 1.0]
>>> direct_logit_attribution("runs/rev")["rows"][0]["component"]          # doctest: +SKIP
'encoder.blocks.0.attn head 1'
"""

from __future__ import annotations

import torch
from torch import nn

from toyformer.explain.data import Inputs, cached, held_out, prepare, score
from toyformer.explain.probes import layer_names
from toyformer.inspect.capture import subject
from toyformer.models.attention import Attention
from toyformer.models.blocks import FeedForward
from toyformer.data import IGNORE


def _stack_of(model, stream: str):
    return (model.decoder if stream == "decoder" else model.encoder).stack


def readout(model, layout: str, h: torch.Tensor, inp: Inputs, stream: str) -> torch.Tensor:
    """The model's final norm and output head applied to a residual ``h [B, T, d]``."""
    h = _stack_of(model, stream).final_norm(h)
    if layout == "classifier":
        tokens = inp.frames["encoder"].tokens
        return model.head(model.pool(h, tokens))
    return model.head(h)


def logit_lens(source, n: int = 512, inputs=None) -> list[dict]:
    """Exact match, token accuracy and loss of the read-out applied after each layer of the
    answer-producing stream, on ``n`` test examples."""
    s = subject(source)
    inp = prepare(s, held_out(s, n) if inputs is None else inputs)
    names = layer_names(s.model, inp.out)
    _, acts = cached(s.model, inp, names)
    rows = []
    with torch.no_grad():
        for layer, name in enumerate(names):
            logits = readout(s.model, s.layout, acts[name], inp, inp.out)
            rows.append({"stream": inp.out, "layer": layer, **score(logits, inp.batch.labels)})
    return rows


def _linear_head(model) -> nn.Linear | None:
    head = model.head
    if isinstance(head, nn.Linear):
        return head
    if isinstance(head, nn.Sequential) and len(head) == 1 and isinstance(head[0], nn.Linear):
        return head[0]
    return None


def why_not_linear(model, layout: str) -> str | None:
    """Why direct logit attribution does not apply to ``model`` (None: it does)."""
    stack = _stack_of(model, "decoder" if layout in ("causal", "seq2seq") else "encoder")
    if not isinstance(stack.final_norm, nn.LayerNorm):
        return "a post-norm model normalises after every branch, so its residual is not a sum of branch outputs"
    if _linear_head(model) is None:
        return "the output head is an MLP (model.head_hidden), not one linear map"
    if layout == "classifier" and model.pooling == "flatten":
        return "flatten pooling gives every position its own unembedding"
    return None


def direct_logit_attribution(source, n: int = 512, inputs=None) -> dict:
    """Each component's mean direct contribution to the correct answer's centred logit, on ``n``
    test examples: ``{"total": mean centred logit, "rows": [{component, kind, contribution}],
    "residual": total minus the sum of the rows (rounding)}``, rows by size; or ``{"skipped": why}``."""
    s = subject(source)
    why = why_not_linear(s.model, s.layout)
    if why is not None:
        return {"skipped": why}
    inp = prepare(s, held_out(s, n) if inputs is None else inputs)
    stream = inp.out
    stack = _stack_of(s.model, stream)
    parts = _parts(s.model, stream)
    names = [f"{stream}.blocks.0.resid_pre", f"{stream}.blocks.{len(stack.blocks) - 1}.resid_post"]
    names += [p[2] for p in parts if p[2] not in names]
    logits, acts = cached(s.model, inp, names)
    final = acts[names[1]]  # [B, T, d] before the final norm
    norm = stack.final_norm
    scale = (final.var(-1, unbiased=False, keepdim=True) + norm.eps).sqrt()  # [B, T, 1]
    head = _linear_head(s.model)
    labels = inp.batch.labels  # [B] or [B, T]
    w_u = head.weight - head.weight.mean(0, keepdim=True)  # [V, d] centred over the vocabulary

    def contribution(term: torch.Tensor) -> torch.Tensor:  # [B, T, d] -> [N] at the counted answers
        x = (term - term.mean(-1, keepdim=True)) / scale * norm.weight
        if s.layout == "classifier":
            x = s.model.pool(x, inp.frames["encoder"].tokens)  # [B, d]
            return (x * w_u[labels]).sum(-1)
        keep = labels != IGNORE
        return (x[keep] * w_u[labels[keep]]).sum(-1)

    rows = []
    with torch.no_grad():
        for label, kind, name, head_idx, module in parts:
            term = acts[name]
            if kind == "head":
                term = _head_output(module, term, head_idx)
            elif kind == "bias":
                term = module.out.bias.expand_as(final)
            rows.append({"component": label, "kind": kind, "contribution": contribution(term).mean().item()})
        flat = logits if logits.dim() == 2 else logits[labels != IGNORE]
        gold = labels if labels.dim() == 1 else labels[labels != IGNORE]
        centred = (flat - flat.mean(-1, keepdim=True)).gather(1, gold[:, None]).squeeze(1)
        biases = norm.bias @ w_u.T + head.bias - head.bias.mean()  # [V]: the final norm's and the head's
        rows.append({"component": "output biases", "kind": "bias", "contribution": biases[gold].mean().item()})
    total = centred.mean().item()
    explained = sum(r["contribution"] for r in rows)
    rows.sort(key=lambda r: abs(r["contribution"]), reverse=True)
    return {"total": total, "rows": rows, "residual": total - explained, "stream": stream, "n": len(inp)}


def _head_output(attn: Attention, z: torch.Tensor, h: int) -> torch.Tensor:
    """Head ``h``'s share of the attention output (without the bias): ``z [B, T, H, dh]`` -> ``[B, T, d]``."""
    dh = attn.d_head
    return z[:, :, h] @ attn.out.weight[:, h * dh:(h + 1) * dh].T


def _parts(model, stream: str) -> list[tuple]:
    """(label, kind, hook name, head index, module) of every additive term of ``stream``'s residual."""
    parts: list[tuple] = [(f"{stream}.embed", "embed", f"{stream}.blocks.0.resid_pre", None, None)]
    for m in model.modules():
        if isinstance(m, Attention) and m.name.startswith(stream + "."):
            parts += [(f"{m.name} head {h}", "head", f"{m.name}.z", h, m) for h in range(m.n_heads)]
            parts.append((f"{m.name} bias", "bias", f"{m.name}.z", None, m))
        elif isinstance(m, FeedForward) and m.hook_name.startswith(stream + "."):
            parts.append((m.hook_name, "ff", f"{m.hook_name}.out", None, m))
    return parts
