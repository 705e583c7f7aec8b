"""Benchmarks (outside src/, run from the repository root): the analytic FLOP count, the
plain-PyTorch baselines, and the command end to end. No timing assertions."""

import json
import platform

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from toyformer.bench.main import main
from toyformer.bench.baselines import BASELINES, CountOnesModel, TableModel, CalculatorModel, FormulaDataset, formulas
from toyformer.bench.flops import batch_flops, forward_flops
from toyformer.bench.peak import peak_gflops
from toyformer import RunConfig, record_attention
from toyformer.data.batches import format_batch
from toyformer.run import build


def test_flops_by_hand():
    # reverse of length 4, tagger, d 8, ff 16, vocabulary 15, one layer, one example:
    # q and out 2*4*8*8 each, keys+values 2*4*8*16, scores and A.V 2 * 2*4*4*8,
    # feed-forward 2 * 2*4*8*16, output layer 2*4*8*15
    hand = 512 + 1024 + 512 + 512 + 2048 + 960
    cfg = RunConfig.from_dict({"task": {"name": "reverse", "length": 4},
                               "model": {"d_model": 8, "n_heads": 2, "n_layers": 1, "d_ff": 16}})
    assert forward_flops(cfg.model, "tagger", vocab_size=15, batch=1, t_in=4) == hand
    assert forward_flops(cfg.model, "tagger", vocab_size=15, batch=3, t_in=4) == 3 * hand


@pytest.mark.parametrize("task,layout,model", [
    ("reverse", "tagger", {}), ("reverse", "masked", {"head_hidden": [24]}), ("arithmetic", "seq2seq", {}),
    ("addition", "causal", {}), ("count_ones", "classifier", {"pooling": "flatten", "head_hidden": [64, 16]}),
    ("lookup_table", "classifier", {"pooling": "slot", "causal_encoder": True}),
])
def test_flops_match_torch_flop_counter(task, layout, model):
    """The analytic count equals torch's own count of every matmul of a forward pass (attention
    recorded, so that its products run as plain matmuls that the counter sees)."""
    cfg = RunConfig.from_dict({"task": task, "layout": layout, "eval": {"val_size": 16, "test_size": 16},
                               "model": {"d_model": 16, "n_heads": 2, "n_layers": 2, "d_ff": 24, **model}})
    run = build(cfg, "cpu")
    batch = format_batch(run.splits.val[:8], layout, cfg.data.sep)
    with record_attention(run.model), FlopCounterMode(display=False) as counter:
        run.model(batch)
    assert batch_flops(cfg, batch, len(run.task.vocab)) == counter.get_total_flops()


def test_baseline_models_shapes():
    assert CountOnesModel()(torch.ones(4, 10, dtype=torch.long)).shape == (4, 20)
    assert TableModel()(torch.randint(30, (5, 2))).shape == (5, 30)
    src, tgt = FormulaDataset(formulas(3))[0]
    assert src.shape == (9,) and tgt.shape == (5,)
    assert CalculatorModel()(src[None], tgt[None]).shape == (1, 5, 15)


def test_formulas_are_right():
    for q, a in formulas(50, seed=1):
        assert eval(q.replace("--", "+")) == int(a)  # noqa: S307 - our own digits and signs


@pytest.mark.parametrize("name", ["r1", "r4"])
def test_baselines_train(name):
    ref = BASELINES[name](seed=0)
    before = [p.detach().clone() for p in ref.model.parameters()]
    assert ref.train_steps(2) == 2 * ref.batch_size
    assert any(not torch.equal(a, b) for a, b in zip(before, ref.model.parameters()))


def test_peak_is_positive():
    r = peak_gflops(n=64, repeats=2)
    assert r["gflops"] > 0 and r["threads"] == torch.get_num_threads()


@pytest.mark.slow
def test_quick_benchmark_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert main(["throughput", "--quick", "--out", str(out), "--markdown", str(tmp_path / "bench.md")]) == 0
    result = json.loads(out.read_text())
    tp = result["throughput"]
    assert set(tp["comparisons"]) == {"r0", "r1", "r4"}
    for comp in tp["comparisons"].values():
        assert comp["contenders"]["pytorch"]["ratio_vs_pytorch"] == 1.0
        assert comp["contenders"]["toyformer fp32"]["samples_per_s"] > 0
    limit = tp["machine_limit"]
    assert limit["peak"]["gflops"] > 0 and limit["train_flops_per_step"] > 0 and limit["peak_rss_mib"] > 0
    assert 0 < limit["contenders"]["fp32"]["fraction_of_peak"]
    assert {"cpu", "torch_threads"} <= set(result["machine"])
    assert "Training throughput" in capsys.readouterr().out and (tmp_path / "bench.md").is_file()


