"""Small runs shared by the explain tests: trained once per session, and models with hand-set
weights whose mechanism is known by construction."""

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import torch
from torch import nn

from conftest import small_config
from toyformer import train
from toyformer.run import build

_ROOT = Path(tempfile.mkdtemp(prefix="toyformer-explain-tests-"))
atexit.register(shutil.rmtree, _ROOT, ignore_errors=True)


@functools.cache
def reverser() -> Path:
    """A one-layer tagger that reverses 5 tokens (test exact match 1.0), as a run directory."""
    out = _ROOT / "reverser"
    run = train(small_config(train={"steps": 600, "warmup_steps": 20}, eval={"every": 20, "target": 1.0}), out_dir=out)
    assert run.summary["test_exact_match"] == 1.0
    return out


def blank(length: int = 6, d_model: int = 32, **model):
    """An untrained one-head tagger on ``reverse`` whose linear maps and embeddings are all zero
    (layer norms untouched), post-norm so that attention reads the embeddings as they are."""
    cfg = small_config({"name": "reverse", "length": length},
                       model={"d_model": d_model, "n_heads": 1, "n_layers": 1, "d_ff": 16, "positional": "learned",
                              "norm": "post", **model})
    run = build(cfg)
    with torch.no_grad():
        for m in run.model.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                m.weight.zero_()
                if getattr(m, "bias", None) is not None:
                    m.bias.zero_()
    return run


def positions_and_tokens(length: int = 6):
    """``blank`` with one-hot positions in dimensions 0-15 and one-hot tokens in 16-31, keys and
    values equal to the embedding."""
    run = blank(length)
    m = run.model
    with torch.no_grad():
        m.encoder.embed.pos.weight[:16, :16] = torch.eye(16)
        n_tok = len(run.task.vocab)
        m.encoder.embed.tok.weight[:, 16:16 + n_tok] = torch.eye(n_tok)
        m.encoder.embed.tok.weight[0] = 0  # <pad>
        attn = m.encoder.stack.blocks[0].attn
        attn.kv.weight[:32, :32] = torch.eye(32)
        attn.kv.weight[32:, :32] = torch.eye(32)
    return run


def set_queries(run, where=None, scale: float = 40.0, same_token: bool = False) -> None:
    """Queries that pick, for position ``i``, the key at position ``where(i)`` (or, with
    ``same_token``, keys holding the query's token at another position); none: uniform."""
    attn = run.model.encoder.stack.blocks[0].attn
    w = torch.zeros(32, 32)
    if where is not None:
        for i in range(16):
            w[where(i), i] = scale
    if same_token:
        w[16:, 16:] = scale * torch.eye(16)
        w[:16, :16] = -scale * torch.eye(16)
    with torch.no_grad():
        attn.q.weight.copy_(w)
