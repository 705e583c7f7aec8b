"""Every recipe runs end to end in --quick mode and writes its files; the CLI prints JSON."""

import json

import pytest
import torch

from toyformer import ConfigError
from toyformer.cli import main
from toyformer.experiments.recipes import list_recipes, run_recipe

from quick_runs import quick_run


@pytest.mark.parametrize("name", list(list_recipes()))
def test_quick_recipe_writes_summary_and_json(tmp_path_factory, name):
    code, out_dir, out = quick_run(name, tmp_path_factory)  # shared with test_findings.py
    assert code == 0
    payload = json.loads(out.strip().splitlines()[-1])
    assert payload["recipe"] == name and payload["numbers"]
    summary = (out_dir / "summary.md").read_text()
    assert "Command: `toyformer recipe" in summary and "|---|" in summary
    result = json.loads((out_dir / "result.json").read_text())
    assert result["quick"] is True and result["tables"]


def test_finished_runs_are_reused(tmp_path):
    first = run_recipe("r1", tmp_path, quick=True)
    stamp = (tmp_path / "runs" / "improved" / "summary.json").stat().st_mtime_ns
    second = run_recipe("r1", tmp_path, quick=True)
    assert (tmp_path / "runs" / "improved" / "summary.json").stat().st_mtime_ns == stamp
    assert first.numbers == second.numbers


def test_unknown_recipe():
    with pytest.raises(ConfigError, match="allowed: r0"):
        run_recipe("r9", "/tmp/never", quick=True)


def test_budget_only_for_recipes_that_take_one(tmp_path, capsys):
    assert main(["recipe", "r1", "--quick", "--budget-s", "5", "--out", str(tmp_path)]) == 2
    assert "allowed: > 0, for: lengths" in capsys.readouterr().err
    assert main(["recipe", "lengths", "--quick", "--budget-s", "0", "--out", str(tmp_path)]) == 2
    assert not (tmp_path / "summary.md").exists()


def test_the_addition_preset_measures_seeds_and_ablations(tmp_path):
    """``--preset addition --quick``: every seed and every ablation trained, measured at three
    lengths with intervals, each run's CPU seconds kept beside it and read back on a second call."""
    from toyformer.experiments.recipes import long_addition

    result = run_recipe("lengths", tmp_path, quick=True, preset="addition")
    seeds = result.numbers["seeds"]
    assert len(seeds) == 2 and all(len(v["measured"]) == 3 for v in seeds.values())
    first = seeds["0"]["measured"]["8"]
    assert 0 <= first["ci95"][0] <= first["exact_match"] <= first["ci95"][1] <= 1 and first["n"] == 8
    assert len(result.numbers["ablations"]) == len(long_addition.ABLATIONS)
    assert [t.title.split(":")[0] for t in result.tables] == ["Five seeds", "Ablation"]
    cpu = json.loads((tmp_path / "runs" / "addition_seed0" / "cpu_s.json").read_text())["train_cpu_s"]
    again = run_recipe("lengths", tmp_path, quick=True, preset="addition")
    assert again.numbers["seeds"]["0"]["train_cpu_s"] == cpu  # reused run: its training cost read back
    assert "Command: `toyformer recipe lengths --preset addition --quick`" in (tmp_path / "summary.md").read_text()


def test_presets_only_for_recipes_that_have_them(tmp_path, capsys):
    assert main(["recipe", "r1", "--quick", "--preset", "addition", "--out", str(tmp_path)]) == 2
    assert "allowed: none (recipes with presets: lengths)" in capsys.readouterr().err
    assert main(["recipe", "lengths", "--quick", "--preset", "bogus", "--out", str(tmp_path)]) == 2
    assert "allowed: schemes, addition" in capsys.readouterr().err
    assert main(["recipe", "lengths", "--quick", "--preset", "addition", "--budget-s", "5", "--out",
                 str(tmp_path)]) == 2
    assert "--budget-s applies to the preset schemes" in capsys.readouterr().err
    assert not (tmp_path / "summary.md").exists()


def test_recipe_list(capsys):
    assert main(["recipe", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in list_recipes())


def test_r4_same_widths_matches_the_formulas_text():
    import re

    import torch

    from toyformer.experiments.recipes.r4 import same_widths
    from toyformer.tasks import get_task

    task = get_task("arithmetic", complexity=3, trim=False)
    ex = task.sample(500, torch.Generator().manual_seed(0))
    widths = [[len(d) for d in re.findall(r"\d+", "".join(task.vocab.decode(row).split()))] for row in ex.input]
    expected = torch.tensor([w[0] == w[1] for w in widths])
    assert 0 < expected.sum() < len(expected)  # both kinds occur
    assert torch.equal(same_widths(task, ex), expected)


def test_r2_mirror_share_reads_the_anti_diagonal():
    from toyformer.experiments.recipes.r2 import mirror_share

    n = 6
    mirrored = torch.eye(n).flip(-1)  # query i attends key n-1-i
    heads = torch.stack([torch.full((n, n), 1 / n), torch.eye(n), mirrored])  # [3, n, n]
    assert mirror_share(heads) == 1.0
    assert mirror_share(heads[:2]) == pytest.approx(1 / n)  # uniform beats the diagonal (0)
