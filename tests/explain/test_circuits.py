"""Circuits: the new hook points compute what the model computes; the graph reads only what came
before; path patching agrees with ablation where both apply and changes nothing where it should;
the circuit of a compiled program is exactly the program's graph under every ablation; the
search's bookkeeping (backups, groups) follows its numbers."""

import pytest
import torch

from conftest import small_config
from toyformer import ConfigError
from toyformer.explain import ablate
from toyformer.explain.ablation import METHODS
from toyformer.explain.circuit import Search, circuit
from toyformer.explain.data import forward, paired, score
from toyformer.explain.graph import build_graph
from toyformer.explain.groups import _judge, role_groups
from toyformer.explain.hooks import run_with_cache, run_with_hooks
from toyformer.explain.paths import Runner
from toyformer.explain.truth.programs import compiled
from toyformer.explain.truth.score import roc_auc, scored
from toyformer.inspect.capture import subject
from toyformer.run import build

LAYOUTS = {
    "tagger": ("reverse", "tagger", {}),
    "causal": ("reverse", "causal", {"positional": "rope"}),
    "seq2seq": ({"name": "arithmetic", "complexity": 1}, "seq2seq", {"norm": "pre"}),  # its default is post-norm
    "classifier": ("count_ones", "classifier", {}),
}


def _run(key, **model):
    task, layout, extra = LAYOUTS[key]
    return build(small_config(task, layout, model={"n_layers": 2, **extra, **model}))


