"""Probes, the logit lens and direct logit attribution: a residual that holds a one-hot position
is read at 100%; the lens at the last layer is the model; the direct contributions add up to the
logit."""

import pytest
import torch

from conftest import small_config
from runs import positions_and_tokens, reverser
from toyformer import ConfigError, load_run
from toyformer.explain import ablate, direct_logit_attribution, fit_probe, logit_lens, probe
from toyformer.explain.probes import readable_from
from toyformer.run import build


def test_a_probe_on_one_hot_features_is_exact():
    x = torch.eye(5).repeat(20, 1)
    y = torch.arange(5).repeat(20)
    assert torch.equal(fit_probe(x, y, torch.eye(5)), torch.arange(5))


def test_a_residual_holding_a_one_hot_position_reads_at_100_percent():
    run = positions_and_tokens(6)  # embeddings: one-hot position + one-hot token
    rows = probe(run, n=128)
    at = {(r["target"], r["layer"]): r for r in rows}
    assert at[("position", 0)]["accuracy"] == 1.0 and at[("token", 0)]["accuracy"] == 1.0
    assert at[("position", 0)]["chance"] < 0.3
    assert set(at[("position", 0)]["by_position"]) == set(range(6))
    assert readable_from(rows, "encoder", "position") == 0


def test_probes_cover_every_stream_layer_and_target():
    run = build(small_config({"name": "arithmetic", "complexity": 1}, "seq2seq", model={"n_layers": 2}))
    rows = probe(run, n=64, iters=10)
    streams = {(r["stream"], r["layer"]) for r in rows}
    assert streams == {(s, i) for s in ("encoder", "decoder") for i in range(3)}
    assert {r["target"] for r in rows if r["stream"] == "decoder"} >= {"position", "answer", "mirror_token"}
    with pytest.raises(ConfigError, match="unknown probe target 'parity'; valid: position, token, previous_token, "
                                          "mirror_token, answer"):
        probe(run, targets=["parity"])


def test_the_reverser_holds_the_mirrored_token_after_its_attention():
    rows = probe(load_run(reverser()), n=256)
    acc = {(r["target"], r["layer"]): r["accuracy"] for r in rows}
    assert acc[("mirror_token", 0)] < 0.5 and acc[("mirror_token", 1)] > 0.95
    assert acc[("answer", 1)] > 0.95


@pytest.mark.parametrize("layout, task", [("tagger", "reverse"), ("causal", "reverse"), ("classifier", "count_ones"),
                                          ("seq2seq", {"name": "arithmetic", "complexity": 1})])
def test_the_lens_at_the_last_layer_is_the_model(layout, task):
    run = build(small_config(task, layout, model={"n_layers": 2}))
    lens = logit_lens(run, n=64)
    assert [r["layer"] for r in lens] == [0, 1, 2]
    base = ablate(run, n=64, methods=["zero"])["baseline"]
    for metric in ("exact_match", "token_acc", "loss"):
        assert lens[-1][metric] == pytest.approx(base[metric], abs=1e-5)


@pytest.mark.parametrize("layout, task, model", [
    ("tagger", "reverse", {"positional": "sinusoidal"}),
    ("causal", "reverse", {}),
    ("classifier", "count_ones", {"pooling": "mean"}),
    ("classifier", {"name": "lookup_table", "size": 5}, {"pooling": "slot", "causal_encoder": True}),
    ("seq2seq", {"name": "arithmetic", "complexity": 1}, {"norm": "pre"}),  # its default is post-norm
])
def test_direct_contributions_add_up_to_the_logit(layout, task, model):
    run = build(small_config(task, layout, model={"n_layers": 2, "init": "torch", **model}))  # large weights
    d = direct_logit_attribution(run, n=32)
    scale = sum(abs(r["contribution"]) for r in d["rows"])
    assert scale > 0.1
    assert abs(d["residual"]) < 1e-4 * scale, d
    kinds = {r["kind"] for r in d["rows"]}
    assert {"embed", "head", "ff", "bias"} <= kinds


@pytest.mark.parametrize("model, why", [({"norm": "post"}, "post-norm"), ({"head_hidden": (16,)}, "MLP"),
                                        ({"pooling": "flatten"}, "flatten")])
def test_direct_attribution_says_why_it_does_not_apply(model, why):
    run = build(small_config("count_ones", "classifier", model=model))
    assert why in direct_logit_attribution(run, n=8)["skipped"]
