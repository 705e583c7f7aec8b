"""The scratchpad of a regular task: every running state checked against a plain loop over the
symbols, the last token equal to the task's own answer, and only that answer scored."""

import pytest
import torch

from toyformer import ConfigError
from toyformer.tasks import get_task
from toyformer.tasks.scratchpad import REGULAR


def loop_states(task_name: str, symbols: list[str]) -> list[int]:
    """The automaton by hand, one symbol at a time (independent of the tasks' vectorised code)."""
    out = []
    if task_name == "parity":
        s = 0
        for x in symbols:
            s ^= int(x)
            out.append(s)
    elif task_name == "even_pairs":
        s = 0
        for i, x in enumerate(symbols):
            s ^= int(i > 0 and x != symbols[i - 1])
            out.append(s)
    elif task_name == "cycle_navigation":
        s = 0
        for x in symbols:
            s = (s + int(x) - 1) % 5
            out.append(s)
    else:  # modular_arithmetic_simple: the value of the prefix, by Python, and the pending term
        for i in range(len(symbols)):
            prefix = symbols[: i + 1] if i % 2 == 0 else symbols[:i]
            terms = "".join(prefix).replace("-", "+-").split("+")
            values = [eval("*".join(t.split("*"))) for t in terms]  # noqa: S307 - digits and * only
            out.append((sum(values[:-1]) % 5) * 5 + values[-1] % 5)
    return out


@pytest.mark.parametrize("of", REGULAR)
@pytest.mark.parametrize("length", [1, 2, 7, 40])
def test_states_follow_the_automaton_and_end_in_the_answer(of, length):
    task = get_task("scratchpad", of=of)
    base = task.base
    ex = task.sample(16, torch.Generator().manual_seed(length), length=length)
    plain = base.sample(16, torch.Generator().manual_seed(length), length=length)
    assert torch.equal(ex.input, plain.input) and torch.equal(ex.target[:, -1:], plain.target)
    vocab = task.vocab
    for row in range(16):
        symbols = vocab.decode(ex.input[row]).split()
        states = [int(t[1:]) for t in vocab.decode(ex.target[row, :-1]).split()]
        assert states == loop_states(of, symbols)
    assert ex.target.shape[1] == ex.input.shape[1] + 1


def test_only_the_answer_is_scored():
    task = get_task("scratchpad", of="parity")
    ex = task.sample(4, torch.Generator().manual_seed(0), length=5)
    mask = task.accuracy_mask(ex.target)
    assert mask.sum(1).tolist() == [1] * 4 and mask[:, -1].all()


def test_a_task_without_an_automaton_is_refused():
    with pytest.raises(ConfigError, match="task.of=.reverse. has no automaton to write out; allowed: parity"):
        get_task("scratchpad", of="reverse")
