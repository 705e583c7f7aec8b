"""Head roles: a head built by hand to follow a pattern gets that pattern's role; every
built-in pattern scores 1 on weights that follow it exactly; users add patterns; a bad name is
one line listing the valid ones."""

import pytest

from conftest import small_config
from runs import positions_and_tokens, set_queries
from toyformer import ConfigError
from toyformer.explain import head_roles, patterns, register_pattern
from toyformer.explain.data import prepare
from toyformer.explain.roles import PatternContext, _REGISTRY, pattern_scores
from toyformer.run import build

BUILT_IN = set(_REGISTRY)  # the patterns toyformer ships, before any test registers its own

LENGTH = 6
HAND_SET = {
    "self": lambda i: i,
    "previous": lambda i: max(i - 1, 0),
    "first": lambda i: 0,
    "mirror": lambda i: LENGTH - 1 - i if i < LENGTH else i,
}


@pytest.mark.parametrize("role", list(HAND_SET))
def test_a_hand_set_head_gets_its_role(role):
    run = positions_and_tokens(LENGTH)
    set_queries(run, HAND_SET[role])
    (row,) = head_roles(run, n=64)
    assert row["role"] == role, row["scores"]
    assert row["score"] > 0.99


def test_a_head_with_equal_scores_everywhere_is_uniform():
    run = positions_and_tokens(LENGTH)
    set_queries(run, None)
    (row,) = head_roles(run, n=64)
    assert row["role"] == "uniform" and row["score"] > 0.999


def test_a_head_reading_its_token_elsewhere_is_same_token():
    run = positions_and_tokens(LENGTH)
    set_queries(run, same_token=True)
    (row,) = head_roles(run, n=256)
    assert row["role"] == "same_token" and row["score"] > 0.99


def test_below_the_threshold_a_head_is_mixed():
    run = positions_and_tokens(LENGTH)
    set_queries(run, HAND_SET["mirror"], scale=11.0)  # a preference: about 0.6 of the mass on the mirrored key
    (row,) = head_roles(run, n=64, threshold=0.9)
    assert 0.5 < row["scores"]["mirror"] < 0.9 and row["scores"]["uniform"] < 0.9
    assert row["role"] == "mixed" and row["score"] == row["scores"]["mirror"]
    (row,) = head_roles(run, n=64)  # the default threshold, 0.5
    assert row["role"] == "mirror"


CONTEXTS = {
    "tagger": ("reverse", "tagger", {}),
    "causal": ("reverse", "causal", {}),
    "seq2seq": ({"name": "addition", "digits": 2}, "seq2seq", {}),
}


@pytest.mark.parametrize("layout", list(CONTEXTS))
def test_every_pattern_scores_one_on_weights_that_follow_it(layout):
    task, lay, model = CONTEXTS[layout]
    run = build(small_config(task, lay, model={"n_layers": 1, **model}))
    inp = prepare(run_subject(run), run.splits.test[:32])
    names = [n for n in ("self", "previous", "first", "mirror", "same_token", "induction", "same_place", "alignment")]
    checked = set()
    for module in ("attn", "cross_attn"):
        if module == "cross_attn" and lay != "seq2seq":
            continue
        stream = "encoder" if lay in ("tagger", "seq2seq") and module == "attn" else "decoder"
        if lay == "seq2seq" and module == "attn":
            stream = "decoder"
        q = inp.frames[stream]
        k = inp.frames["encoder"] if module == "cross_attn" else q
        ctx = PatternContext(q, k, module == "cross_attn", (k.col >= 0).sum(1), inp.input_len,
                             module == "attn" and stream == "decoder")
        for name in names:
            mask = _REGISTRY[name].fn(ctx)
            if mask is None:
                continue
            mask = mask & k.valid[:, None, :]
            if not mask.any():
                continue
            w = mask.float() + 1e-7 * ctx.visible()  # as a softmax would: a little on every visible key
            w = (w / w.sum(-1, keepdim=True)).unsqueeze(1)  # [B, 1, Tq, Tk]
            score = pattern_scores(w, ctx, [name])[name][0]
            assert score == pytest.approx(1.0, abs=1e-4), (layout, module, name)
            checked.add(name)
    expected = {"tagger": {"self", "previous", "first", "mirror", "same_token", "induction"},
                "causal": {"self", "previous", "first", "mirror", "same_token", "induction"},
                "seq2seq": {"self", "previous", "first", "alignment", "mirror", "same_place"}}[layout]
    assert expected <= checked


def run_subject(run):
    from toyformer.inspect.capture import subject

    return subject(run)


def test_users_add_patterns_as_functions(monkeypatch):
    for name in [n for n in _REGISTRY if n not in BUILT_IN]:  # another test's (or page's) own patterns
        monkeypatch.delitem(_REGISTRY, name)
    run = positions_and_tokens(LENGTH)
    set_queries(run, lambda i: LENGTH - 1 if i < LENGTH else i)  # every query reads the last token
    register_pattern("last", lambda ctx: (ctx.k.col == ctx.k_len[:, None] - 1)[:, None, :].expand(
        -1, ctx.q.tokens.shape[1], -1), "the last real token")
    try:
        (row,) = head_roles(run, n=64)
        assert row["role"] == "last" and row["score"] > 0.99
    finally:
        del _REGISTRY["last"]
    assert "last" not in patterns()


def test_an_unknown_pattern_is_one_line_listing_the_valid_ones():
    run = positions_and_tokens(LENGTH)
    with pytest.raises(ConfigError) as err:
        head_roles(run, names=["mirror", "diagonal"])
    assert "\n" not in str(err.value)
    assert str(err.value).startswith("unknown pattern 'diagonal'; valid: self, previous, first, mirror")
