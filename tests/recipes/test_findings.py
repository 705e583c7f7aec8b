"""Findings only from measurements: every sentence a recipe prints is built from the numbers of that
invocation. A run that failed never reads as a success, and None is never printed as a number.

Two kinds of checks: each recipe's --quick run (its improved run gets a few steps, so it fails)
must not claim success anywhere in its findings, notes, summary.md or report.html; and each
recipe's findings function, fed constructed failing and succeeding numbers, must say different
things, citing those numbers (a hard-coded sentence fails one of the two).
"""

import json
import math
import re

import pytest

from toyformer.experiments.recipes import lengths, list_recipes, r0, r1, r2, r3, r4

from quick_runs import quick_run

# phrases that deny success; removed before looking for claims of it
NEGATED = re.compile(r"not solved|did not solve|not reached|did not reach|not met|does not beat|not the pattern|"
                     r"neither [^.;]* gets|none of the \d+ changes brings|no clear gain|not the same", re.I)
CLAIMS = re.compile(r"\bsolves?\b|\bsolved at\b|\b100(\.0)?\s?%|\breach(es|ed)?\b|\bfix(es)?\b|\bescape|"
                    r"breaks? the symmetry|target met|\blearnable\b|greedy is enough|fills single holes|"
                    r"cells right \(|the same at every length|gets? more formulas right|reproduces|"
                    r"get more answers entirely right|shows? the anti-diagonal|only the two changes together",
                    re.I)
NONE = re.compile(r"\bNone\b(?! of)|\bnan\b")  # a missing number printed as Python prints it


def claims(text: str) -> list[str]:
    """The claims of success in ``text`` (after removing the phrases that deny it)."""
    return [m.group(0) for m in CLAIMS.finditer(NEGATED.sub("", text))]


def test_the_claims_check_tells_success_from_failure():
    assert claims("toyformer's defaults solve it: test accuracy 1.000, solved at step 12 (0.3 s).")
    assert claims("Improved: every row reaches at least 99.9% test token accuracy.")
    assert claims("solved at step None (None s)") and NONE.search("at step None")
    assert not claims("test accuracy 0.420 after 20 steps, not solved (target 1.000)")
    assert not claims("the target (95% at 30 digits) is not reached.")


# per recipe: did its improved run fail to reach its target? (the precondition of the quick check)
IMPROVED_FAILED = {
    "r0": lambda n: n["improved"]["test_exact_match"] < 1.0,
    "r1": lambda n: n["improved"]["accuracy"] < 1.0,
    "r2": lambda n: all(r["improved"]["token_acc"] < r2.ROW_TARGET for k, r in n.items() if k.startswith("N")),
    "r3": lambda n: all(n[layout]["test_exact_match"] < 1.0 for layout in r3.OBJECTIVES.values()),
    "r4": lambda n: n["improved"]["val_greedy"] < 0.999,
    "lengths": lambda n: all(max(s["exact_match"].values()) < lengths.TARGET["exact_match"]
                             for s in n["addition"].values()),
}


def _sentences(result: dict) -> list[str]:
    return result["findings"] + [t["note"] for t in result["tables"]] + [t["title"] for t in result["tables"]]


@pytest.mark.parametrize("name", list(list_recipes()))
def test_a_failed_quick_run_claims_no_success(tmp_path_factory, name):
    code, out, _ = quick_run(name, tmp_path_factory)
    assert code == 0
    result = json.loads((out / "result.json").read_text())
    assert IMPROVED_FAILED[name](result["numbers"]), "the quick run was meant to fail"
    assert result["findings"]
    for sentence in _sentences(result):
        assert not claims(sentence), sentence
        assert not NONE.search(sentence), sentence
    summary = (out / "summary.md").read_text()
    page = re.sub(r"<style>.*?</style>", "", (out / "report.html").read_text(), flags=re.S)
    assert "--quick: every run trains for a few steps only" in summary
    for text in (summary, page):
        assert not NONE.search(text)
        findings = text.split("What the measurements show")[1].split("###" if text is summary else "</ul>")[0]
        assert not claims(findings), findings


# ---- R0 ------------------------------------------------------------------------------------------

def _r0(per_seed, ablation_solved, improved):
    original = {"per_seed": per_seed, "loss": 2.31 if max(per_seed) <= 0.2 else 0.9, "solved": 0, "steps": 300}
    base = {**original, "per_seed": per_seed[:3], "solved": sum(a == 1.0 for a in per_seed[:3])}
    ablation = [{"label": label, "solved": s} for label, s in zip(r0.ABLATION, ablation_solved)]
    return r0.findings(original, base, ablation, improved)


FAILED_R0 = {"test_exact_match": 0.42, "solved_at_step": None, "solved_at_s": None, "steps": 20, "wall_s": 0.4}


