"""Ground truths: a compiled program computes, variable by variable, what the program's
interpreter computes; its circuit, found under zero, mean and resample ablation, is exactly its
graph (edge and node ROC AUC 1.000); a planted circuit trained by SIIT is found (edge ROC AUC at
least 0.9) and its heads get their planted roles; a task of a plant draws what it says."""

import pytest
import torch

from toyformer import ConfigError
from toyformer.explain.circuit import circuit
from toyformer.explain.data import cached, prepare
from toyformer.explain.roles import head_roles
from toyformer.explain.truth import PLANTS, PROGRAMS, compiled, label, scored, train_plant
from toyformer.explain.truth.compiler import Layout
from toyformer.explain.truth.plants import Induction, Neighbours
from toyformer.explain.truth.rasp import run, truth_edges
from toyformer.inspect.capture import Subject, subject


def test_a_compiled_program_holds_every_variable_the_interpreter_computes():
    model, task, _ = compiled("hist")
    ex = task.sample(200, torch.Generator().manual_seed(3))
    rows = [[task.vocab.tokens[i] for i in r] for r in ex.input.tolist()]
    env = run(task.program, rows)
    lay = Layout(task.program)
    _, acts = cached(model, prepare(subject(model, task, "tagger"), ex), ["encoder.blocks.0.resid_mid",
                                                                         "encoder.blocks.0.resid_post"])
    frac = acts["encoder.blocks.0.resid_mid"][..., lay.dims["frac"]]
    torch.testing.assert_close(frac.double(), env["frac"], atol=1e-5, rtol=0)
    count = acts["encoder.blocks.0.resid_post"][..., lay.dims["count"]].argmax(-1)
    assert torch.equal(count, env["count"])


def test_the_truth_is_the_programs_dataflow_without_positions():
    model, task, truth = compiled("reverse")
    assert ("input", "encoder.blocks.0.attn head 0 values") in truth  # the length counts the tokens
    assert ("encoder.blocks.0.ff", "encoder.blocks.1.attn head 0 queries") in truth  # the mirror index
    assert not any(r.endswith("keys") for _, r in truth)  # the keys read positions only
    assert truth_edges(task.program) and len(truth) == 5
    with pytest.raises(ConfigError, match="unknown program 'rev'; valid: reverse, sort, hist, frac_prevs, dyck"):
        compiled("rev")


def test_the_plant_tasks_draw_what_they_say():
    ex = Induction().sample(64, torch.Generator().manual_seed(0))
    x = ex.input
    assert all(len(set(row[:6])) == 6 for row in x.tolist())
    k = (x[:, :6] == x[:, 6:]).long().argmax(1)
    assert torch.equal(x.gather(1, (k + 1)[:, None]), ex.target)
    nb = Neighbours()
    ex = nb.sample(64, torch.Generator().manual_seed(0))
    d = nb.digits(ex.input)
    assert int(nb.digits(ex.target)[0, 2]) == (int(d[0, 1]) + int(d[0, 3])) % 5
    assert int(nb.digits(ex.target)[0, 0]) == int(d[0, 1])


@pytest.mark.slow
@pytest.mark.parametrize("program", list(PROGRAMS))
def test_every_compiled_circuit_is_found_exactly_under_every_ablation(program):
    model, task, truth = compiled(program)
    g = torch.Generator().manual_seed(1)
    c = circuit(model, task=task, layout="tagger", inputs=task.sample(256, g), reference=task.sample(256, g))
    assert c["baseline"]["exact_match"] == 1.0
    for method, s in scored(c, truth).items():
        assert s["edge_auc"] == 1.0 and s["node_auc"] == 1.0 and s["exact"], (program, method, s)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(PLANTS))
def test_a_planted_circuit_is_found_and_its_heads_get_their_roles(name):
    model, plant, info = train_plant(name, seed=0)
    assert info["exact_match"] > 0.95 and info["interchange"] > 0.9, info
    g = torch.Generator().manual_seed(7)
    test, ref = plant.task.sample(256, g), plant.task.sample(256, g)
    s = Subject(model, plant.task, plant.layout, plant.sep)
    c = circuit(s, inputs=test, reference=ref)
    for method, r in scored(c, set(plant.edges)).items():
        assert r["edge_auc"] >= 0.9, (name, method, r)
    roles = {f"{r['module']} head {r['head']}": r for r in head_roles(s, inputs=test)}
    assert {h: label(roles[h]) for h in plant.heads} == plant.heads
