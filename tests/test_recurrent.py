"""The recurrent families (LSTM, RNN, Stack-RNN, Tape-RNN): where they fit, what they refuse, that
they read left to right, that the stack and the tape move as the reference's do, and that they
learn what the suite says they can beyond their training lengths."""

import pytest
import torch

from toyformer import ConfigError, RunConfig, train, train_replicas
from toyformer.data import format_batch
from toyformer.experiments.chomsky.score import model_predictor, protocol_score
from toyformer.models import build_model
from toyformer.models.memory_rnn import MemoryEncoder, input_length, push_pop, rolled, tape_moves
from toyformer.models.recurrent import RecurrentEncoder
from toyformer.tasks import get_task

FAMILIES = ("lstm", "rnn", "stack_rnn", "tape_rnn")


def lstm_config(task="parity", layout="masked", family="lstm", **model):
    return RunConfig.from_dict({"task": task, "layout": layout,
                                "model": {"family": family, "d_model": 16, "n_layers": 1, **model},
                                "train": {"steps": 4}, "eval": {"every": 4, "val_size": 8, "test_size": 8},
                                "data": {"batch_size": 4, "masking": "answer"}})


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("task, layout", [("parity", "classifier"), ("reverse", "tagger"), ("parity", "masked"),
                                          ("stack_manipulation", "masked")])
def test_a_recurrent_network_stands_in_for_the_encoder(task, layout, family):
    cfg = lstm_config(task, layout, family)
    model = build_model(cfg.model, layout, cfg.task.build(), (12, 12))
    kind = {"lstm": torch.nn.LSTM, "rnn": torch.nn.RNN}.get(family, MemoryEncoder)
    assert any(isinstance(m, kind) for m in model.modules())
    ex = cfg.task.build().sample(3, torch.Generator().manual_seed(0), length=6)
    logits = model(format_batch(ex, layout))
    assert logits.shape[0] == 3 and torch.isfinite(logits).all()


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("layout", ["causal", "seq2seq"])
def test_layouts_with_a_decoder_are_refused(layout, family):
    cfg = lstm_config("reverse", layout, family)
    with pytest.raises(ConfigError, match="allowed layouts: classifier, tagger, masked"):
        build_model(cfg.model, layout, cfg.task.build(), (8, 8))


@pytest.mark.parametrize("option", [{"positional": "rope"}, {"random_positions": True}, {"attention_window": 2},
                                    {"positions_from": "both"}, {"causal_encoder": True}])
def test_transformer_only_options_are_refused(option):
    with pytest.raises(ConfigError, match="model.family='lstm'"):
        lstm_config(**option)


def test_lstm_width_need_not_divide_by_heads():
    assert lstm_config(d_model=30, n_heads=4).model.d_model == 30


@pytest.mark.parametrize("family", FAMILIES)
def test_recurrent_seeds_are_not_batched_replicas(family):
    with pytest.raises(ConfigError, match=f"model.family='{family}' cannot train as batched replicas"):
        train_replicas(lstm_config(family=family), k=2)


@pytest.mark.parametrize("family", ["stack_rnn", "tape_rnn"])
def test_the_memory_networks_have_one_layer(family):
    with pytest.raises(ConfigError, match=f"model.n_layers=2 with model.family='{family}'.*allowed: 1"):
        lstm_config(family=family, n_layers=2)


@pytest.mark.parametrize("encoder", [lambda: RecurrentEncoder(vocab_size=9, hidden=8, n_layers=2),
                                     lambda: RecurrentEncoder(vocab_size=9, hidden=8, n_layers=2, cell="rnn"),
                                     lambda: MemoryEncoder(9, 8, "stack_rnn"), lambda: MemoryEncoder(9, 8, "tape_rnn")])
def test_recurrent_networks_read_left_to_right(encoder):
    """An output depends only on the tokens up to it: changing a later token changes nothing before it."""
    torch.manual_seed(0)
    enc = encoder()
    x = torch.randint(5, 9, (4, 10))
    y = x.clone()
    y[:, 6] = torch.where(x[:, 6] == 5, 6, 5)
    a, b = enc(x), enc(y)
    assert torch.equal(a[:, :6], b[:, :6]) and not torch.equal(a[:, 6:], b[:, 6:])


