"""Replicas: K seeds as one batched computation give each seed's single run, per-replica
clipping and AdamW, early stop, resume, the summary with a CI, and the CLI."""

import json

import pytest
import torch

from conftest import small_config
from toyformer import load_replicas, train, train_replicas
from toyformer.cli import main
from toyformer.errors import ConfigError
from toyformer.training.optim import ReplicaAdamW, clip_per_replica
from toyformer.experiments.store.store import ResultsStore
from toyformer.files import read_json
from toyformer.stats import mean_ci
from toyformer.training.optim import make_optimizer


def params(model):
    return dict(model.named_parameters())


def comparable(name, p):
    """The key half of ``kv.bias`` adds the same amount to every score of a query, so its true
    gradient is zero and AdamW moves it by normalised rounding noise: no run reproduces it."""
    return p[p.shape[0] // 2 :] if name.endswith("attn.kv.bias") or name.endswith("cross_attn.kv.bias") else p


def assert_same_as_single(rep, configs):
    """Every replica's weights, metrics and stop step equal its single run (batched rounding aside)."""
    for run, cfg in zip(rep.runs, configs):
        single = train(cfg)
        a, b = params(single.model), params(run.model)
        for name in a:
            torch.testing.assert_close(comparable(name, b[name]), comparable(name, a[name]), atol=1e-5, rtol=1e-4,
                                       msg=name)
        for key in ("steps", "solved_at_step", "test_exact_match", "test_token_acc"):
            assert run.summary[key] == single.summary[key], key
        assert [m["step"] for m in run.metrics] == [m["step"] for m in single.metrics]


R1_MODEL = {"causal_encoder": True, "pooling": "slot", "positional": "none"}  # reads the <pad> slot's embedding


@pytest.mark.parametrize("task,layout,data,model", [
    ("reverse", "tagger", {"min_length": 2, "max_length": 6}, {}),  # batches of different widths are padded
    ("reverse", "causal", {"min_length": 2, "max_length": 6}, {}),  # left-padded prompts are aligned
    ("reverse", "seq2seq", {}, {}),
    ("reverse", "masked", {}, {}),  # masks drawn from each replica's own generator
    ("count_ones", "classifier", {}, R1_MODEL),  # the <pad> embedding row stays frozen in every replica
])
def test_replicas_equal_single_runs(task, layout, data, model):
    cfg = small_config(task, layout=layout, data=data, model=model, train={"steps": 30, "grad_clip": 0.05},
                       eval={"every": 15})
    rep = train_replicas(cfg, k=3)
    assert_same_as_single(rep, [cfg.with_overrides([f"seed={i}"]) for i in range(3)])
    assert [r["seed"] for r in rep.summary["replicas"]] == [0, 1, 2]


def test_early_stop_freezes_each_replica_at_its_own_step():
    cfg = small_config(train={"steps": 400}, eval={"every": 5, "target": 0.99})
    rep = train_replicas(cfg, k=3)
    steps = [r.summary["solved_at_step"] for r in rep.runs]
    assert all(s is not None for s in steps) and len(set(steps)) > 1, steps
    assert_same_as_single(rep, [cfg.with_overrides([f"seed={i}"]) for i in range(3)])
    assert rep.summary["solved"] == 3
    assert rep.summary["mean"]["solved_at_step"] == pytest.approx(sum(steps) / 3)


def test_swept_learning_rate_with_schedule_and_weight_decay():
    cfg = small_config(train={"steps": 30, "warmup_steps": 10, "schedule": "cosine", "weight_decay": 0.1})
    rep = train_replicas(cfg, k=4, lrs=[1e-3, 1e-2])
    lrs = [1e-3, 1e-3, 1e-2, 1e-2]
    assert [r.config.train.lr for r in rep.runs] == lrs
    assert_same_as_single(rep, [cfg.with_overrides([f"seed={i}", f"train.lr={lr}"]) for i, lr in enumerate(lrs)])
    assert [g["replicas"] for g in rep.summary["groups"]] == [[0, 1], [2, 3]]


def test_clipping_is_per_replica():
    torch.manual_seed(0)
    grads = {"w": torch.randn(3, 4, 5), "b": torch.randn(3, 5) * torch.tensor([[0.01], [1.0], [100.0]])}
    expected = []
    for k in range(3):  # what clip_grad_norm_ does to each replica alone
        ps = [torch.nn.Parameter(torch.zeros(4, 5)), torch.nn.Parameter(torch.zeros(5))]
        ps[0].grad, ps[1].grad = grads["w"][k].clone(), grads["b"][k].clone()
        torch.nn.utils.clip_grad_norm_(ps, 10.0)
        expected.append((ps[0].grad, ps[1].grad))
    norms = clip_per_replica(grads, 10.0)
    assert (norms > 10.0).any() and (norms < 10.0).any()  # clipping active for some replicas only
    for k in range(3):
        torch.testing.assert_close(grads["w"][k], expected[k][0], rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(grads["b"][k], expected[k][1], rtol=1e-6, atol=1e-7)


def test_replica_adamw_is_torch_adamw_per_replica():
    cfg = small_config(train={"weight_decay": 0.1})
    models = [torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3)) for _ in range(2)]
    stacked = {n: torch.stack([params(m)[n].detach() for m in models]).clone() for n in params(models[0])}
    opt = ReplicaAdamW(stacked, {n: p.dim() >= 3 for n, p in stacked.items()}, (0.9, 0.98), 0.1)
    singles = [make_optimizer(m, cfg.train.__class__(lr=lr, beta2=0.98, weight_decay=0.1)) for m,
               lr in zip(models, (1e-2, 3e-2))]
    torch.manual_seed(1)
    for step in range(5):
        grads = {n: torch.randn_like(p) for n, p in stacked.items()}
        active = torch.tensor([True, step < 3])  # replica 1 stops after 3 steps
        opt.step(grads, torch.tensor([1e-2, 3e-2], dtype=torch.float64), active)
        for k, (m, single) in enumerate(zip(models, singles)):
            if not active[k]:
                continue
            for n, p in params(m).items():
                p.grad = grads[n][k].clone()
            single.step()
    for k, m in enumerate(models):
        for n, p in params(m).items():
            # the single run's AdamW is the fused kernel: the same update, rounded its own way
            torch.testing.assert_close(stacked[n][k], p.detach(), rtol=1e-6, atol=1e-7, msg=f"replica {k}, {n}")