@pytest.mark.parametrize("key", list(LAYOUTS))
def test_q_and_result_are_the_projections_and_the_results_sum_to_the_output(key):
    run = _run(key)
    block = (run.model.decoder if key == "causal" else run.model.encoder).stack.blocks[1]
    attn = block.attn
    names = [f"{attn.name}.{p}" for p in ("q_in", "q", "result", "out")]
    _, cache = run_with_cache(run, run.splits.test[:4], names=names)
    normed = block.norm1(cache[f"{attn.name}.q_in"][:, :, 0])  # every head reads the same residual
    q = (normed @ attn.q.weight.T + attn.q.bias).view(*normed.shape[:2], attn.n_heads, -1)
    if key != "causal":  # RoPE rotates the queries after the projection
        torch.testing.assert_close(cache[f"{attn.name}.q"], q, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cache[f"{attn.name}.result"].sum(2) + attn.out.bias, cache[f"{attn.name}.out"],
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("key", list(LAYOUTS))
def test_changing_one_heads_input_changes_that_head_alone(key):
    run = _run(key)
    module = "decoder.blocks.0.attn" if key == "causal" else "encoder.blocks.0.attn"
    x = run.splits.test[:4]

    def bump(t, name):  # not a constant: the norm would remove it
        t = t.clone()
        t[:, :, 1] += 3.0 * torch.randn(t[:, :, 1].shape, generator=torch.Generator().manual_seed(0))
        return t

    _, before = run_with_cache(run, x, names=[f"{module}.z"])
    logits = {}

    def keep(t, name):
        logits["z"] = t.detach()

    run_with_hooks(run, x, {f"{module}.v_in": bump, f"{module}.z": keep})
    changed = (logits["z"] - before[f"{module}.z"]).abs().amax((0, 1, 3))  # per head
    assert changed[1] > 1e-3 and changed[0] < 1e-6


@pytest.mark.parametrize("key", list(LAYOUTS))
def test_every_reader_reads_only_writers_before_it(key):
    g = build_graph(_run(key).model, LAYOUTS[key][1])
    for w, r in g.edges:
        wr, rd = g.writers[w], g.readers[r]
        assert wr.stream == rd.stream and wr.order < rd.order
    heads = sum(1 for w in g.writers if w.kind == "head")
    assert heads == (8 if key == "seq2seq" else 4) + (4 if key == "seq2seq" else 0)
    assert sum(1 for r in g.readers if r.kind == "output") == 1
    assert g.separable


def test_ablating_every_edge_out_of_a_head_is_ablating_the_head():
    run = _run("tagger")
    s = subject(run)
    scored_in, refs = paired(s, 64)
    g = build_graph(run.model, "tagger")
    runner = Runner(run.model, g, scored_in)
    table = {(r["component"], r["method"]): r for r in ablate(run, n=64)["rows"]}
    w = next(i for i, wr in enumerate(g.writers) if wr.name == "encoder.blocks.0.attn head 1")
    for method in METHODS:
        values = runner.ablated(method, refs, seed=0)
        out_edges = [e for e, (u, _) in enumerate(g.edges) if u == w]
        by_edges = score(runner.without(values, edges=out_edges), scored_in.batch.labels)
        by_node = score(runner.without(values, writers=[w]), scored_in.batch.labels)
        row = table[("encoder.blocks.0.attn head 1", method)]
        assert by_edges["loss"] == pytest.approx(by_node["loss"], rel=1e-4, abs=1e-5)
        assert by_node["loss"] == pytest.approx(row["loss"], rel=1e-4, abs=1e-5)


def test_an_edge_that_carries_the_same_value_changes_nothing():
    run = _run("causal")
    inp, _ = paired(subject(run), 32)
    g = build_graph(run.model, "causal")
    runner = Runner(run.model, g, inp)
    itself = runner.ablated("resample", inp, rows=torch.arange(len(inp)))  # each row resampled from itself
    intact = forward(run.model, inp)
    patched = runner.run(itself, edge_mask=torch.ones(len(g.edges)))
    torch.testing.assert_close(patched, intact, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("program", ["hist", "frac_prevs"])
def test_the_circuit_of_a_compiled_program_is_its_graph(program):
    model, task, truth = compiled(program)
    g = torch.Generator().manual_seed(1)
    test, ref = task.sample(128, g), task.sample(128, g)
    c = circuit(model, task=task, layout="tagger", inputs=test, reference=ref)
    assert c["baseline"]["exact_match"] == 1.0
    for method, s in scored(c, truth).items():
        assert s["exact"] and s["edge_auc"] == 1.0 and s["node_auc"] == 1.0, (method, s)
        assert c["by_method"][method]["complete"] and c["by_method"][method]["is_faithful"]
        assert s["cost"]["backward"] == 5 and s["cost"]["forward"] > 5
    assert all(len(pair) == 2 and "hook_" in pair[0] for pair in c["circuit"]["interpbench"])


def test_a_post_norm_model_gets_a_circuit_of_nodes():
    run = _run("tagger", norm="post")
    c = circuit(run, n=32, methods=["mean"])
    assert not c["separable"] and c["by_method"]["mean"]["units"] == "nodes" and c["circuit"]["edges"] == []


def test_bad_arguments_are_one_line():
    run = _run("tagger")
    with pytest.raises(ConfigError, match="unknown ablation method 'noise'; valid: zero, mean, resample"):
        circuit(run, methods=["noise"])
    with pytest.raises(ConfigError, match="allowed: 0 < threshold <= 1"):
        circuit(run, threshold=1.5)
    lstm = build(small_config("reverse", model={"family": "lstm", "n_layers": 1}))
    with pytest.raises(ConfigError, match="circuits need a transformer"):
        circuit(lstm, n=8)


class _Fake(Search):
    """A search whose measure is a table: ablating node 'a' or 'b' alone costs little, both a lot."""

    def __init__(self):
        self.g = build_graph(_run("tagger").model, "tagger")
        self.units, self.target = len(self.g.edges), 0.99

    def _ablated_with(self, kept, writers):
        names = {self.g.writers[w].name for w in writers}
        both = {"encoder.blocks.0.attn head 0", "encoder.blocks.0.attn head 1"} <= names
        return 0.0 if both else 0.9 if names else 1.0

    def _nodes(self, kept):
        return ["input", "encoder.blocks.1.attn head 0"]


def test_backups_are_added_until_the_answer_is_destroyed():
    backups, left = _Fake()._backups(set(), 1.0, 0.0, 1.0)
    names = [_Fake().g.writers[w].name for w in backups]
    assert left == 0.0 and set(names) == {"encoder.blocks.0.attn head 0", "encoder.blocks.0.attn head 1"}


def test_a_group_is_redundant_when_together_is_much_more_than_alone():
    base = {"exact_match": 1.0, "token_acc": 1.0}
    g = {"by_method": {"mean": {"joint": {"exact_match": 0.0}, "alone": [{"exact_match": 0.98}, {"exact_match": 0.84},
                                                                          {"exact_match": 1.0}, {"exact_match": 1.0}]}}}
    _judge(g, "exact_match", base)
    assert g["redundant"] and g["joint_drop"] == 1.0 and g["max_alone_drop"] == pytest.approx(0.16)
    g["by_method"]["mean"]["joint"]["exact_match"] = 0.7
    _judge(g, "exact_match", base)
    assert not g["redundant"] and g["used"]
    roles = [{"module": "m", "head": h, "role": r, "attention": a} for h, r, a in
             [(0, "mirror", None), (1, "mirror", None), (2, "mixed", {"describes": "offset", "offset": {"offset": -3}}),
              (3, "mixed", {"describes": "offset", "offset": {"offset": -3}})]]
    found = role_groups(roles)
    assert [(x["label"], x["heads"]) for x in found] == [("mirror", [0, 1]), ("offset", [2, 3])]


def test_roc_auc_counts_ties_half():
    assert roc_auc([1, 0], [True, False]) == 1.0 and roc_auc([0, 1], [True, False]) == 0.0
    assert roc_auc([0.5, 0.5], [True, False]) == 0.5 and roc_auc([1, 1], [True, True]) is None