def test_r0_findings_follow_the_numbers():
    failed = _r0([0.1] * 5, [0] * 8, FAILED_R0)
    assert not any(claims(f) for f in failed[1:]), failed
    assert "all 5 seeds stay at chance" in failed[0] and "2.310" in failed[0] and "reproduces" in failed[0]
    assert "None of the 8 changes" in failed[1]
    assert "not solved" in failed[2] and "0.420" in failed[2] and "20 steps" in failed[2]

    good = _r0([0.1, 0.1, 1.0, 1.0, 0.1], [3, 0, 2] + [1] * 5,
               {"test_exact_match": 1.0, "solved_at_step": 140, "solved_at_s": 2.71, "steps": 140, "wall_s": 2.8})
    assert "3 of 5 seeds stay at chance" in good[0] and "seed-dependent" in good[0]
    assert "pre-norm (3/3), warm-up 100 steps (2/3)." in good[1] and "Fewer with: 2 layers (0/3)." in good[1]
    assert claims(good[2]) and "step 140" in good[2] and "2.7 s" in good[2]


def test_r0_a_short_original_run_does_not_test_the_reported_failure():
    original = {"per_seed": [0.1], "loss": 2.77, "solved": 0, "steps": 4}
    (first, *_) = r0.findings(original, original, [], FAILED_R0)
    assert "4 of its 300 steps" in first and "too short" in first and not claims(first)


def test_r0_a_validation_stop_with_a_test_miss_is_not_solved():
    (*_, text) = _r0([0.1] * 5, [0] * 8, {**FAILED_R0, "test_exact_match": 0.99, "solved_at_step": 80,
                                           "solved_at_s": 1.0})
    assert not claims(text) and "validation met it at step 80, test did not" in text


def test_r0_a_diverged_run_says_so_and_prints_no_none():
    improved = {**FAILED_R0, "diverged": {"step": 7, "weights_from_step": 0, "reason": "NaN"}}
    original = {"per_seed": [0.1], "loss": None, "solved": 0, "steps": 300}
    texts = r0.findings(original, {**original}, [], improved)
    assert "diverged at step 7" in texts[2] and "n/a" in texts[0]
    assert not any(NONE.search(t) for t in texts)


# ---- R1 ------------------------------------------------------------------------------------------

def _r1(one, two, unpadded, improved):
    labels = list(r1.CONFIGS)
    rows = {labels[0]: one, labels[1]: two, labels[2]: unpadded}
    numbers = {k: {"accuracy": (s + a) / 2, "symmetric": s, "asymmetric": a} for k, (s, a) in rows.items()}
    numbers["improved"] = improved
    return r1.findings(numbers, n_sym=60)


def test_r1_findings_follow_the_numbers():
    failed = _r1((0.097, 0.045), (0.1, 0.042), (0.1, 0.047),
                 {"accuracy": 0.03, "symmetric": 0.1, "asymmetric": 0.027, "solved_at_step": None,
                  "solved_at_s": None, "steps": 4})
    assert not any(claims(f) for f in failed), failed
    assert "0.097" in failed[0] and "0.042" in failed[1] and "0.030" in failed[2] and "4 steps" in failed[2]

    good = _r1((1.0, 0.49), (1.0, 0.97), (0.95, 0.93),
               {"accuracy": 1.0, "symmetric": 1.0, "asymmetric": 1.0, "solved_at_step": 900, "solved_at_s": 12.0,
                "steps": 900})
    assert "failing where M[i][j] != M[j][i]" in good[0] and "0.490" in good[0]
    assert "2 layers, padded and 1 layer, unpadded get the asymmetric cells right" in good[1]
    assert claims(good[2]) and "step 900" in good[2]


def test_r1_ceiling_counts_the_symmetric_cells():
    assert r1.ceiling(60) == pytest.approx(0.5 + 30 / 900)
    assert r1.ceiling(900) == 1.0 and r1.ceiling(0) == 0.5


# ---- R2 ------------------------------------------------------------------------------------------

def _r2_rows(acc, mirror):
    return {f"N{n}_M{m}": {"improved": {"token_acc": acc, "mirror_attention": mirror}} for n, m in r2.ROWS[:2]}


def _ablation(acc, step):
    return {name: {"test_token_acc": acc, "solved_at_step": step, "steps": 3000, "wall_s": 60.0}
            for name in r2.ABLATION}


def test_r2_findings_follow_the_numbers():
    failed = r2.findings(_r2_rows(0.0512, 0.01))
    assert not any(claims(f) for f in failed), failed
    assert "2 of 2 rows are below 99.9%" in failed[0] and "0.0512" in failed[0] and "0.010" in failed[1]
    full = {"token_acc": 0.068, "solved_at_step": None, "steps": 4}
    text = r2.ablation_finding(_ablation(0.061, None), full, 100, 10)
    assert not claims(text) and "not solved in 4 steps" in text and "0.061" in text

    good = r2.findings(_r2_rows(1.0, 0.93))
    assert claims(good[0]) and claims(good[1]) and "0.930" in good[1]
    full = {"token_acc": 1.0, "solved_at_step": 1200, "steps": 1200}
    text = r2.ablation_finding(_ablation(0.12, None), full, 200, 10)
    assert "solved at step 1200" in text and "Only the two changes together learn" in text
    # one change alone also solved: the explanation that needs both is not printed
    assert "Only the two" not in r2.ablation_finding(_ablation(1.0, 800), full, 200, 10)


