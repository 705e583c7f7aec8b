"""arithmetic (R4): answers recomputed from the decoded question; R4's padding and trimming."""

import pytest
import torch

from toyformer import ConfigError
from toyformer.tasks import get_task


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def decode(task, row):
    return [task.vocab.tokens[i] for i in row.tolist() if i != 0]


def parse(question: str) -> tuple[int, str, int]:
    """``"-42-970"`` -> ``(-42, "-", 970)``: the operator is the first sign after position 0."""
    k = min(q for q in (question.find("+", 1), question.find("-", 1)) if q > 0)
    return int(question[:k]), question[k], int(question[k + 1 :])


@pytest.mark.parametrize("c", [1, 3, 17])
def test_untrimmed_answers_recomputed(c):
    task = get_task("arithmetic", complexity=c, trim=False, reverse_answer=False)  # R4's order
    ex = task.sample(500, gen())
    assert ex.input.shape[1] == 2 * c + 5 and ex.target.shape[1] == c + 3
    ops = set()
    for i, t in zip(ex.input, ex.target):
        q, ans = decode(task, i), decode(task, t)
        assert q[-1] == "<eos>" and ans[-1] == "<eos>" and "<eos>" not in q[:-1] + ans[:-1]
        a, op, b = parse("".join(q[:-1]))
        assert -(10**c) <= a <= 10**c and 0 <= b <= 10**c
        assert "".join(q[:-1]) == f"{a}{op}{b}"  # canonical writing: no zero-fill, no "+" sign
        assert "".join(ans[:-1]) == str(a + b if op == "+" else a - b)
        ops.add(op)
    assert ops == {"+", "-"}


def test_trimmed_is_r4_format():
    c = 3
    task = get_task("arithmetic", complexity=c, reverse_answer=False)
    cut = task.sample(500, gen())
    full = get_task("arithmetic", complexity=c, trim=False, reverse_answer=False).sample(500, gen())
    assert cut.input.shape[1] == 2 * c + 3 and cut.target.shape[1] == c + 2
    assert torch.equal(cut.input, full.input[:, : 2 * c + 3]) and torch.equal(cut.target, full.target[:, : c + 2])
    n_whole = 0
    for i, t in zip(cut.input, cut.target):  # rows that were not cut are right on their own
        q, ans = decode(task, i), decode(task, t)
        if q[-1] == "<eos>" and ans[-1] == "<eos>":
            a, op, b = parse("".join(q[:-1]))
            assert "".join(ans[:-1]) == str(a + b if op == "+" else a - b)
            n_whole += 1
    assert 0 < n_whole < 500  # some rows fit, some are cut as in R4


def test_operands_cover_both_ends():
    task = get_task("arithmetic", complexity=1, trim=False)
    triples = {parse("".join(decode(task, r)[:-1])) for r in task.sample(4000, gen()).input}
    a_values, b_values = {a for a, _, _ in triples}, {b for _, _, b in triples}
    assert a_values == set(range(-10, 11)) and b_values == set(range(0, 11))


def test_length_overrides_complexity():
    task = get_task("arithmetic", complexity=2, trim=False)
    ex = task.sample(50, gen(), length=5)
    assert ex.input.shape[1] == 15 and ex.target.shape[1] == 8
    assert any(abs(parse("".join(decode(task, r)[:-1]))[0]) > 999 for r in ex.input)
    with pytest.raises(ConfigError, match="1..17"):
        task.sample(2, gen(), length=18)


def test_vocab_is_one_token_per_character():
    assert get_task("arithmetic").vocab.tokens[5:] == tuple("0123456789+-")


@pytest.mark.parametrize("c", [0, 18])
def test_bad_parameters(c):
    with pytest.raises(ConfigError, match="task.complexity=.* allowed: 1..17"):
        get_task("arithmetic", complexity=c)


def test_reverse_answer_writes_digits_least_significant_first_and_reads_back():
    from toyformer.tasks.base import readable_answer

    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    plain = get_task("arithmetic", trim=False, reverse_answer=False).sample(400, g())
    task = get_task("arithmetic", trim=False, reverse_answer=True)
    rev = task.sample(400, g())
    assert torch.equal(rev.input, plain.input) and not torch.equal(rev.target, plain.target)
    assert torch.equal(readable_answer(task, rev.target), plain.target)
    v = task.vocab
    answers = [v.decode(plain.target[i]) for i in range(400)]
    row = next(i for i, a in enumerate(answers) if a.startswith("-") and len(a) > 9)
    sign, *digits = v.decode(plain.target[row]).removesuffix(" <eos>").split()
    assert v.decode(rev.target[row]).removesuffix(" <eos>").split() == [sign, *digits[::-1]]
