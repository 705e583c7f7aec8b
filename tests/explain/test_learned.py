"""Learning tests: trained runs whose mechanism is known, explained by measurement.

- R2: a tagger that reverses has a mirror head, and ablating it destroys the answers.
- R1: a 2-layer causal model without positional encoding tells ``(i, j)`` from ``(j, i)``
  although after one layer the answer slot cannot (patching its residual between the two
  orders restores nothing); the order sits at the token positions after layer 1 (the previous
  token becomes readable there) and reaches the slot in layer 2.
- Modular addition set up to grok (a small training fraction, strong weight decay, as Nanda et
  al. 2023) is flagged with its memorisation and generalisation steps and its key frequencies;
  the same task with most of the table to learn from generalises without memorising first and
  is not called grokked.
"""

import pytest

from runs import reverser
from toyformer import RunConfig, load_run, train
from toyformer.experiments.recipes import r1
from toyformer.explain import ablate, explain, head_roles, patch, phases, probe
from toyformer.tasks.base import Examples

pytestmark = pytest.mark.slow


def test_the_reverser_has_a_mirror_head_it_cannot_do_without():
    run = load_run(reverser())
    roles = head_roles(run)
    mirror = [r for r in roles if r["role"] == "mirror"]
    assert mirror and mirror[0]["score"] > 0.8, roles
    rows = ablate(run)["rows"]
    name = f"{mirror[0]['module']} head {mirror[0]['head']}"
    worst = min((r for r in rows if r["component"] == name), key=lambda r: r["exact_match"])
    assert worst["exact_match"] < 0.2
    text = "\n".join(explain(reverser(), write=False)["sentences"])
    assert f"{name} is a mirror head" in text


def test_r1_two_layers_without_positions_carry_the_order_at_the_tokens_then_the_slot(tmp_path):
    cfg = RunConfig.from_dict(r1.PADDED).with_overrides(["model.n_layers=2", "eval.every=1000"])
    run = train(cfg)
    assert run.summary["test_exact_match"] > 0.95
    dom = run.task.domain()
    cells = dom[~run.task.symmetric(dom.input)][:300]
    p = patch(run, cells, Examples(cells.input.flip(1), cells.target))  # (i, j) into (j, i)
    grid = dict(zip(p["residual"]["layers"], p["residual"]["restored"]))
    after1, after2 = grid["encoder.blocks.0.resid_post"], grid["encoder.blocks.1.resid_post"]
    assert abs(after1[2]) < 1e-4  # the slot after one layer: the same for both orders (R1's 1-layer ceiling)
    assert after1[0] > 0.1 and after1[1] > 0.1  # the order sits at the token positions
    assert after2[2] == pytest.approx(1.0)  # and reaches the slot in layer 2
    acc = {(r["target"], r["layer"]): r for r in probe(run, n=900)}
    prev0, prev1 = acc[("previous_token", 0)], acc[("previous_token", 1)]
    assert prev0["accuracy"] <= 2 * prev0["chance"] + 0.01  # the embeddings hold no order
    assert prev1["accuracy"] > 10 * prev1["chance"]  # after one layer the previous token is there


GROK = {"task": {"name": "modular_arithmetic"}, "data": {"train_size": 250, "batch_size": 64},
        "train": {"steps": 3000, "lr": 3e-3, "schedule": "constant", "weight_decay": 1.0, "keep_checkpoints": "log"},
        "eval": {"target": 0.95}}


def test_a_run_set_up_to_grok_is_flagged_with_its_steps_and_key_frequencies(tmp_path):
    run = train(RunConfig.from_dict(GROK), out_dir=tmp_path / "grok")
    ph = phases(run.metrics)
    assert ph["grokked"], ph
    assert ph["memorised"]["step"] < ph["generalised"]["step"]
    result = explain(tmp_path / "grok", over_training=True, n=256)
    f = result["fourier"]
    assert f["key_frequencies"] and f["restricted_loss"] < f["excluded_loss"]
    shares = [p["fourier"]["key_share"] for p in result["over_training"]["points"]]
    assert shares[-1] > shares[0]  # the spectrum concentrates over training
    text = "\n".join(result["sentences"])
    assert f"at step {ph['memorised']['step']} training exact match" in text and "(grokking)" in text
    assert "The number embeddings concentrate on frequencies" in text


def test_a_run_that_generalises_without_memorising_is_not_called_grokked():
    run = train(RunConfig.from_dict({"task": {"name": "modular_arithmetic"}}))  # most of the table to learn from
    ph = phases(run.metrics)
    assert ph["generalised"] is not None and ph["memorised"] is None and not ph["grokked"]
