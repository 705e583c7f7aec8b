"""``explain --circuit`` end to end: explain.json holds the graph, the circuit per ablation, the
union with its InterpBench edge list; the sentences cite them; the report and the results
browser's run page draw the graph; a head's attention is described by offset, position and
token, and the description is tested by replacing the attention with it; inputs are checked
against the run's input tokens and lengths."""

import pytest
import torch
from torch import nn

from conftest import small_config
from runs import blank, positions_and_tokens, reverser, set_queries
from toyformer import train
from toyformer.cli import main
from toyformer.explain import explain, head_roles, read_explain
from toyformer.explain.circuit_text import article, description, role_text
from toyformer.explain.data import prepare
from toyformer.explain.describe import depends_on
from toyformer.explain.roles import context
from toyformer.inspect.capture import subject
from toyformer.ui.explanation import explanation

LENGTH = 6


def test_explain_with_the_circuit_writes_it_and_draws_it(tmp_path, capsys):
    run_dir = tmp_path / "rev"
    train(small_config(model={"n_layers": 2}, train={"steps": 60}), out_dir=run_dir)
    assert main(["explain", str(run_dir), "--circuit", "-n", "32"]) == 0
    out = capsys.readouterr().out
    saved = read_explain(run_dir)
    c = saved["circuit"]
    assert set(c["by_method"]) == {"zero", "mean",
                                   "resample"} and len(c["edges"]) == len(c["by_method"]["zero"]["score"])
    assert all(e["tl"][0].startswith("blocks.") for e in c["edges"])
    assert "Under resample ablation a circuit of" in out and "forward and" in out
    for method, found in c["by_method"].items():
        assert f"Under {method} ablation a circuit of {len(found['kept'])} of {len(c['edges'])} edges" in out
    page = (run_dir / "report.html").read_text()
    assert "<h3>Circuit</h3>" in page and ("<svg" in page) == bool(c["circuit"]["edges"])
    drawn = explanation(run_dir, None)["circuit"]  # what the results browser's run page draws
    assert len(drawn["edges"]) == len(c["circuit"]["edges"])
    assert {n["name"] for n in drawn["nodes"]} >= {n["name"] for n in c["circuit"]["nodes"]}
    for method, found in c["by_method"].items():
        assert drawn["facts"][method].startswith(f"{len(found['kept'])} {found['units']}, ")


def test_without_the_flag_no_circuit_is_measured(tmp_path):
    result = explain(reverser(), n=32, write=False)
    assert "circuit" not in result and "groups" in result and "descriptions" in result
    assert all("attention" in r for r in result["roles"])


@pytest.mark.parametrize("where, kind, said", [
    (lambda i: max(i - 2, 0), "offset", "attends 2 positions back"),
    (lambda i: min(i + 1, LENGTH - 1), "offset", "attends 1 position forward"),
    (lambda i: 2, "position", "attends to position 2"),
])
def test_a_head_with_a_fixed_offset_or_position_is_described_so_with_its_mass(where, kind, said):
    run = positions_and_tokens(LENGTH)
    set_queries(run, where)
    (row,) = head_roles(run, n=64)
    assert row["role"] == "mixed" and row["attention"]["describes"] == kind
    assert row["attention"][kind]["mass"] > 0.99
    assert description(row).startswith(said + " (mass ")


def _copy_back(offset: int):
    """A one-head tagger whose answer is the token ``offset`` positions back (the first token
    where there is none): positions and tokens one-hot, the attended token written to dims
    32-47 and read out from there."""
    run = blank(LENGTH, d_model=48)
    m = run.model
    n_tok = len(run.task.vocab)
    attn = m.encoder.stack.blocks[0].attn
    with torch.no_grad():
        m.encoder.embed.pos.weight[:16, :16] = torch.eye(16)
        m.encoder.embed.tok.weight[:, 16:16 + n_tok] = torch.eye(n_tok)
        m.encoder.embed.tok.weight[0] = 0
        attn.kv.weight[:48, :48] = torch.eye(48)
        attn.kv.weight[48:, :48] = torch.eye(48)
        for i in range(16):
            attn.q.weight[max(i - offset, 0), i] = 40.0
        attn.out.weight[32:48, 16:32] = torch.eye(16)
        head = m.head[0] if isinstance(m.head, nn.Sequential) else m.head
        head.weight[:n_tok, 32:32 + n_tok] = 10 * torch.eye(n_tok)
    return run


