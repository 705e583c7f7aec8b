"""Model invariants: causal models ignore the future, no positional encoding means
permutation equivariance, padding changes nothing, every layout runs."""

import pytest
import torch
import torch.nn.functional as F

from toyformer import ConfigError, ModelConfig, build_model, get_task, record_attention
from toyformer.data.batches import Batch, format_batch
from toyformer.models.attention import Attention, self_attention_mask
from toyformer.models.kernels import few_keys_attention

TASK = get_task("reverse", length=6)


def model_for(layout="tagger", **cfg):
    torch.manual_seed(0)
    base = {"d_model": 32, "n_heads": 4, "n_layers": 2, "d_ff": 64}
    return build_model(ModelConfig(**{**base, **cfg}), layout, TASK, (16, 16)).eval()


def tokens(n=4, t=6, seed=0):
    return torch.randint(5, len(TASK.vocab), (n, t), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_causal_model_ignores_future_tokens(norm):
    model = model_for("causal", norm=norm)
    x = tokens()
    y = x.clone()
    y[:, 4:] = tokens(t=2, seed=1)  # change only the last two positions
    a, b = model.logits(x), model.logits(y)
    assert torch.allclose(a[:, :4], b[:, :4], atol=1e-5)
    assert not torch.allclose(a[:, 4:], b[:, 4:], atol=1e-3)


def test_encoder_without_positions_is_permutation_equivariant():
    model = model_for("tagger", positional="none")
    x = tokens()
    perm = torch.randperm(6, generator=torch.Generator().manual_seed(3))
    out, out_perm = model(Batch(x, x)), model(Batch(x[:, perm], x))
    assert torch.allclose(out[:, perm], out_perm, atol=1e-5)


def test_encoder_with_positions_is_not_equivariant():
    model = model_for("tagger", positional="learned")
    torch.nn.init.normal_(model.encoder.embed.pos.weight)  # make positions matter at init
    x = tokens()
    perm = torch.arange(5, -1, -1)
    assert not torch.allclose(model(Batch(x, x))[:, perm], model(Batch(x[:, perm], x)), atol=1e-3)


@pytest.mark.parametrize("layout", ["tagger", "causal", "seq2seq"])
@pytest.mark.parametrize("positional", ["none", "sinusoidal", "learned"])
def test_right_padding_does_not_change_real_positions(layout, positional):
    model = model_for(layout, positional=positional)
    ex = TASK.sample(3, torch.Generator().manual_seed(0))
    wide = type(ex)(torch.nn.functional.pad(ex.input, (0, 3)), ex.target)  # 3 extra <pad> columns
    if layout == "tagger":
        a, b = model(format_batch(ex, layout)), model(format_batch(wide, layout))[:, :6]
    elif layout == "causal":  # prompts are left-padded: compare the answer columns
        a, b = model(format_batch(ex, layout))[:, -6:], model(format_batch(wide, layout))[:, -6:]
    else:
        a, b = model(format_batch(ex, layout)), model(format_batch(wide, layout))
    assert torch.isfinite(b).all()
    assert torch.allclose(a, b, atol=1e-5)


def test_layout_that_cannot_fit_is_rejected():
    with pytest.raises(ConfigError, match="allowed layouts: tagger, causal, seq2seq"):
        build_model(ModelConfig(), "classifier", TASK, (6, 6))


def test_attention_is_recorded_under_stable_names():
    model = model_for("seq2seq")
    ex = TASK.sample(2, torch.Generator().manual_seed(0))
    with record_attention(model) as weights:
        model(format_batch(ex, "seq2seq"))
    assert set(weights) == {
        "encoder.blocks.0.attn", "encoder.blocks.1.attn",
        "decoder.blocks.0.attn", "decoder.blocks.1.attn",
        "decoder.blocks.0.cross_attn", "decoder.blocks.1.cross_attn",
    }
    w = weights["decoder.blocks.0.cross_attn"]
    assert w.shape == (2, 4, 7, 6) and torch.allclose(w.sum(-1), torch.ones(2, 4, 7))
    assert all(m.recorder is None for m in model.modules() if hasattr(m, "recorder"))


def test_recorded_path_equals_fused_path():
    model = model_for("causal")
    x = tokens()
    fused = model.logits(x)
    with record_attention(model):
        manual = model.logits(x)
    assert torch.allclose(fused, manual, atol=1e-5)


def test_attention_dropout_path_is_unbiased():
    """While training with dropout on the CPU attention takes the explicit path: averaged over
    many masks it gives the eval-mode (fused kernel, no dropout) output."""
    torch.manual_seed(0)
    attn = Attention(16, 2, dropout=0.3, name="a")
    x = torch.randn(3, 5, 16)
    mask = self_attention_mask(torch.ones(3, 5, dtype=torch.bool), causal=True)
    with torch.no_grad():
        expected = attn.eval()(x, None, mask)
        attn.train()
        draws = torch.stack([attn(x, None, mask) for _ in range(3000)])
    assert not torch.allclose(draws[0], draws[1])
    torch.testing.assert_close(draws.mean(0), expected, atol=0.03, rtol=0)


@pytest.mark.parametrize("bias", [False, True])
def test_few_keys_attention_equals_the_fused_kernel(bias):
    torch.manual_seed(0)
    q, k, v = (torch.randn(4, 2, t, 8, requires_grad=True) for t in (3, 5, 5))
    valid = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0], [1, 1, 1, 1, 0]], dtype=torch.bool)
    mask = valid[:, None, None, :].expand(-1, 1, 3, -1)  # [B, 1, Tq, Tk]
    if bias:
        mask = torch.randn(4, 2, 3, 5).masked_fill(~mask, float("-inf"))
    grad = torch.randn(4, 2, 3, 8)
    outs = []
    for f in (few_keys_attention, lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m)):
        y = f(q, k, v, mask)
        outs.append((y, *torch.autograd.grad(y, (q, k, v), grad)))
    for a, b in zip(*outs):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_attention_uses_few_keys_form_under_compile(monkeypatch):
    from toyformer.models import kernels

    torch.manual_seed(0)
    attn = Attention(16, 2, dropout=0.0, name="a").train()
    x = torch.randn(3, 5, 16)
    mask = self_attention_mask(torch.ones(3, 5, dtype=torch.bool), causal=True)
    expected = attn(x, None, mask)
    calls = []
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    monkeypatch.setattr(kernels, "few_keys_attention", lambda *a: calls.append(a) or few_keys_attention(*a))
    torch.testing.assert_close(attn(x, None, mask), expected, atol=1e-5, rtol=1e-5)
    assert len(calls) == 1


