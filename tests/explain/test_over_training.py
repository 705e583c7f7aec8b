"""train.keep_checkpoints=log keeps small weight files at log-spaced steps without changing a
bit of training, single runs and replicas alike; every analysis runs at every kept step."""

import pytest
import torch
from safetensors.torch import load_file

from conftest import small_config
from toyformer import ConfigError, load_run, train, train_replicas
from toyformer.explain import over_training
from toyformer.run import build, checkpoint


def test_log_steps():
    assert checkpoint.log_steps(100, 4) == [0, 1, 2, 3, 6, 10, 18, 32, 56, 100]
    assert checkpoint.log_steps(5, 1) == [0, 1]


def test_kept_checkpoints_change_nothing_and_hold_the_weights_of_their_step(tmp_path):
    cfg = small_config(train={"steps": 40, "schedule": "constant"}, eval={"every": 20})
    plain = train(cfg, out_dir=tmp_path / "plain")
    kept = train(cfg.with_overrides(["train.keep_checkpoints=log", "train.checkpoints_per_decade=4"]),
                 out_dir=tmp_path / "kept")
    for name, p in plain.model.state_dict().items():
        assert torch.equal(p, kept.model.state_dict()[name])
    steps = [s for s, _ in checkpoint.kept_checkpoints(tmp_path / "kept")]
    assert steps == [0, 1, 2, 3, 6, 10, 18, 32]
    assert not (tmp_path / "plain" / "checkpoints").exists()
    init = build(cfg).model.state_dict()  # step 0: the seeded initialisation
    zero = load_file(str(checkpoint.kept_path(tmp_path / "kept", 0)))
    assert all(torch.equal(zero[k], v) for k, v in init.items())
    # a constant schedule does not depend on the total: an 18-step run ends where the kept step 18 is
    short = train(cfg.with_overrides(["train.steps=18", "eval.every=18"]))
    at18 = load_file(str(checkpoint.kept_path(tmp_path / "kept", 18)))
    assert all(torch.equal(at18[k], v) for k, v in short.model.state_dict().items())
    model = build(cfg).model
    checkpoint.load_weights(checkpoint.kept_path(tmp_path / "kept", 32), model, "cpu")  # loads without unpickling


def test_replicas_keep_checkpoints_per_replica(tmp_path):
    cfg = small_config(train={"steps": 20, "keep_checkpoints": "log", "checkpoints_per_decade": 2},
                       data={"batch_size": 16, "train_size": 100})
    train_replicas(cfg, k=2, out_dir=tmp_path / "rep")
    for i in range(2):
        steps = [s for s, _ in checkpoint.kept_checkpoints(tmp_path / "rep" / "replicas" / str(i))]
        assert steps == [0, 1, 3, 10]


def test_every_analysis_runs_at_every_kept_step(tmp_path):
    cfg = small_config(train={"steps": 60, "keep_checkpoints": "log", "checkpoints_per_decade": 2})
    train(cfg, out_dir=tmp_path / "run")
    ot = over_training(tmp_path / "run", n=64)
    assert ot["steps"] == [0, 1, 3, 10, 32, 60]
    assert len(ot["points"]) == 6 and all(len(p["roles"]) == 2 for p in ot["points"])
    assert {(p["stream"], p["target"]) for p in ot["probes"]} >= {("encoder", "position"), ("encoder", "answer")}
    token = [p for p in ot["probes"] if p["target"] == "token" and p["layer"] == 0][0]
    assert token["readable_from"] == 0  # the embedding holds its token from the start
    assert ot["phases"]["evaluations"] == 3
    run = load_run(tmp_path / "run")  # the analysis left the final weights in place
    assert torch.equal(run.model.state_dict()["head.0.weight"],
                       load_run(tmp_path / "run").model.state_dict()["head.0.weight"])


def test_over_training_without_kept_checkpoints_names_the_setting(tmp_path):
    train(small_config(train={"steps": 20}), out_dir=tmp_path / "run")
    with pytest.raises(ConfigError, match="train.keep_checkpoints=log"):
        over_training(tmp_path / "run")
