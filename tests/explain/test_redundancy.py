"""Learning tests: heads that back each other up are named as one group, with the measurement of
their joint ablation, where ablating them one at a time calls some of them unused (all of them
redundant, or the unused ones backing up the others).

- ``copy --layout causal``: the heads of decoder layer 0 copy the token together;
- ``reverse``: the mirror heads of encoder layer 0 do.

The runs are trained and explained in child processes on the portable mode's pinned code paths
(``train.portable=true``: the same weights, and the same measurements, on every x86-64 CPU; the
``toyformer`` command restarts itself pinned for such a run), and the assertions keep a margin.
"""

import os
import subprocess
import sys

import pytest

from toyformer.cli import main
from toyformer.explain import read_explain

pytestmark = pytest.mark.slow


def _portable(tmp_path, *args):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "toyformer", "train", *args, "--set", "train.portable=true",
                           "--out", str(out)], capture_output=True, text=True, env=dict(os.environ))
    assert done.returncode == 0, done.stderr[-2000:]
    return out


@pytest.mark.parametrize("args, module", [(["copy", "--layout", "causal"], "decoder.blocks.0.attn"),
                                          (["reverse"], "encoder.blocks.0.attn")])
def test_heads_that_back_each_other_up_are_one_group_with_their_joint_ablation(tmp_path, args, module):
    run_dir = _portable(tmp_path, *args)
    assert main(["explain", str(run_dir), "--no-report"]) == 0
    result = read_explain(run_dir)
    found = [g for g in result["groups"] if g["module"] == module and g["used"]]
    assert found, result["groups"]
    g = max(found, key=lambda g: g["joint_drop"])
    assert len(g["heads"]) >= 3 and g["joint_drop"] >= 0.5 and g["joint_drop"] > g["max_alone_drop"] + 0.1
    m = g["by_method"][g["method"]]
    base, joint = g["baseline"][g["measure"]], m["joint"][g["measure"]]
    heads = f"{module} heads {', '.join(map(str, g['heads'][:-1]))} and {g['heads'][-1]}"
    sentence = next(s for s in result["sentences"] if s.startswith(heads))
    assert f"{base:.3f} -> {joint:.3f} ({g['method']} ablation)" in sentence
    if g["redundant"]:  # each head alone changes little
        assert g["joint_drop"] >= 2 * g["sum_alone_drop"] + 0.1
        assert "do one job together: any one can be removed" in sentence
    elif g.get("backed_up"):  # the heads that change nothing alone back the others up
        assert base - g["backed_up"]["joint"][g["measure"]] <= g["joint_drop"] - 0.1
        assert "change nothing alone but back up" in sentence
    else:  # the heads used alone do it without the others: those are not said to help
        assert "used_only" not in m or base - m["used_only"][g["measure"]] > g["joint_drop"] - 0.1
        assert "ablated together change" in sentence and "back up" not in sentence
