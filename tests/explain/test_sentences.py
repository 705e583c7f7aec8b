"""Every sentence of the account is built from measurements: fed constructed numbers, the
sentences cite them and change with them; a role is called used only when ablating the head
changes the answers; None and nan are never printed as numbers."""

import copy
import re

import pytest

from toyformer.explain.sentences import USED, sentences

NONE = re.compile(r"\bNone\b|\bnan\b")


def ab_row(component, kind, method, em, acc, loss, base=(1.0, 1.0, 0.01)):
    return {"component": component, "kind": kind, "method": method, "exact_match": em, "token_acc": acc, "loss": loss,
            "d_exact_match": em - base[0], "d_token_acc": acc - base[1], "d_loss": loss - base[2]}


def result(head1_em=0.004, head1_acc=0.21, mirror=0.93, finished=True):
    rows = [ab_row("encoder.blocks.0.attn head 1", "head", "mean", head1_em, head1_acc, 3.2),
            ab_row("encoder.blocks.0.attn", "attn", "zero", 0.0, 0.1, 4.0),
            ab_row("encoder.blocks.0.attn head 0", "head", "zero", 0.997, 0.999, 0.02),
            ab_row("encoder.blocks.0.ff", "ff", "resample", 0.993, 0.998, 0.03)]
    rows.sort(key=lambda r: max(abs(r["d_exact_match"]), abs(r["d_token_acc"])), reverse=True)
    scores = {"self": 0.02, "previous": 0.1, "first": 0.1, "mirror": mirror, "same_token": None, "induction": 0.1,
              "same_place": None, "alignment": None, "uniform": 0.3}
    return {
        "task": "reverse", "layout": "tagger", "step": 600, "finished": finished,
        "ablation": {"baseline": {"exact_match": 1.0, "token_acc": 1.0, "loss": 0.01}, "n": 512, "n_reference": 512,
                     "methods": ["zero", "mean", "resample"], "rows": rows},
        "roles": [{"module": "encoder.blocks.0.attn", "head": 1, "scores": scores, "role": "mirror", "score": mirror},
                  {"module": "encoder.blocks.0.attn", "head": 0, "scores": {**scores, "mirror": 0.1, "previous": 0.81},
                   "role": "previous", "score": 0.81}],
        "probes": [{"stream": "encoder", "layer": i, "target": "mirror_token", "accuracy": a, "chance": 0.1}
                   for i, a in enumerate((0.11, 0.97))],
        "lens": [{"stream": "encoder", "layer": 0, "exact_match": 0.0, "token_acc": 0.1, "loss": 2.3},
                 {"stream": "encoder", "layer": 1, "exact_match": 1.0, "token_acc": 1.0, "loss": 0.01}],
        "dla": {"total": 7.8, "residual": 0.0, "rows": [
            {"component": "encoder.blocks.0.attn head 1", "kind": "head", "contribution": 5.21},
            {"component": "encoder.blocks.0.ff", "kind": "ff", "contribution": 1.3},
            {"component": "output biases", "kind": "bias", "contribution": 0.2}]},
        "phases": {"metric": "exact_match", "evaluations": 30, "grokked": False, "memorised": None,
                   "generalised": {"step": 580, "train": 1.0, "val": 0.95},
                   "widest_gap": {"step": 120, "train": 0.5, "val": 0.38}},
    }


def test_the_account_cites_the_measurements():
    text = sentences(result())
    joined = "\n".join(text)
    assert text[0] == ("reverse (tagger), step 600, 512 test examples: exact match 1.000, token accuracy 1.000, "
                       "loss 0.010.")
    assert ("encoder.blocks.0.attn head 1 is a mirror head (score 0.93); ablating it (mean) changes exact match "
            "1.000 -> 0.004, token accuracy 1.000 -> 0.210.") in text
    assert ("encoder.blocks.0.attn head 0 looks like a previous-token head (score 0.81), but no ablation of it "
            "changes exact match or token accuracy by 0.01 or more (at most 0.003): not used.") in text
    assert "every other component changes exact match and token accuracy by at most 0.007" in joined.lower()
    assert "becomes linearly readable in the encoder at layer 1 (held-out probe accuracy 0.97; layer 0: 0.11" in joined
    assert "from encoder layer 1 on (exact match 1.000; layer 0: 0.000" in joined
    assert "encoder.blocks.0.attn head 1 (+5.21), then encoder.blocks.0.ff (+1.30)" in joined
    assert "No memorisation phase: validation exact match reached 0.95 at step 580" in joined
    assert not NONE.search(joined)