def test_replacing_the_attention_by_its_description_keeps_the_answers_and_others_do_not():
    run = _copy_back(3)
    s = subject(run)
    inp = prepare(s, run.splits.test[:64].input)  # the model's own answers: exact match 1 by construction
    (row,) = head_roles(run, inputs=inp.examples)
    assert row["attention"]["describes"] == "offset" and row["attention"]["offset"]["offset"] == -3
    got = depends_on(run.model, inp, "encoder.blocks.0.attn", 0, context(s, inp, "encoder.blocks.0.attn"),
                     row["attention"])
    assert got["offset"]["exact_match"] == 1.0
    # rows without the token keep theirs
    assert got["position"]["exact_match"] < 0.5 and got["token"]["exact_match"] < 0.8


def test_sentences_read_naturally():
    assert role_text("induction") == "an induction head" and role_text("previous") == "a previous-token head"
    assert article("offset") == "an" and role_text("last_token") == "a last token head"


@pytest.mark.parametrize("argv, message", [
    (["--input", "3 1 4"], "input '3 1 4' has 3 tokens, a length this run's inputs never have; allowed: 5 tokens"),
    (["--input", "3 1 4 1 5", "--corrupt", "3 1 4 <eos> 5"], "token '<eos>' is not in the vocabulary"),
])
def test_inputs_are_checked_against_the_run(argv, message, capsys):
    code = main(["explain", str(reverser()), "--no-report", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_token_that_is_no_input_of_the_run_is_one_line(tmp_path, capsys):
    train(small_config("count_ones", train={"steps": 10}), out_dir=tmp_path / "count")
    code = main(["explain", str(tmp_path / "count"), "--no-report", "--input", "1 1 5 0 0 0 0 0 0 0"])
    err = capsys.readouterr().err
    assert code == 2
    assert "token '5' is in the vocabulary of task 'count_ones' but never in its inputs; allowed: 0 1" in err
    assert not (tmp_path / "count" / "explain.json").exists()


@pytest.mark.parametrize("used_only, backed", [(0.3, True), (0.05, False)])
def test_heads_that_change_nothing_alone_but_back_up_the_others_are_named(used_only, backed):
    from toyformer.explain.circuit_text import group_sentences
    from toyformer.explain.groups import _judge

    em = lambda v: {"exact_match": v}  # noqa: E731
    g = {"module": "m", "heads": [0, 1, 2, 3], "kind": "role", "label": "mirror", "value": "mirror",
         "by_method": {"resample": {"joint": em(0.0), "alone": [em(1.0), em(1.0), em(0.391), em(0.752)],
                                    "used_only": em(used_only)}}}
    _judge(g, "exact_match", em(1.0))
    g["measure"], g["baseline"] = "exact_match", em(1.0)
    assert not g["redundant"] and ("backed_up" in g) == backed
    (sentence,) = group_sentences([g])
    if backed:
        assert sentence == ("m heads 0, 1, 2 and 3 (mirror heads) share one job: heads 0 and 1 change nothing alone "
                            "but back up heads 2 and 3: ablating heads 2 and 3 gives 1.000 -> 0.300, all four "
                            "together: 1.000 -> 0.000 (resample ablation); one at a time at most 1.000 -> 0.391.")
    else:  # ablating the used heads alone does it: the idle ones are not said to back them up
        assert "back up" not in sentence and "ablated together change exact match 1.000 -> 0.000" in sentence
