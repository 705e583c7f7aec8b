"""The suite's score: the reference code's accuracy at every test length, averaged over the lengths.

At one length the accuracy is the share of right answer tokens among those the task's
``accuracy_mask`` counts (every answer token, or those up to the ``end`` mark of
``stack_manipulation`` and the binary tasks), pooled over the examples drawn at that length; the
score is the mean of these accuracies over the test lengths, each length weighing the same
(``experiments/range_evaluation.py`` and ``example.py`` of the reference code).

A predictor is any function ``examples -> [n, T_out]`` answer token ids (read in one pass by an
encoder, or decoded greedily by a decoder: a scratchpad), so the measure can be checked on
constructed predictors (a perfect one scores 1, a constant one its share of the
counted tokens) as well as on models.

>>> task = get_task("parity")
>>> perfect = lambda ex: ex.target
>>> protocol_score(perfect, task, [41, 42], n=16)["score"]
1.0
"""

from __future__ import annotations

import torch

from toyformer.data import IGNORE, format_batch
from toyformer.errors import ConfigError
from toyformer.eval.decode import greedy
from toyformer.run.memory import model_rows
from toyformer.tasks.base import PAD, Examples

ONE_PASS = ("classifier", "tagger", "masked")  # layouts whose whole answer comes out of one forward pass
DECODING = ("causal", "seq2seq")  # layouts that write their answer one token at a time (a scratchpad)
ATTENTION_BUDGET = 2**25  # rows per evaluation batch: at most this many attention scores per head


def accuracy_mask(task, target: torch.Tensor) -> torch.Tensor:
    """The answer positions the suite counts ``[n, T]``: the task's own ``accuracy_mask`` where it
    has one, else every answer token (not ``<pad>``)."""
    mask = getattr(task, "accuracy_mask", None)
    return mask(target) & (target != PAD) if mask is not None else target != PAD


def accuracy(task, target: torch.Tensor, predicted: torch.Tensor) -> tuple[int, int]:
    """Right and counted answer tokens (the reference code's measure, before the division)."""
    if predicted.shape != target.shape:
        raise ValueError(f"predictions {tuple(predicted.shape)} do not match the answers {tuple(target.shape)}")
    counted = accuracy_mask(task, target)
    return int(((predicted == target) & counted).sum()), int(counted.sum())


def protocol_score(predict, task, lengths: list[int], n: int, seed: int = 1, pooled: bool = False) -> dict:
    """``predict(examples) -> [n, T_out]`` scored at every length of ``lengths`` on ``n`` fresh
    examples each (drawn from ``seed`` and the length, the same for every predictor). Returns the
    ``score`` (the mean over lengths) and ``per_length`` ``{length: accuracy}``. ``pooled``: one
    call of ``predict`` on the examples of every length together (right-padded; a decoder then
    runs its steps once for all lengths), each length's answers cut back to its own width."""
    drawn = {length: task.sample(n, torch.Generator().manual_seed(seed * 100_003 + length), length=length)
             for length in lengths}
    if pooled:
        together = predict(Examples.cat(list(drawn.values()))).cpu()
        starts = [i * n for i in range(len(lengths))]
        answers = {length: together[s : s + n, : drawn[length].target.shape[1]] for length, s in zip(lengths, starts)}
    per_length = {}
    for length, ex in drawn.items():
        predicted = answers[length] if pooled else predict(ex)
        hits, counted = accuracy(task, ex.target, predicted.to(ex.target.device))
        per_length[length] = hits / max(counted, 1)
    return {"score": sum(per_length.values()) / len(per_length), "per_length": per_length}


def model_predictor(model, layout: str, device, sep: bool = True, heads: int = 1):
    """A predictor from a model whose layout answers in one pass (classifier, tagger, masked):
    the argmax at each answer position, in evaluation mode, in batches small enough that the
    attention scores of the longest test lengths fit in memory."""
    if layout in DECODING:
        return decoding_predictor(model, layout, device, sep)
    if layout not in ONE_PASS:
        raise ConfigError(f"the suite's score needs a layout that answers; got {layout!r}; allowed layouts: "
                          f"{', '.join(ONE_PASS + DECODING)}")

    @torch.no_grad()
    def predict(ex: Examples) -> torch.Tensor:
        was_training = model.training
        model.eval()
        seq = ex.input.shape[1] + (ex.target.shape[1] if layout == "masked" else 0)
        rows = max(1, ATTENTION_BUDGET // (heads * seq * seq))
        out = [_answers(model, layout, ex[i : i + rows].to(device), sep).cpu() for i in range(0, len(ex), rows)]
        model.train(was_training)
        return torch.cat(out)

    return predict


def decoding_predictor(model, layout: str, device, sep: bool = True):
    """A predictor from a decoder (``causal``, ``seq2seq``): its greedy answers, as long as the
    reference answers (``<pad>`` after its ``<eos>``), so that a scratchpad is the model's own work
    and the counted answer token is read where the task puts it.

    Examples of many lengths together (``protocol_score(pooled=True)``, in order of length) are
    decoded in consecutive batches, each cut to its own longest input and answer: a batch of
    41-token inputs neither carries 256 columns of padding nor decodes 256 steps, and holds as
    many rows as its own length allows."""
    @torch.no_grad()
    def predict(ex: Examples) -> torch.Tensor:
        width = ex.target.shape[1]
        ins, outs = (ex.input != PAD).sum(1), (ex.target != PAD).sum(1)  # [n] each
        out = torch.full((len(ex), width), PAD, dtype=ex.target.dtype)
        i = 0
        while i < len(ex):
            rows = model_rows(model, len(ex) - i, int(ins[i]) + int(outs[i]) + 2)
            while True:  # as many rows as the batch's own longest input and answer allow
                seq, w = int(ins[i : i + rows].max()), int(outs[i : i + rows].max())
                fit = model_rows(model, rows, seq + w + 2)
                if fit >= rows:
                    break
                rows = fit
            answers = greedy(model, layout, ex.input[i : i + rows, :seq].to(device), w + 1, sep)[:, :w]
            out[i : i + rows, :w] = answers.cpu()
            i += rows
        return out

    return predict


def _answers(model, layout: str, ex: Examples, sep: bool) -> torch.Tensor:
    batch = format_batch(ex, layout, sep)
    pred = model(batch).argmax(-1)  # [B] or [B, T]
    if layout == "classifier":
        return pred.unsqueeze(1)
    if layout == "tagger":
        return pred[:, : ex.target.shape[1]]
    answer = batch.labels != IGNORE  # masked: the <unk> slots, one per answer token
    return pred[answer].view(len(ex), ex.target.shape[1])
