"""Random fully bracketed modular expressions of an exact length, drawn as the suite draws them,
vectorised: the recursion is unrolled level by level over every open sub-expression of every row.

The grammar (Deletang et al. 2023, ``modular_arithmetic_brackets``): an expression of length

- 1 is a digit ``d``; 2 is ``-d``; 3 is ``(d)``; 4 is ``(-d)``;
- ``l >= 5`` is ``(left op right)`` with ``len(left)`` uniform in ``1 .. l - 4``,
  ``len(right) = l - 3 - len(left)`` and ``op`` uniform among the allowed operators.

Every sub-expression has a fixed place in the string, so each level writes its brackets and
operator straight into the output; the values are then computed from the deepest level up.

>>> codes, values = random_expressions(2, 7, 5, ("+", "-", "*"), torch.Generator().manual_seed(0))
>>> codes.shape, values.shape
(torch.Size([2, 7]), torch.Size([2]))
"""

from __future__ import annotations

import torch

SYMBOLS = ("+", "-", "*", "(", ")")  # their codes follow the digits: modulus + index


def random_expressions(n: int, length: int, modulus: int, ops: tuple[str, ...],
                       generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` expressions of exactly ``length`` symbols: codes ``[n, length]`` (digit ``d`` is
    ``d``, symbol ``s`` is ``modulus + SYMBOLS.index(s)``) and their values mod ``modulus`` ``[n]``."""
    plus, minus, times, lpar, rpar = (modulus + i for i in range(len(SYMBOLS)))
    op_codes = torch.tensor([modulus + SYMBOLS.index(op) for op in ops])
    out = torch.full((n, length), -1, dtype=torch.long)
    # the open sub-expressions of this level: row, first column, length, node id
    row, start = torch.arange(n), torch.zeros(n, dtype=torch.long)
    size, node = torch.full((n,), length, dtype=torch.long), torch.arange(n)
    count = n  # node ids handed out so far (the roots are 0..n-1)
    leaf_nodes, leaf_values, levels = [], [], []
    while len(row):
        leaf = size <= 4
        r, s, z = row[leaf], start[leaf], size[leaf]
        digit = torch.randint(modulus, (len(r),), generator=generator)
        paren, neg = z >= 3, (z == 2) | (z == 4)
        out[r[paren], s[paren]] = lpar
        col = s + paren.long()
        out[r[neg], col[neg]] = minus
        col = col + neg.long()
        out[r, col] = digit
        out[r[paren], col[paren] + 1] = rpar
        leaf_nodes.append(node[leaf])
        leaf_values.append(torch.where(neg, -digit, digit) % modulus)
        r, s, z, parent = row[~leaf], start[~leaf], size[~leaf], node[~leaf]
        k = len(r)
        left = 1 + (torch.rand(k, generator=generator) * (z - 4)).long()  # uniform 1 .. z - 4
        op = op_codes[torch.randint(len(ops), (k,), generator=generator)]
        out[r, s] = lpar
        out[r, s + 1 + left] = op
        out[r, s + z - 1] = rpar
        left_id = count + torch.arange(k)
        right_id = left_id + k
        count += 2 * k
        levels.append((parent, left_id, right_id, op))
        row, start = torch.cat([r, r]), torch.cat([s + 1, s + 2 + left])
        size, node = torch.cat([left, z - 3 - left]), torch.cat([left_id, right_id])
    values = torch.zeros(count, dtype=torch.long)
    values[torch.cat(leaf_nodes)] = torch.cat(leaf_values)
    for parent, left_id, right_id, op in reversed(levels):  # children before their parents
        a, b = values[left_id], values[right_id]
        values[parent] = torch.where(op == plus, a + b, torch.where(op == minus, a - b, a * b)) % modulus
    return out, values[:n]


def to_text(codes: torch.Tensor, modulus: int) -> str:
    """One row of codes as the expression's text (tests, docs): ``(3+(-2))``."""
    return "".join(str(c) if c < modulus else SYMBOLS[c - modulus] for c in codes.tolist())
