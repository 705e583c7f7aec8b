"""Each task checked independently of its generator: decode the tokens, recompute in Python."""

import pytest
import torch

from toyformer import ConfigError
from toyformer.tasks import get_task


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def decode(task, row):
    return [task.vocab.tokens[i] for i in row.tolist() if i != 0]


def test_reverse_twice_is_identity_and_copy_is_identity():
    rev = get_task("reverse", length=7)
    ex = rev.sample(50, gen())
    assert torch.equal(ex.target.flip(1), ex.input)
    ex = get_task("copy", length=7).sample(50, gen())
    assert torch.equal(ex.target, ex.input)


def test_sort_is_sorted_and_a_permutation():
    ex = get_task("sort", length=9, vocab_size=5).sample(100, gen())
    assert (ex.target[:, 1:] >= ex.target[:, :-1]).all()
    for i, t in zip(ex.input.tolist(), ex.target.tolist()):
        assert sorted(i) == t


def test_lengths_override():
    assert get_task("reverse").sample(3, gen(), length=40).input.shape == (3, 40)
    ex = get_task("addition", digits=3).sample(5, gen(), length=50)
    assert all(len("".join(decode(get_task("addition"), r)).split("+")[0]) == 50 for r in ex.input)


def test_count_ones_and_parity_recomputed():
    task = get_task("count_ones", shuffled=True)
    ex = task.sample(200, gen())
    for i, t in zip(ex.input, ex.target):
        assert decode(task, t) == [str(decode(task, i).count("1"))]
    task = get_task("parity", length=9)
    ex = task.sample(200, gen())
    for i, t in zip(ex.input, ex.target):
        assert decode(task, t) == [str(decode(task, i).count("1") % 2)]


def test_count_ones_is_r0_format():
    task = get_task("count_ones")
    dom = task.domain()
    assert len(dom) == 10
    for i, t in zip(dom.input, dom.target):
        bits = "".join(decode(task, i))
        n = int(decode(task, t)[0])
        assert bits == "1" * n + "0" * (10 - n) and 1 <= n <= 10


def test_lookup_table_matches_the_table_and_symmetry():
    task = get_task("lookup_table", size=6)
    dom = task.domain()
    m = task.table.tolist()
    for (i, j), t in zip(dom.input.tolist(), dom.target.tolist()):
        assert task.vocab.tokens[t[0]] == str(m[int(task.vocab.tokens[i])][int(task.vocab.tokens[j])])
    sym = task.symmetric(dom.input).tolist()
    assert sym == [m[k // 6][k % 6] == m[k % 6][k // 6] for k in range(36)]


def test_alternating_continues():
    task = get_task("alternating", length=5)
    for i, t in zip(*task.sample(10, gen()).__dict__.values()):
        seq = [int(s) for s in decode(task, i) + decode(task, t)]
        assert all(seq[k] != seq[k + 1] for k in range(9))


@pytest.mark.parametrize("reverse_answer", [False, True])
def test_addition_recomputed(reverse_answer):
    task = get_task("addition", digits=12, reverse_answer=reverse_answer)
    ex = task.sample(300, gen())
    lengths = set()
    for i, t in zip(ex.input, ex.target):
        a, b = "".join(decode(task, i)).split("+")
        lengths.add(len(a))
        assert a == str(int(a)) and b == str(int(b))  # no zero-fill
        s = "".join(decode(task, t))
        assert int(s[::-1] if reverse_answer else s) == int(a) + int(b)
    assert lengths == set(range(1, 13))  # every operand length occurs


def test_addition_far_beyond_int64():
    task = get_task("addition")
    ex = task.sample(20, gen(), length=100)
    for i, t in zip(ex.input, ex.target):
        a, b = "".join(decode(task, i)).split("+")
        assert len(a) == len(b) == 100 and int("".join(decode(task, t))) == int(a) + int(b)


def test_arithmetic_recomputed_untrimmed():
    task = get_task("arithmetic", complexity=3, trim=False)
    ex = task.sample(500, gen())
    assert ex.input.shape[1] == 11 and ex.target.shape[1] == 6
    ops = set()
    for i, t in zip(ex.input, ex.target):
        q, ans = decode(task, i), decode(task, t)
        assert q[-1] == "<eos>" and ans[-1] == "<eos>"
        q = "".join(q[:-1])
        k = q.index("+", 1) if "+" in q[1:] else q.index("-", 1)
        a, op, b = int(q[:k]), q[k], int(q[k + 1 :])
        ops.add(op)
        assert -1000 <= a <= 1000 and 0 <= b <= 1000
        assert int("".join(ans[:-1])) == (a + b if op == "+" else a - b)
    assert ops == {"+", "-"}


def test_arithmetic_trimmed_is_r4_format():
    full = get_task("arithmetic", complexity=3, trim=False).sample(300, gen())
    cut = get_task("arithmetic", complexity=3).sample(300, gen())
    assert cut.input.shape[1] == 9 and cut.target.shape[1] == 5  # 2c+3 and c+2
    assert torch.equal(cut.input, full.input[:, :9]) and torch.equal(cut.target, full.target[:, :5])


def test_arithmetic_covers_both_ends():
    task = get_task("arithmetic", complexity=1, trim=False)
    questions = {"".join(decode(task, r)[:-1]) for r in task.sample(4000, gen()).input}
    assert any(q.startswith("-10") for q in questions) and any(q.startswith("10") for q in questions)
    assert any(q.endswith("+10") or q.endswith("-10") for q in questions)


@pytest.mark.parametrize("op", ["+", "-", "*", "/"])
def test_modular_arithmetic_recomputed(op):
    p = 13
    task = get_task("modular_arithmetic", modulus=p, op=op)
    dom = task.domain()
    assert len(dom) == p * (p - 1 if op == "/" else p)
    for i, t in zip(dom.input, dom.target):
        a, o, b, eq = decode(task, i)
        a, b, c = int(a), int(b), int(decode(task, t)[0])
        expect = {"+": a + b, "-": a - b, "*": a * b, "/": a * pow(b, -1, p) if b else None}[o]
        assert o == op and eq == "=" and c == expect % p


@pytest.mark.parametrize("name, params, message", [
    ("reverse", {"length": 0}, "task.length=0"),
    ("modular_arithmetic", {"modulus": 12, "op": "/"}, "must be prime"),
    ("modular_arithmetic", {"op": "%"}, r"allowed: \+, -, \*, /"),
    ("addition", {"digits": 3, "min_digits": 5}, "task.min_digits=5"),
    ("arithmetic", {"complexity": 30}, "1..17"),
    ("reverse", {"colour": 1}, "unknown parameter 'colour'"),
])
def test_bad_parameters(name, params, message):
    with pytest.raises(ConfigError, match=message):
        get_task(name, **params)


def test_tasks_without_length_reject_one():
    for name in ("lookup_table", "modular_arithmetic"):
        with pytest.raises(ConfigError, match="has no length"):
            get_task(name).sample(2, gen(), length=3)
