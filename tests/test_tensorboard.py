"""TensorBoard: train.tensorboard=DIR (--tensorboard DIR) writes what TensorBoard shows, read back
here with TensorBoard's own EventAccumulator; without the package, one line and nothing written."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import small_config  # noqa: E402
from toyformer.cli import main  # noqa: E402

pytest.importorskip("tensorboard")
SMALL = ["--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=1", "--set", "steps=40",
         "--set", "eval.every=20", "--set", "eval.val_size=32", "--set", "eval.test_size=64", "--set", "length=4",
         "--quiet", "--no-live-plot", "--no-store"]


def events(log_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_a_run_logs_its_evaluations_and_ends_with_images(tmp_path):
    from toyformer import train

    cfg = small_config(train={"steps": 40, "warmup_steps": 5, "tensorboard": str(tmp_path / "tb")})
    run = train(cfg, out_dir=tmp_path / "run")
    acc = events(tmp_path / "tb")
    tags = acc.Tags()
    for tag in ("train/loss", "train/token_acc", "train/exact_match", "val/loss", "val/token_acc", "val/exact_match",
                "lr", "test/token_acc", "test/exact_match", "test/loss"):
        assert tag in tags["scalars"], tag
    for record_key, tag in (("val_exact_match", "val/exact_match"), ("train_loss", "train/loss"), ("lr", "lr")):
        logged = [(e.step, e.value) for e in acc.Scalars(tag)]
        assert [s for s, _ in logged] == [r["step"] for r in run.metrics]
        assert [v for _, v in logged] == pytest.approx([r[record_key] for r in run.metrics], rel=1e-6)
    assert acc.Scalars("test/exact_match")[0].value == pytest.approx(run.summary["test_exact_match"])
    assert set(tags["images"]) == {"curves", "attention"}
    for tag in ("curves", "attention"):
        image = acc.Images(tag)[0]
        assert image.width > 200 and image.height > 150 and image.encoded_image_string[:4] == b"\x89PNG"
    assert "config/text_summary" in tags["tensors"]


def test_replicas_and_sweep_points_log_apart(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "reverse", *SMALL, "--replicas", "2", "--out", "rep", "--tensorboard", "tb/rep"]) == 0
    for i in range(2):
        assert "val/exact_match" in events(tmp_path / "tb" / "rep" / f"replica-{i}").Tags()["scalars"]
    Path("s.yaml").write_text("name: s\nbase: {task: {name: reverse, length: 4}}\ngrid: {model.d_model: [8, 16]}\n")
    sweep = ["sweep", "s.yaml", "--out", "sw", "--quiet", *[a for a in SMALL if a not in ("--no-live-plot",)]]
    assert main([*sweep, "--tensorboard", "tb/sweep"]) == 0
    points = sorted(p.name for p in (tmp_path / "sw" / "runs").iterdir())
    assert points == ["d_model=16,seed=0", "d_model=8,seed=0"]
    assert sorted(p.name for p in (tmp_path / "tb" / "sweep").iterdir()) == points
    assert all("attention" in events(tmp_path / "tb" / "sweep" / p).Tags()["images"] for p in points)
    # the same points without TensorBoard are the same runs: the sweep finds them finished
    assert main(sweep) == 0
    config = json.loads((tmp_path / "sw" / "runs" / "d_model=8,seed=0" / "config.json").read_text())
    assert config["train"]["tensorboard"] == "tb/sweep"


def test_without_the_package_one_line_and_nothing_written(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # import tensorboard raises ImportError
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)
    code = main(["train", "reverse", *SMALL, "--out", str(tmp_path / "run"), "--tensorboard", str(tmp_path / "tb")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "pip install 'toyformer[tensorboard]'" in err
    assert not (tmp_path / "run").exists() and not (tmp_path / "tb").exists()


def test_bad_tensorboard_settings_are_one_line_errors(tmp_path, capsys):
    assert main(["train", "reverse", *SMALL, "--tensorboard", "", "--out", str(tmp_path / "a")]) == 2
    assert main(["train", "--resume", "--out", str(tmp_path / "a"), "--tensorboard", str(tmp_path / "tb")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "train.tensorboard" in err[0] and "--tensorboard with --resume" in err[1]
    assert not (tmp_path / "a").exists() and not (tmp_path / "tb").exists()


def test_tags_follow_the_metric_names():
    from toyformer.inspect.tensorboard import scalar_tags

    assert scalar_tags({"step": 1, "wall_s": 0.5, "lr": 1e-3, "train_exact_match": 0.5, "val_loss": 2.0, "x": "s"}) == {
        "lr": 1e-3, "train/exact_match": 0.5, "val/loss": 2.0}