def test_time_to_solve_quick(tmp_path):
    out = tmp_path / "tts.json"
    assert main(["time-to-solve", "--quick", "--tasks", "parity,copy", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["time-to-solve"]["rows"]
    assert [r["task"] for r in rows] == ["parity", "copy"]
    assert all({"solved_at_s", "steps", "test_exact_match", "layout"} <= set(r) for r in rows)


def test_bad_device_is_one_line_error(capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert main(["peak", "--device", "cuda"]) == 2
    assert "allowed here: cpu" in capsys.readouterr().err


def test_toyformer_bench_delegates(tmp_path, capsys):
    from toyformer.cli import main as toyformer_main

    out = tmp_path / "peak.json"
    assert toyformer_main(["bench", "peak", "--quick", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["peak"]["float32"]["gflops"] > 0
    assert "Matrix-multiply peak" in capsys.readouterr().out


def test_toyformer_bench_works_outside_the_repository(tmp_path, monkeypatch, capsys):
    """The benchmarks are part of the installed package: no checkout needed."""
    from toyformer.cli import main as toyformer_main

    monkeypatch.chdir(tmp_path)
    assert toyformer_main(["bench", "peak", "--quick"]) == 0
    assert (tmp_path / "runs" / "benchmarks" / "peak-quick.json").is_file()


def test_kernels_benchmark_times_every_path(tmp_path):
    out = tmp_path / "kernels.json"
    assert main(["kernels", "--quick", "--out", str(out)]) == 0
    result = json.loads(out.read_text())["kernels"]
    assert {tuple(r["times_s"]) for r in result["attention"]} == {("sdpa", "explicit", "few_keys")}
    assert all(r["toyformer_s"] > 0 and r["torch_s"] > 0 for r in result["softmax"] + result["dropout"])


def test_time_to_solve_covers_every_fitting_layout_and_seed(tmp_path):
    from toyformer.bench.time_to_solve import layouts_of

    assert layouts_of("reverse", "all") == ["tagger", "causal", "seq2seq"]  # masked left out
    assert layouts_of("count_ones", "all") == ["classifier", "causal", "seq2seq"]
    assert layouts_of("addition", "all") == ["causal", "seq2seq"]
    out = tmp_path / "tts.json"
    assert main(["time-to-solve", "--quick", "--tasks", "copy", "--layouts", "all", "--seeds", "2",
                 "--out", str(out)]) == 0
    result = json.loads(out.read_text())["time-to-solve"]
    assert [(p["task"], p["layout"], p["seeds"]) for p in result["pairs"]] == [
        ("copy", "tagger", 2), ("copy", "causal", 2), ("copy", "seq2seq", 2)]
    assert {r["cap_s"] for r in result["rows"]} == {None}  # no --cap-s: solved at the defaults comes first


def test_time_to_solve_judges_arithmetic_by_its_own_limit_and_caps_only_when_asked(tmp_path):
    out = tmp_path / "tts.json"
    assert main(["time-to-solve", "--quick", "--tasks", "arithmetic,parity", "--out", str(out)]) == 0
    result = json.loads(out.read_text())["time-to-solve"]
    assert [(p["task"], p["limit_s"]) for p in result["pairs"]] == [("arithmetic", 120.0), ("parity", 30.0)]
    assert all({"test_n", "test_exact_match_ci95", "evidence", "splits"} <= set(r) for r in result["rows"])
    assert main(["time-to-solve", "--quick", "--tasks", "parity", "--cap-s", "5", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["time-to-solve"]["rows"][0]["cap_s"] == 5.0


def stand_in(tmp_path, script: str, code: str):
    """A folder of reference code holding ``script``: a stand-in that prints the reference's output line."""
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / script).write_text(code)
    return ref


def test_the_race_runs_the_reference_code_in_process(tmp_path):
    ref = stand_in(tmp_path, "r1_lookup_table.py",
                   "import os\nprint(f\"r1 2layer_pad steps={os.environ['EPOCHS']} loss=1.0 acc=0.050 steps_per_s=9 "
                   "wall_s=2.0\")\n")
    out = tmp_path / "race.json"
    assert main(["race", "--quick", "--races", "r1", "--reference", str(ref), "--out", str(out)]) == 0
    row = json.loads(out.read_text())["race"]["rows"][0]
    assert row["reference"]["steps"] == 20 and row["reference_acc"] == 0.05 and row["reference_s"] == 2.0
    assert row["toyformer"]["reached_reference_step"] is not None  # 5% is reached at the first evaluation
    assert row["toyformer"]["config"]["eval"]["target"] == 0.999
    (ref / "r1_lookup_table.py").write_text(  # a reference at 100%: toyformer does not stop at 99.9%
        "print('r1 2layer_pad steps=3 loss=0.0 acc=1.000 steps_per_s=9 wall_s=2.0')\n")
    assert main(["race", "--quick", "--races", "r1", "--reference", str(ref), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["race"]["rows"][0]["toyformer"]["config"]["eval"]["target"] == 1.0
    assert main(["race", "--races", "r1", "--reference", str(tmp_path / "nowhere")]) == 2


def test_the_r0_race_states_its_reference_against_the_cap(tmp_path):
    ref = tmp_path / "ref"
    ref.mkdir()
    (ref / "r0_count_ones.py").write_text(
        "import os\nprint(f\"r0 steps={os.environ['STEPS']} loss_last100=2.3 test_acc=0.100 samples_per_s=9 "
        "wall_s=700.0\")\n")
    md = tmp_path / "race.md"
    assert main(["race", "--quick", "--races", "r0", "--reference", str(ref), "--out", str(tmp_path / "r.json"),
                 "--markdown", str(md)]) == 0
    assert "R0's reference ran 20 steps in 700.0 s, OVER its 600 s cap." in md.read_text()


def test_explain_benchmark_times_the_analysis_and_the_hook_points(tmp_path):
    out = tmp_path / "explain.json"
    assert main(["explain", "--quick", "--tasks", "reverse,count_ones", "--out", str(out)]) == 0
    result = json.loads(out.read_text())["explain"]
    assert [r["task"] for r in result["tasks"]] == ["reverse", "count_ones"]
    assert all(r["analysis_s"] > 0 and r["met"] for r in result["tasks"])
    assert {h["model"] for h in result["hooks"]} == {"R1 (2 layers, padded)", "R4 (sinusoidal)", "reverse (defaults)"}
    assert all(h["idle_ms"] > 0 and h["hooked_ms"] > 0 and h["points"] >= 20 for h in result["hooks"])
    assert all(r["circuit_s"] > 0 and r["edges"] > 0 and r["circuit_passes"][1] == 15 for r in result["tasks"])


@pytest.mark.slow
def test_explain_truth_benchmark_scores_compiled_and_planted_circuits(tmp_path):
    out, md = tmp_path / "truth.json", tmp_path / "truth.md"
    assert main(["explain-truth", "--quick", "--seeds", "1", "--out", str(out), "--markdown", str(md)]) == 0
    result = json.loads(out.read_text())["explain-truth"]
    assert [r["program"] for r in result["compiled"]] == ["reverse", "sort", "hist", "frac_prevs", "dyck"]
    for r in result["compiled"]:  # compiled weights need no training: exact even in the quick run
        assert r["exact_match"] == 1.0
        assert all(s["edge_auc"] == 1.0 for m, s in r["by_method"].items() if m in ("zero", "resample"))
    assert [r["plant"] for r in result["planted"]] == ["reverse", "induction", "neighbours"]
    assert result["roles"]["n"] == 5 and 0 <= result["roles"]["ci"][0] <= result["roles"]["ci"][1] <= 1
    text = md.read_text()
    assert "ACDC" in text and "Conmy et al." in text and "Head roles of the planted heads right:" in text
    learned = sum(r["exact_match"] >= 0.95 for r in result["planted"])  # 60 quick steps: most do not learn
    assert (f"Only {learned} of 3 planted models learned their task" in text) == (learned < 3)


@pytest.mark.slow
@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the portable mode is x86-64's")
def test_portable_benchmark_times_every_contender(tmp_path):
    out = tmp_path / "p.json"
    assert main(["portable", "--quick", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["portable"]["models"]
    assert [r["task"] for r in rows] == ["count_ones", "reverse", "arithmetic"]
    assert all(r["portable_over_native_1_thread"] > 0 and len(r["s_per_1000_steps"]) == 3 for r in rows)


def test_hold_benchmark_measures_each_hold_on_fresh_rows(tmp_path):
    out = tmp_path / "h.json"
    assert main(["hold", "--quick", "--tasks", "reverse", "--out", str(out)]) == 0
    result = json.loads(out.read_text())["hold"]
    assert [(h["task"], h["hold"], h["runs"]) for h in result["holds"]] == [("reverse", 1, 2), ("reverse", 2, 2),
                                                                            ("reverse", 3, 2)]
    assert all(0 <= r["fresh_error"] <= 1 and r["fresh_n"] == 200 for r in result["rows"])


def test_the_levers_change_one_setting_of_r4_at_a_time_against_the_reference(tmp_path):
    ref = stand_in(tmp_path, "r4_arithmetic.py",
                   "print('r4 pos=1 epochs=1 val_token_acc=0.500 val_exact_match=0.010 examples_per_s=3700 "
                   "wall_s=9.0')\n")
    out = tmp_path / "levers.json"
    assert main(["levers", "--quick", "--reference", str(ref), "--out", str(out)]) == 0
    result = json.loads(out.read_text())["levers"]
    assert result["reference_acc"] == 0.01 and result["reference_s"] == 9.0
    rows = {r["lever"]: r for r in result["rows"]}
    assert rows["toyformer's R4 configuration"]["change"] == {} and rows["the previous configuration"]["change"] is None
    assert all(len(r["runs"]) == 1 and (r["ratio"] is None or r["ratio"] == 9.0 / r["slowest_s"])
               for r in rows.values())
    assert main(["levers", "--reference", str(tmp_path / "nowhere")]) == 2
