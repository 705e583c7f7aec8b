"""`toyformer plot` and `toyformer report` from the command line; the live curves of `train`."""

import pytest

from toyformer.cli import main

FAST = ["--set", "model.d_model=32", "--set", "model.n_layers=1", "--set", "eval.val_size=32", "--quiet",
        "--set", "eval.test_size=64", "--set", "steps=40", "--set", "eval.every=20", "--set", "length=4"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "reverse", "--out", str(out), *FAST]) == 0
    return out


def test_train_keeps_curves_png_by_default(run_dir, tmp_path):
    assert (run_dir / "curves.png").read_bytes().startswith(PNG)
    assert main(["train", "reverse", "--out", str(tmp_path / "quiet"), "--no-live-plot", *FAST]) == 0
    assert not (tmp_path / "quiet" / "curves.png").exists()


def test_plot_and_report_commands(run_dir, tmp_path, capsys):
    assert main(["plot", str(run_dir), "--what", "attention", "--input", "3 1 4 1 5 9", "--out",
                 str(tmp_path / "a.png")]) == 0
    assert (tmp_path / "a.png").read_bytes().startswith(PNG)
    assert main(["plot", str(run_dir), "--what", "attention", "--sample", "3"]) == 0
    assert main(["plot", str(run_dir), "--what", "by-position"]) == 0
    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out.split()
    assert out == [str(tmp_path / "a.png"), str(run_dir / "attention.png"), str(run_dir / "by-position.png"),
                   str(run_dir / "report.html")]
    assert (run_dir / "report.html").read_text().startswith("<!DOCTYPE html>")


@pytest.mark.parametrize("argv, message", [
    (["--what", "attention", "--input", "1 2 x"],
     "token 'x' is not in the vocabulary of task 'reverse'; allowed: 0 1 2"),
    (["--what", "attention", "--sample", "64"], "--sample 64 is out of range; allowed: 0..63"),
    (["--what", "curves", "--input", "1"], "apply to --what 'attention' only"),
])
def test_bad_plot_requests_are_one_line_exit_2(run_dir, capsys, argv, message):
    assert main(["plot", str(run_dir), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_plot_needs_a_run_directory(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert main(["plot", str(tmp_path), "--what", "embeddings"]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["plot", str(tmp_path), "--what", "sideways"]) == 2  # argparse choices
