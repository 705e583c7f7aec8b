"""lookup_table (R1): the answer is the table cell; symmetric() marks M[i][j] == M[j][i]."""

import pytest
import torch

from toyformer import ConfigError
from toyformer.tasks import get_task


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_domain_matches_the_table_row_major():
    task = get_task("lookup_table", size=6)
    m = task.table.tolist()
    assert len(m) == 6 and all(0 <= v < 6 for row in m for v in row)
    dom = task.domain()
    assert dom.input.shape == (36, 2) and dom.target.shape == (36, 1)
    tok = task.vocab.tokens
    for k, (ij, t) in enumerate(zip(dom.input.tolist(), dom.target.tolist())):
        i, j = int(tok[ij[0]]), int(tok[ij[1]])
        assert (i, j) == divmod(k, 6) and tok[t[0]] == str(m[i][j])


def test_symmetric_agrees_with_python():
    task = get_task("lookup_table", size=6)
    m, dom = task.table.tolist(), task.domain()
    sym = task.symmetric(dom.input).tolist()
    assert sym == [m[i][j] == m[j][i] for i in range(6) for j in range(6)]
    assert any(sym) and not all(sym)
    ex = task.sample(40, gen())
    tok = task.vocab.tokens
    assert task.symmetric(ex.input).tolist() == [
        m[int(tok[i])][int(tok[j])] == m[int(tok[j])][int(tok[i])] for i, j in ex.input.tolist()
    ]


def test_table_is_fixed_by_table_seed():
    a, b = get_task("lookup_table", table_seed=3), get_task("lookup_table", table_seed=3)
    assert torch.equal(a.table, b.table)
    assert not torch.equal(a.table, get_task("lookup_table", table_seed=4).table)


@pytest.mark.parametrize("params", [{"size": 1}, {"size": 1001}, {"table_seed": -1}])
def test_bad_parameters(params):
    with pytest.raises(ConfigError, match="out of range"):
        get_task("lookup_table", **params)
