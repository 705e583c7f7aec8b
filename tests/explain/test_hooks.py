"""Hook points: a stable name for every activation of every layout and positional scheme; with
nothing attached the model computes what it computed before, bit for bit; a hook can read and
replace; a bad name is one line listing the valid ones."""

import pytest
import torch

from conftest import small_config
from toyformer import ConfigError, record_attention
from toyformer.data import format_batch
from toyformer.explain import hook_names, run_with_cache, run_with_hooks
from toyformer.models import hooks
from toyformer.run import build

LAYOUTS = {
    "classifier": ("count_ones", "classifier", {}),
    "classifier-slot": ({"name": "lookup_table", "size": 5}, "classifier",
                        {"pooling": "slot", "causal_encoder": True, "positional": "none"}),
    "tagger": ("reverse", "tagger", {}),
    "causal": ("reverse", "causal", {}),
    "seq2seq": ({"name": "arithmetic", "complexity": 1}, "seq2seq", {}),
    "masked": ("reverse", "masked", {}),
}
SCHEMES = ["none", "sinusoidal", "learned", "rope", "alibi", "relative"]


def _run(key, **model):
    task, layout, extra = LAYOUTS[key]
    return build(small_config(task, layout, model={"n_layers": 2, **extra, **model}))


def _batch(run, n=6):
    return format_batch(run.splits.test[:n], run.config.layout, run.config.data.sep)


def _logits(model, batch):
    model.eval()
    with torch.no_grad():
        return model(batch)


@pytest.mark.parametrize("key", list(LAYOUTS))
def test_every_layout_names_every_activation(key):
    run = _run(key)
    names = hook_names(run)
    stacks = ["decoder"] if key == "causal" else ["encoder", "decoder"] if key == "seq2seq" else ["encoder"]
    for stack in stacks:
        for i in range(2):
            for point in ("resid_pre", "resid_mid", "resid_post", "attn.pattern", "attn.z", "attn.out", "ff.hidden",
                          "ff.out"):
                assert f"{stack}.blocks.{i}.{point}" in names
        assert f"{stack}.embed.tok" in names and f"{stack}.final_norm" in names
    if key == "seq2seq":
        assert "decoder.blocks.1.cross_attn.pattern" in names and "decoder.blocks.0.resid_cross" in names
    assert names[-1] == "logits" and len(set(names)) == len(names)
    assert ("pooled" in names) == key.startswith("classifier")


