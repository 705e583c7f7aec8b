"""``toyformer sample`` / ``toyformer.inspect.generate``: sampled, greedy and beam answers to your inputs."""

import json

import pytest

from toyformer import generate, inspect
from toyformer.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen") / "run"
    assert main(["train", "addition", "--out", str(out), "--quiet", "--no-live-plot", "--set", "steps=40",
                 "--set", "digits=2", "--set", "model.d_model=32", "--set", "model.n_layers=1",
                 "--set", "eval.val_size=16", "--set", "eval.test_size=16"]) == 0
    return out


def test_generate_methods_agree_where_they_must(run_dir):
    greedy = generate(run_dir, ["1 2 + 3 4", "9 + 9"], method="greedy")
    assert [r["input"] for r in greedy] == ["1 2 + 3 4", "9 + 9"] and all(len(r["outputs"]) == 1 for r in greedy)
    assert generate(run_dir, ["1 2 + 3 4", "9 + 9"], method="beam", beam_width=1) == greedy
    assert generate(run_dir, ["1 2 + 3 4", "9 + 9"], n=3, top_k=1) == [{**r,
                                                                        "outputs": r["outputs"] * 3} for r in greedy]
    hot = lambda seed: generate(run_dir, "1 2 + 3 4", n=8, temperature=5.0, seed=seed)  # noqa: E731
    assert hot(0) == hot(0) and hot(0) != hot(1)
    assert not any("<eos>" in out or "<pad>" in out for out in hot(0)[0]["outputs"])


def test_generate_defaults_to_test_inputs(run_dir):
    rows = generate(run_dir, method="greedy")
    assert [r["input"] for r in rows] == [s["input"] for s in inspect.samples(run_dir, 4)]
    expected = [s["output"].removesuffix("<eos>").strip() for s in inspect.samples(run_dir, 4)]
    assert [r["outputs"][0] for r in rows] == expected


def test_cli_sample(run_dir, capsys):
    capsys.readouterr()
    assert main(["sample", str(run_dir), "--input", "1 2 + 3 4", "--n", "2", "--temperature", "0.5",
                 "--top-k", "3", "--seed", "4", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["method"] == "sample" and len(result["rows"][0]["outputs"]) == 2
    assert lines[0].startswith("1 2 + 3 4  ->  ")
    assert result["rows"] == generate(run_dir, "1 2 + 3 4", n=2, temperature=0.5, top_k=3, seed=4)
    assert main(["sample", str(run_dir), "--input", "5 + 5", "--beam", "3", "--json"]) == 0
    beam = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert beam["method"] == "beam" and beam["rows"] == generate(run_dir, "5 + 5", method="beam", beam_width=3)


@pytest.mark.parametrize("argv, message", [
    (["--input", "1 x 2"], "token 'x' is not in the vocabulary"),
    (["--temperature", "0"], "--temperature: 0 is out of range; allowed: > 0"),
    (["--top-k", "0"], "--top-k: 0 is out of range; allowed: >= 1"),
    (["--beam", "2", "--n", "3"], "--n 3"),
    (["--beam", "2", "--greedy"], "exclude each other"),
])
def test_cli_sample_bad_options(run_dir, capsys, argv, message):
    capsys.readouterr()
    assert main(["sample", str(run_dir), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_sample_needs_a_decoder(tmp_path, capsys):
    out = tmp_path / "tagger"
    assert main(["train", "reverse", "--out", str(out), "--quiet", "--no-live-plot", "--set", "steps=2",
                 "--set", "length=4", "--set", "eval.val_size=4", "--set", "eval.test_size=4",
                 "--set", "model.d_model=16", "--set", "model.n_layers=1"]) == 0
    capsys.readouterr()
    assert main(["sample", str(out)]) == 2
    assert "causal and seq2seq layouts, not 'tagger'" in capsys.readouterr().err