# ---- R3 ------------------------------------------------------------------------------------------

def _r3(exact, own, whole, step):
    loss = {"with_loss": 9.0, "input": 8, "answer": 8, "examples": 256}
    numbers = {layout: {"test_exact_match": exact, "test_token_acc": exact, "solved_at_step": step,
                        "solved_at_s": None if step is None else 1.5, "steps": step or 4, "loss_tokens": loss}
               for layout in r3.OBJECTIVES.values()}
    numbers["masked"].update(test_exact_match=0.0, test_token_acc=whole, own_objective_token_acc=own,
                             mask_prob=0.15, loss_tokens={**loss, "with_loss": 2.4})
    return r3.findings(numbers)


def test_r3_findings_follow_the_numbers():
    failed = _r3(0.0, 0.5, 0.25, None)
    assert not any(claims(f) for f in failed), failed
    assert "masked tokens 2.4" in failed[0] and "0.500" in failed[1] and "0.250" in failed[1]
    assert all("not solved" in f for f in failed[2:])

    good = _r3(1.0, 0.97, 0.55, 300)
    assert "fills single holes but not a whole answer" in good[1]
    assert "get more answers entirely right" in good[1]
    assert claims(good[2]) and "step 300" in good[2]


# ---- R4 ------------------------------------------------------------------------------------------

def _r4_run(token, greedy, beam, same, other, **extra):
    return {"val_token_acc": token, "val_greedy": greedy, "val_beam": beam, "val_greedy_same_widths": same,
            "val_greedy_other_widths": other, "val_n": 5000, **extra}


def _r4(off, on, imp):
    return r4.findings({"as_described_none": off, "as_described_sinusoidal": on, "improved": imp})


def test_r4_findings_follow_the_numbers():
    weak = _r4_run(0.13, 0.0, 0.0, 0.0, 0.0)
    imp = _r4_run(0.2, 0.0, 0.0, None, 0.0, test_greedy=0.0, test_n=32, steps=4, wall_s=2.0,
                  train_val_test_overlap=0)
    failed = _r4(weak, _r4_run(0.214, 0.0, 0.0, 0.0, 0.0), imp)
    assert not any(claims(f) for f in failed), failed
    assert "no clear gain" in failed[0] and "too few formulas right" in failed[2]
    assert "n/a" in failed[4] and "not met" in failed[5]

    good = _r4(_r4_run(0.437, 0.005, 0.005, 0.01, 0.0), _r4_run(0.985, 0.94, 0.941, 0.99, 0.68),
               _r4_run(1.0, 1.0, 1.0, 1.0, 1.0, test_greedy=0.9995, test_n=10000, steps=9000, wall_s=500.0,
                       train_val_test_overlap=0))
    assert "sees a bag of characters" in good[0] and "0.437" in good[0]
    assert "overstates a calculator" in good[1]
    assert "greedy is enough" in good[2]
    assert "10,000 fresh ones" in good[3] and "None of its training formulas" in good[3]
    assert "its own alignment" in good[4] and "0.6800" in good[4]
    assert good[5].startswith("Target met") and "0.9995" in good[5]


# ---- lengths -------------------------------------------------------------------------------------

def _lengths(em, token_acc, wall_s):
    add = {name: {"exact_match": {str(x): em for x in lengths.ADDITION_LENGTHS},
                  "token_acc": {str(x): token_acc for x in lengths.ADDITION_LENGTHS}, "steps": 100, "wall_s": wall_s}
           for name in lengths.ADDITION_SCHEMES}
    return lengths._findings({"addition": add}, 60.0, [1.0, 2.0, 3.0], quick=False)


def test_lengths_findings_follow_the_numbers():
    failed = _lengths(0.0, 0.3, 60.0)
    assert not any(claims(f) for f in failed), failed
    assert failed[0].startswith("No addition scheme gets any 30-digit sum right")
    assert "not the same at every length" in failed[1] and "stopped by the 60 s time limit" in failed[2]

    good = _lengths(0.97, 0.995, 10.0)
    assert "is reached" in good[0] and "0.970" in good[0]
    assert "about the same at every length" in good[1]
    assert "Every addition run ended at its step count" in good[2]


def test_lengths_quick_says_the_target_was_not_measured():
    add = {"none": {"exact_match": {"3": 0.0}, "token_acc": {"3": 0.1}, "steps": 2, "wall_s": 1.0}}
    (text,) = lengths._findings({"addition": add}, 1.0, [0.0], quick=True)
    assert "not measured" in text and not claims(text)


def test_no_sentence_prints_nan_or_none_for_a_missing_number():
    from toyformer.experiments.recipes.base import num, outcome

    assert num(None) == "n/a" and num(math.pi) == "3.142"
    assert "None" not in outcome("test accuracy", None, 1.0, None, None, 0)