@pytest.mark.parametrize("key", list(LAYOUTS))
def test_shapes_of_the_cached_activations(key):
    run = _run(key)
    logits, cache = run_with_cache(run, run.splits.test[:3])
    d, h = run.config.model.d_model, run.config.model.n_heads
    for name, x in cache.items():
        if name.endswith("pattern"):
            assert x.dim() == 4 and x.shape[:2] == (3, h)
            torch.testing.assert_close(x.sum(-1), torch.ones_like(x.sum(-1)))
        elif name.endswith(".scores"):
            assert x.dim() == 4 and x.shape[:2] == (3, h)
            torch.testing.assert_close(x.softmax(-1), cache[name.replace("scores", "pattern")])
        elif name.endswith((".z", ".q", ".k", ".v")):
            assert x.shape[0] == 3 and x.shape[2:] == (h, d // h)
        elif name.endswith((".q_in", ".k_in", ".v_in", ".result")):
            assert x.shape[0] == 3 and x.shape[2:] == (h, d)
        elif name.endswith("ff.hidden"):
            assert x.shape[-1] == run.config.model.d_ff
        elif name == "logits":
            assert torch.equal(x, logits)
        elif name == "pooled":
            assert x.shape == (3, d)
        else:
            assert x.shape[0] == 3 and x.shape[-1] == d and x.dim() == 3, name


@pytest.mark.parametrize("key", list(LAYOUTS))
def test_with_no_hook_attached_outputs_are_bit_identical(key):
    """Attached hooks that return nothing leave every bit; after they are gone, too."""
    run = _run(key)
    batch = _batch(run)
    before = _logits(run.model, batch)
    names = [n for n in hook_names(run) if not n.endswith("pattern")]  # a pattern hook takes the explicit path
    with hooks(run.model, {n: (lambda x, name: None) for n in names}):
        during = _logits(run.model, batch)
    after = _logits(run.model, batch)
    assert torch.equal(before, during) and torch.equal(before, after)
    assert all(getattr(m, "tap", None) is None for m in run.model.modules())


@pytest.mark.parametrize("scheme", SCHEMES)
def test_every_positional_scheme_is_hookable(scheme):
    run = _run("tagger", positional=scheme)
    batch = _batch(run)
    before = _logits(run.model, batch)
    logits, cache = run_with_cache(run, run.splits.test[:6])
    torch.testing.assert_close(logits, before, atol=1e-5, rtol=1e-5)  # the pattern took the explicit path
    assert ("encoder.embed.pos" in cache) == (scheme in ("sinusoidal", "learned"))
    tok, pos = cache["encoder.embed.tok"], cache.get("encoder.embed.pos", 0)
    torch.testing.assert_close(cache["encoder.blocks.0.resid_pre"], tok + pos)


def test_a_hook_replaces_the_activation_downstream():
    run = _run("tagger")
    x = run.splits.test[:4]
    clean = run_with_hooks(run, x, {})
    zero_ff = run_with_hooks(run, x, {"encoder.blocks.1.ff.out": lambda a, name: torch.zeros_like(a)})
    assert not torch.equal(clean, zero_ff)
    same = run_with_hooks(run, x, {"logits": lambda a, name: a * 0 + 7})
    assert (same == 7).all()


def test_nested_hooks_add_up_and_unwind():
    run = _run("tagger")
    seen = []
    with hooks(run.model, {"encoder.blocks.0.resid_post": lambda x, n: seen.append("outer")}):
        with hooks(run.model, {"encoder.blocks.0.resid_post": lambda x, n: seen.append("inner")}):
            _logits(run.model, _batch(run))
        _logits(run.model, _batch(run))
    assert seen == ["outer", "inner", "outer"]
    assert all(getattr(m, "tap", None) is None for m in run.model.modules())


def test_record_attention_rides_on_the_pattern_hooks():
    run = _run("seq2seq")
    with record_attention(run.model) as weights:
        _logits(run.model, _batch(run))
    assert sorted(weights) == sorted(n.removesuffix(".pattern") for n in hook_names(run) if n.endswith("pattern"))


def test_an_unknown_hook_name_is_one_line_listing_the_valid_ones():
    run = _run("tagger")
    with pytest.raises(ConfigError) as err:
        run_with_cache(run, run.splits.test[:2], names=["encoder.blocks.0.attn.hook_pattern"])
    msg = str(err.value)
    assert "\n" not in msg and "unknown hook name 'encoder.blocks.0.attn.hook_pattern'" in msg
    assert "encoder.blocks.0.attn.pattern" in msg and "logits" in msg
    with pytest.raises(ConfigError, match="valid: encoder.embed.tok"):
        with hooks(run.model, {"nope": lambda x, n: None}):
            pass
    assert all(getattr(m, "tap", None) is None for m in run.model.modules())


@pytest.mark.parametrize("model, terms", [({"positional": "abacus"}, ["tok", "pos"]),
                                          ({"positional": "learned", "place_embedding": True}, ["tok", "place", "pos"]),
                                          ({"positional": "rope", "digit_positions": True}, ["tok"])])
def test_digit_schemes_name_each_added_term(model, terms):
    run = build(small_config({"name": "addition", "digits": 2}, "causal", model={"n_layers": 1, **model}))
    names = [n for n in hook_names(run) if n.startswith("decoder.embed.")]
    assert names == [f"decoder.embed.{t}" for t in terms]
    batch = _batch(run)
    before = _logits(run.model, batch)
    with hooks(run.model, {n: (lambda x, name: None) for n in hook_names(run) if not n.endswith("pattern")}):
        assert torch.equal(_logits(run.model, batch), before)
