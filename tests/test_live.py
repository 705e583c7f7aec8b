"""Live curves: curves.png refreshed while training runs, and a notebook plot redrawn in place."""

from conftest import small_config
from toyformer import CurvesFile, NotebookCurves, live_curves, train
from toyformer.inspect.live import in_notebook

PNG = b"\x89PNG\r\n\x1a\n"


def test_curves_png_is_refreshed_during_training(tmp_path):
    out = tmp_path / "run"
    curves = CurvesFile(out, min_interval_s=0.0)
    seen = []

    def on_eval(record):  # what a user opening curves.png would see after each evaluation
        curves(record)
        seen.append((out / "curves.png").read_bytes())

    on_eval.finish = curves.finish
    run = train(small_config(train={"steps": 60}, eval={"every": 20}), out_dir=out, on_eval=on_eval)
    assert len(seen) == 3 and len(set(seen)) == 3  # a new picture at every evaluation
    assert all(png.startswith(PNG) for png in seen)
    assert curves.draws == 4  # three evaluations + the final drawing with the summary
    assert len(run.metrics) == 3


def test_redrawing_is_throttled(tmp_path):
    curves = CurvesFile(tmp_path, min_interval_s=3600)
    for step in (10, 20, 30):
        curves({"step": step, "train_loss": 1.0, "val_loss": 1.0})
    assert curves.draws == 1
    curves.finish()
    assert curves.draws == 2


def test_notebook_plot_redraws_in_place():
    frames = []
    live = NotebookCurves(min_interval_s=0.0, show=frames.append)
    train(small_config(train={"steps": 40}), on_eval=live)
    assert len(frames) == 3 and all(f.startswith(PNG) for f in frames)


def test_live_curves_picks_its_parts():
    assert not in_notebook()
    assert live_curves().parts == []
    parts = live_curves("somewhere", notebook=True).parts
    assert [type(p) for p in parts] == [CurvesFile, NotebookCurves]