class Interrupt(Exception):
    pass


def test_killed_replica_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    from toyformer.training import loop

    cfg = small_config(train={"steps": 40}, eval={"every": 10})
    whole = train_replicas(cfg, k=2, out_dir=tmp_path / "whole")
    save = loop.save

    def killed_at_30(path, stepper, state):  # killed after evaluating step 30, before its checkpoint
        if state["step"] == 30:
            raise Interrupt
        save(path, stepper, state)

    monkeypatch.setattr(loop, "save", killed_at_30)
    with pytest.raises(Interrupt):
        train_replicas(cfg, k=2, out_dir=tmp_path / "cut")
    monkeypatch.setattr(loop, "save", save)
    assert not (tmp_path / "cut" / "summary.json").exists()
    resumed = train_replicas(None, out_dir=tmp_path / "cut", resume=True)
    for a, b in zip(whole.runs, resumed.runs):
        for name, p in params(a.model).items():
            assert torch.equal(p, params(b.model)[name])
    def keep(s):
        return {k: v for k, v in s.items() if k not in ("wall_s", "solved_at_s", "replicas", "mean", "ci95")}

    assert keep(resumed.summary) == keep(whole.summary)
    assert load_replicas(tmp_path / "cut").summary["mean"] == resumed.summary["mean"]


def test_cli_replicas_json_and_replica_dirs_are_run_dirs(tmp_path, capsys):
    out = tmp_path / "rep"
    rc = main(["train", "reverse", "--replicas", "2", "--out", str(out), "--json", "--no-live-plot",
               "--set", "train.steps=4", "--set", "eval.every=2", "--set", "eval.val_size=16", "--set",
               "eval.test_size=16", "--set", "model.d_model=16", "--set", "model.n_layers=1"])
    assert rc == 0
    text = capsys.readouterr().out
    result = json.loads(text.strip().splitlines()[-1])
    assert [r["seed"] for r in result["replicas"]] == [0, 1]
    assert set(result["mean"]) >= {"test_token_acc", "test_exact_match"} and "test_exact_match" in result["interval95"]
    lo, hi = result["interval95"]["test_exact_match"]  # the mean of accuracies: an interval inside [0, 1]
    assert 0 <= lo <= result["mean"]["test_exact_match"] <= hi <= 1 and "test_exact_match" not in result["ci95"]
    assert "(mean of 2 seeds, n=32, 95% CI " in text and result["run_dir"] == str(out)
    assert read_json(out / "summary.json")["k"] == 2
    rows = ResultsStore().query(columns=["replica", "n_replicas", "seed", "test_token_acc"])  # the default store
    assert sorted((r["replica"], r["n_replicas"], r["seed"]) for r in rows) == [(0, 2, 0), (1, 2, 1)]
    assert sorted(r["test_token_acc"] for r in rows) == sorted(r["test_token_acc"] for r in result["replicas"])
    assert main(["eval", str(out / "replicas" / "1"), "--json"]) == 0  # every replica is a normal run directory
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["test_token_acc"] == result["replicas"][1]["test_token_acc"]
    assert main(["eval", str(out)]) == 2  # the replica run itself points to its replicas
    assert "replicas/0" in capsys.readouterr().err


def test_mean_ci_uses_students_t():
    assert mean_ci([1.0, 2.0, 3.0]) == pytest.approx((2.0, 4.3027 / 3**0.5), rel=1e-4)
    values = [float(v % 2) for v in range(16)]  # sd 0.5164, t(15) = 2.131
    assert mean_ci(values)[1] == pytest.approx(2.131 * 0.5164 / 4, rel=1e-3)
    assert mean_ci([0.7]) == (0.7, 0.0)


@pytest.mark.parametrize("args,needle", [
    (["--replicas", "0"], "--replicas: 0 is out of range; allowed: >= 1"),
    (["--replicas", "2", "--replica-set", "model.d_model=8,16"], "allowed keys: train.lr"),
    (["--replicas", "4", "--replica-set", "train.lr=1e-3,2e-3,3e-3"], "allowed counts: 1, 2, 4"),
    (["--replica-set", "train.lr=1e-3"], "needs --replicas"),
])
def test_cli_bad_replica_options_give_one_line_errors(tmp_path, capsys, args, needle):
    assert main(["train", "reverse", "--out", str(tmp_path / "x"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("toyformer: error:") and needle in err and "\n" not in err
    assert not (tmp_path / "x").exists()


def test_api_rejects_bad_k():
    with pytest.raises(ConfigError, match="k=-1"):
        train_replicas(small_config(), k=-1)