def test_slot_pooling_reads_an_extra_empty_position():
    task = get_task("lookup_table", size=5)
    torch.manual_seed(0)
    model = build_model(ModelConfig(d_model=16, n_heads=2, n_layers=1, pooling="slot", causal_encoder=True,
                                    positional="none"), "classifier", task, (2, 1)).eval()
    ex = task.domain()
    with record_attention(model) as w:
        logits = model(format_batch(ex, "classifier"))
    assert logits.shape == (25, len(task.vocab))
    assert w["encoder.blocks.0.attn"].shape[-1] == 3  # i, j and the slot


def test_tagger_and_masked_accept_an_mlp_head():
    model = model_for("masked", head_hidden=(16,))
    assert [m.out_features for m in model.head if hasattr(m, "out_features")] == [16, len(TASK.vocab)]


@pytest.mark.parametrize("positional", ["learned", "alibi", "rope"])
def test_every_attention_implementation_computes_the_same_model(positional):
    """``model.attention`` chooses how attention is computed, never what: the same weights give
    the same logits and gradients with sdpa, explicit and few_keys."""
    outs = []
    for impl in ("sdpa", "explicit", "few_keys"):
        torch.manual_seed(0)
        model = build_model(ModelConfig(d_model=16, n_heads=2, n_layers=2, positional=positional, attention=impl),
                            "seq2seq", get_task("reverse", length=5), (5, 6))
        batch = format_batch(get_task("reverse", length=5).sample(4, torch.Generator().manual_seed(1)), "seq2seq")
        logits = model(batch)
        logits.sum().backward()
        outs.append([logits.detach()] + [p.grad for p in model.parameters()])
    for other in outs[1:]:
        for a, b in zip(outs[0], other):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_auto_attention_picks_by_device_dropout_and_recording(monkeypatch):
    from toyformer.models.kernels import choose

    q = k = torch.zeros(1, 1, 3, 4)
    assert choose("auto", q, k, 0.0, need_weights=False) == "sdpa"
    assert choose("auto", q, k, 0.1, need_weights=False) == "explicit"  # CPU dropout
    assert choose("sdpa", q, k, 0.0, need_weights=True) == "explicit"  # only explicit returns the weights
    assert choose("few_keys", q, k, 0.0, need_weights=False) == "few_keys"
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    assert choose("auto", q, k, 0.0, need_weights=False) == "few_keys"