def test_a_head_whose_ablation_changes_nothing_is_not_called_used():
    text = "\n".join(sentences(result(head1_em=1.0 - USED / 2, head1_acc=1.0)))
    assert "encoder.blocks.0.attn head 1 looks like a mirror head (score 0.93), but no ablation" in text
    assert "is a mirror head" not in text


def test_the_sentences_follow_the_numbers():
    a, b = sentences(result()), sentences(result(head1_em=0.31, head1_acc=0.62, mirror=0.71))
    assert a != b
    assert any("(score 0.71)" in s and "1.000 -> 0.310" in s for s in b)


def test_an_unfinished_run_says_so():
    text = sentences(result(finished=False))
    assert "The run is not finished: explained from its last checkpoint, step 600." in text


def test_grokking_and_the_fourier_account_are_worded_from_their_numbers():
    r = result()
    r["phases"] = {"metric": "exact_match", "evaluations": 40, "grokked": True,
                   "memorised": {"step": 180, "train": 0.92, "val": 0.23},
                   "generalised": {"step": 1780, "train": 1.0, "val": 0.94}, "widest_gap": None}
    r["fourier"] = {"shares": [0.05] * 6 + [0.35, 0.35], "key_frequencies": [7, 8], "key_share": 0.7, "loss": 0.05,
                    "restricted_loss": 0.08, "excluded_loss": 3.9, "chance_loss": 3.135}
    joined = "\n".join(sentences(r))
    assert ("at step 180 training exact match was 0.92 and validation 0.23; validation reached 0.94 at step 1780, "
            "1600 steps later (grokking)") in joined
    assert "frequencies 7, 8 (70% of the non-constant energy over 8 frequencies)" in joined
    assert "gives loss 0.080 (the model: 0.050), removing them gives 3.900" in joined
    r2 = copy.deepcopy(r)
    r2["fourier"]["key_frequencies"], r2["fourier"]["shares"] = [], [0.125] * 8
    assert "no dominant frequency: the largest holds 12% " in "\n".join(sentences(r2))


@pytest.mark.parametrize("broken", ["no_used", "skipped_dla", "no_lens"])
def test_other_outcomes_are_worded_from_their_numbers(broken):
    r = result()
    if broken == "no_used":
        for row in r["ablation"]["rows"]:
            row.update(exact_match=1.0, token_acc=1.0, d_exact_match=0.0, d_token_acc=0.0)
        r["ablation"]["rows"][0]["d_token_acc"] = -0.004
        assert any("No single component changes the answers when ablated: the largest change of exact match or token "
                   "accuracy is 0.004" in s for s in sentences(r))
    elif broken == "skipped_dla":
        r["dla"] = {"skipped": "the output head is an MLP (model.head_hidden), not one linear map"}
        assert "Direct logit attribution does not apply: the output head is an MLP" in "\n".join(sentences(r))
    else:
        r["lens"][1]["exact_match"] = 0.0
        assert "finds no layer of the encoder" in "\n".join(sentences(r))


def test_a_quantity_read_early_and_overwritten_later_is_worded_so():
    r = result()
    r["probes"] = [{"stream": "encoder", "layer": i, "target": "token", "accuracy": a, "chance": 0.25}
                   for i, a in enumerate((1.0, 0.31))]
    assert ("The input token is linearly readable in the encoder at layer 0 (held-out probe accuracy up to 1.00) but "
            "no longer at the last layer, 1 (0.31; chance 0.25).") in sentences(r)


def test_a_used_head_without_a_role_names_its_best_pattern():
    r = result()
    r["roles"][0].update(role="mixed", score=0.47, best="previous")
    assert any(s.startswith("encoder.blocks.0.attn head 1 fits no single pattern (best: previous 0.47) but is used: "
                            "ablating it (mean) changes exact match 1.000 -> 0.004") for s in sentences(r))