def test_push_pop_and_no_op_move_the_stack_as_the_reference():
    stack = torch.tensor([[[1.0], [2.0], [3.0]]])  # [B=1, S=3, C=1], cell 0 on top
    value = torch.tensor([[9.0]])
    act = lambda a: torch.tensor([a])  # noqa: E731
    assert push_pop(stack, act([1.0, 0, 0]), value).flatten().tolist() == [9, 1, 2]  # the bottom falls off
    assert push_pop(stack, act([0, 1.0, 0]), value).flatten().tolist() == [2, 3, 0]
    assert push_pop(stack, act([0, 0, 1.0]), value).flatten().tolist() == [1, 2, 3]
    half = push_pop(stack, act([0.5, 0.5, 0]), value).flatten().tolist()
    assert half == pytest.approx([5.5, 2.0, 1.0])  # a mixture of the push and the pop


def test_tape_writes_under_the_head_then_moves():
    tape = torch.arange(5.0).view(1, 5, 1)  # cell 0 under the head
    written, jump = torch.tensor([[7.0]]), torch.tensor([2])
    moves = [tape_moves(tape, torch.eye(5)[i : i + 1], written, jump).flatten().tolist() for i in range(5)]
    assert moves[0] == [7, 1, 2, 3, 4]  # stay
    assert moves[1] == [1, 2, 3, 4, 7]  # left: cell 1 comes under the head (the reference's roll(eye, -1))
    assert moves[2] == [4, 7, 1, 2, 3]  # right
    assert moves[3] == [2, 3, 4, 7, 1]  # jump left by the input's length (2)
    assert moves[4] == [3, 4, 7, 1, 2]  # jump right
    assert rolled(torch.arange(3.0).view(1, 3, 1), torch.tensor([-4])).flatten().tolist() == [1, 2, 0]


def test_the_tape_jumps_by_each_rows_input_length():
    """The jump is the number of tokens before the answer slots (<unk>), row by row."""
    x = torch.tensor([[5, 6, 7, 4, 4, 0], [5, 6, 4, 4, 4, 4]])  # 3 and 2 input tokens, then <unk> slots
    assert input_length(x).tolist() == [3, 2]


@pytest.mark.slow
def test_lstm_learns_parity_beyond_its_training_lengths():
    """The cpu budget's LSTM cell (lengths 1..40, growing; learning rate 1e-2) is right at every
    length 41..100: the suite's LSTM result (and the committed run's cell, bit for bit)."""
    from toyformer.experiments.chomsky.protocol import BUDGETS, cell_config

    run = train(cell_config("parity_check", "lstm", BUDGETS["cpu"], seed=0, lr=1e-2))
    predict = model_predictor(run.model, "masked", run.device)
    assert protocol_score(predict, get_task("parity"), list(range(41, 101, 10)), 64)["score"] >= 0.99


@pytest.mark.parametrize("family", ["transformer", "lstm"])
def test_reports_of_suite_runs_read_the_answer_slots(family, tmp_path):
    """The suite's layout (masked, answer slots) and the LSTM in the inspect and report layers:
    the model's answers are read at the slots, a report is written (no attention drawn for an LSTM)."""
    from toyformer import write_report
    from toyformer.inspect.capture import predict, subject

    model = {"family": "lstm", "d_model": 16, "positional": "none"} if family == "lstm" else {
        "d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32}
    cfg = RunConfig.from_dict({"task": "stack_manipulation", "model": model, "train": {"steps": 4},
                               "eval": {"every": 4, "val_size": 8, "test_size": 8},
                               "data": {"batch_size": 4, "min_length": 1, "max_length": 6}})
    run = train(cfg, out_dir=tmp_path / "run")
    ex = run.splits.test[:3]
    answers = predict(subject(run), ex.input)
    assert torch.equal((answers != 0).sum(1), (ex.target != 0).sum(1))  # one answer token per slot, row by row
    page = write_report(tmp_path / "run").read_text()
    assert ("Attention" in page) == (family == "transformer")
