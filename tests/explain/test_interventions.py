"""Ablation and activation patching: removing what the output never reads changes nothing, bit
for bit; every ablation is one forward pass over the whole set; putting every clean activation
into a corrupted run gives the clean output exactly; the scores agree with ``toyformer eval``."""

import pytest
import torch

from conftest import small_config
from runs import reverser
from toyformer import ConfigError, load_run
from toyformer.eval.evaluate import evaluate_config
from toyformer.explain import ablate, components, hook_names, patch, run_with_cache, run_with_hooks
from toyformer.explain.ablation import METHODS
from toyformer.run import build
from toyformer.tasks.base import Examples

LAYOUTS = {
    "classifier": ("count_ones", "classifier", {}),
    "tagger": ("reverse", "tagger", {}),
    "causal": ("reverse", "causal", {"positional": "rope"}),
    "seq2seq": ({"name": "arithmetic", "complexity": 1}, "seq2seq", {"positional": "alibi"}),
    "masked": ("reverse", "masked", {}),
}


def _run(key):
    task, layout, model = LAYOUTS[key]
    return build(small_config(task, layout, model={"n_layers": 2, **model}))


@pytest.mark.parametrize("key", list(LAYOUTS))
def test_ablating_what_the_output_does_not_read_changes_nothing_bit_for_bit(key):
    run = _run(key)
    attn = next(m for m in run.model.modules() if type(m).__name__ == "Attention")
    ff = next(m for m in run.model.modules() if type(m).__name__ == "FeedForward")
    with torch.no_grad():
        dh = attn.d_head
        attn.out.weight[:, dh:2 * dh] = 0  # head 1 is never read
        ff.down.weight.zero_()
        ff.down.bias.zero_()  # this feed-forward block adds nothing
    result = ablate(run, n=48)
    unread = {f"{attn.name} head 1", ff.hook_name}
    rows = [r for r in result["rows"] if r["component"] in unread]
    assert len(rows) == 2 * len(METHODS)
    for r in rows:
        assert (r["d_exact_match"], r["d_token_acc"], r["d_loss"]) == (0.0, 0.0, 0.0), r
    # ... and at the level of the logits
    x = run.splits.test[:8]
    clean = run_with_hooks(run, x, {})
    zero_head = run_with_hooks(run, x, {f"{attn.name}.z": lambda z, n: z.index_fill(2, torch.tensor([1]), 0.0)})
    assert torch.equal(clean, zero_head)


def test_every_ablation_is_one_forward_pass_over_the_whole_set():
    run = _run("tagger")
    sizes = []
    handle = run.model.register_forward_pre_hook(lambda m, args: sizes.append(args[0].inputs.shape[0]))
    try:
        result = ablate(run, n=40)
    finally:
        handle.remove()
    n_comp = len(components(run.model))
    assert len(result["rows"]) == n_comp * len(METHODS)
    # the intact model, then per method one pass to read the replacements (one row is enough for
    # zeros; the validation set for means and resamples) and one pass per component
    n_ref = result["n_reference"]
    assert sizes == [40] + [1] + [40] * n_comp + [n_ref] + [40] * n_comp + [n_ref] + [40] * n_comp


def test_the_ablation_table_is_sorted_by_effect_and_the_reverser_needs_its_attention():
    run = load_run(reverser())
    result = ablate(run, n=128)
    effects = [max(abs(r["d_exact_match"]), abs(r["d_token_acc"])) for r in result["rows"]]
    assert effects == sorted(effects, reverse=True)
    assert result["baseline"]["exact_match"] == 1.0
    top = result["rows"][0]
    assert top["component"].startswith("encoder.blocks.0.attn") and top["exact_match"] < 0.1
    with pytest.raises(ConfigError, match="unknown ablation method 'half'; valid: zero, mean, resample"):
        ablate(run, methods=["half"])


@pytest.mark.parametrize("key", list(LAYOUTS))
def test_scores_agree_with_evaluation(key):
    run = _run(key)
    ex = run.splits.test[:64]
    result = ablate(run, n=64, methods=["zero"])
    ev = evaluate_config(run.model, ex, run.config, run.device)
    for metric in ("exact_match", "token_acc", "loss"):
        assert result["baseline"][metric] == pytest.approx(ev[metric], abs=1e-5)


def test_a_trained_decoders_exact_match_is_its_greedy_exact_match():
    """Teacher-forced exact match (one pass) equals greedy exact match, right and wrong rows alike."""
    cfg = small_config({"name": "lookup_table", "size": 6}, "causal", train={"steps": 150, "lr": 1e-2},
                       eval={"every": 50})
    from toyformer import train

    run = train(cfg)
    result = ablate(run, n=36, methods=["zero"])
    ev = evaluate_config(run.model, run.splits.test[:36], run.config, run.device)
    assert 0.0 < ev["exact_match"] and result["baseline"]["exact_match"] == ev["exact_match"]


@pytest.mark.parametrize("key", list(LAYOUTS))
def test_patching_every_clean_activation_restores_the_clean_output_exactly(key):
    run = _run(key)
    test = run.splits.test
    lengths = (test.input != 0).sum(1)
    rows = (lengths == lengths[0]).nonzero().flatten()[:4]
    clean = test[rows[:2]]
    corrupt = Examples(test.input[rows[2:4]], clean.target)
    names = [n for n in hook_names(run) if n != "logits"]
    clean_logits, cache = run_with_cache(run, clean, names)
    replace = {n: (lambda x, name: cache[name]) for n in names}
    assert torch.equal(run_with_hooks(run, corrupt, replace), clean_logits)
    # the input of the first block alone brings everything back
    first = [n for n in names if n.endswith("blocks.0.resid_pre")]
    plain = run_with_hooks(run, clean, {})
    _, firsts = run_with_cache(run, clean, first)
    got = run_with_hooks(run, corrupt, {n: (lambda x, name: firsts[name]) for n in first})
    assert torch.equal(got, plain)


def test_patching_finds_the_changed_token_and_the_mirrored_position():
    run = load_run(reverser())
    p = patch(run, "3 1 4 1 5", "3 1 4 1 9")
    layer0, layer1 = p["residual"]["restored"]
    assert p["residual"]["layers"] == ["encoder.blocks.0.resid_pre", "encoder.blocks.0.resid_post"]
    assert layer0[4] == pytest.approx(1.0) and max(abs(v) for v in layer0[:4]) < 1e-6
    assert layer1[0] == pytest.approx(1.0, abs=0.05)  # the first answer reads the last input
    assert p["clean_logprob"] > p["corrupt_logprob"]
    default = patch(run, n=16)
    assert default["n"] == 16 and len(default["heads"]) == 2


def test_patching_needs_inputs_of_equal_length():
    run = load_run(reverser())
    with pytest.raises(ConfigError, match="same number of tokens"):
        patch(run, "3 1 4 1 5", "3 1 4")
    with pytest.raises(ConfigError, match="needs both a clean and a corrupted input"):
        patch(run, "3 1 4 1 5", None)
