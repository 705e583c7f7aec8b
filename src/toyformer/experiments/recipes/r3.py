"""R3 the smallest transformer: an encoder-decoder on the alternating task, and the same data
trained with a sequence-to-sequence and with a masked-token (BERT-style) objective."""

from __future__ import annotations

from typing import Any

import torch

from toyformer.data import IGNORE, format_batch
from toyformer.experiments.recipes.base import Context, RecipeResult, Table, exact, outcome

SMALL = {"d_model": 16, "n_heads": 2, "n_layers": 1, "d_ff": 32, "positional": "sinusoidal"}
OBJECTIVES = {
    "seq2seq (encoder-decoder)": "seq2seq",
    "masked tokens (BERT-style encoder)": "masked",
    "next token (decoder-only)": "causal",
}


def show(tokens: torch.Tensor, vocab) -> str:
    return " ".join("." if int(t) == IGNORE else vocab.tokens[int(t)] for t in tokens if int(t) != 0)


def what_it_sees(task, layout: str) -> list[str]:
    """One training example as this objective presents it: what goes in, what is predicted."""
    ex = task.sample(1, torch.Generator().manual_seed(0))
    b = format_batch(ex, layout, generator=torch.Generator().manual_seed(1) if layout == "masked" else None)
    v = task.vocab
    if layout == "seq2seq":
        assert b.decoder_inputs is not None  # format_batch gives a seq2seq batch its decoder inputs
        return [f"encoder: {show(b.inputs[0], v)}; decoder: {show(b.decoder_inputs[0], v)}", show(b.labels[0], v)]
    return [show(b.inputs[0], v), show(b.labels[0], v)]


def own_objective_accuracy(run) -> float:
    """The masked model on its training objective: 15% of the test tokens hidden at random."""
    ex = run.splits.test.to(run.device)
    b = format_batch(ex, "masked", mask_prob=run.config.data.mask_prob, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        run.model.eval()
        pred = run.model(b).argmax(-1)
    counted = b.labels != IGNORE
    return ((pred == b.labels) & counted).sum().item() / max(counted.sum().item(), 1)


def loss_tokens(task, layout: str, n: int = 256) -> dict:
    """Per training example, measured on ``n`` examples: the tokens that carry a loss, and the
    input and answer tokens there are."""
    ex = task.sample(n, torch.Generator().manual_seed(0))
    b = format_batch(ex, layout, generator=torch.Generator().manual_seed(1) if layout == "masked" else None)
    return {"with_loss": (b.labels != IGNORE).sum().item() / n, "input": ex.input.shape[1],
            "answer": ex.target.shape[1], "examples": n}


def run(ctx: Context) -> RecipeResult:
    res = RecipeResult("r3",
                       "R3: the smallest transformer (encoder-decoder from scratch, and what a BERT-style model sees)")
    rows, runs = [], {}
    numbers: dict[str, dict[str, Any]] = {}
    for label, layout in OBJECTIVES.items():
        cfg = ctx.config({"task": {"name": "alternating", "length": 8}, "layout": layout, "model": SMALL,
                          "train": {"steps": 1000, "lr": 3e-3, "warmup_steps": 20},
                          "eval": {"every": 25, "target": 1.0}})
        run_ = runs[layout] = ctx.train(layout, cfg)
        s = run_.summary
        sees, predicts = what_it_sees(run_.task, layout)
        rows.append([label, sees, predicts, s["params"], s["test_token_acc"],
                     exact(s["test_exact_match"], s.get("test_n")),
                     s["solved_at_step"], s["solved_at_s"]])
        numbers[layout] = {k: s[k] for k in ("params", "test_token_acc", "test_exact_match", "solved_at_step",
                                             "solved_at_s", "steps", "wall_s")}
        numbers[layout]["diverged"] = s.get("diverged")
    res.tables.append(Table(
        "Same data, three objectives",
        ["objective", "the model is given", "and predicts (. = no loss)", "params", "test token acc",
         "test exact match (n, 95% CI)", "solved at step", "solved at s"], rows,
        note="The encoder reads the whole input at once (bidirectional); the decoder writes the answer one token "
             "at a time, each position seeing only the ones before it and, through cross-attention, the encoder. "
             "The masked-token model reads input and answer together with random tokens hidden by <unk> and "
             "predicts only those: at test time the whole answer is hidden and filled in at once. So a seq2seq model "
             "learns a mapping from input to output, a masked-token model the joint structure of the sequence."))
    own = own_objective_accuracy(runs["masked"])
    numbers["masked"]["own_objective_token_acc"] = own
    numbers["masked"]["mask_prob"] = runs["masked"].config.data.mask_prob
    for layout in OBJECTIVES.values():
        numbers[layout]["loss_tokens"] = loss_tokens(runs[layout].task, layout)
    res.findings = findings(numbers)
    res.numbers = numbers
    return res


def findings(numbers: dict) -> list[str]:
    """What the runs show, from ``numbers[layout]`` (test numbers, ``solved_at_*``, ``steps``,
    ``loss_tokens``; the masked model's ``own_objective_token_acc``)."""
    seq, masked, causal = numbers["seq2seq"], numbers["masked"], numbers["causal"]
    t = seq["loss_tokens"]
    first = (f"Tokens with a loss per training example (of {t['input']} input and {t['answer']} answer tokens, "
             f"measured on {t['examples']} examples): seq2seq {seq['loss_tokens']['with_loss']:.1f}, masked tokens "
             f"{masked['loss_tokens']['with_loss']:.1f}, next token {causal['loss_tokens']['with_loss']:.1f}.")
    own, whole = masked["own_objective_token_acc"], masked["test_token_acc"]
    measured = (f"{own:.3f} token accuracy with {masked['mask_prob']:.0%} of the tokens hidden at random (its "
                f"training objective), "
                f"{whole:.3f} with the whole answer hidden (the test)")
    if own >= 0.9 and own - whole >= 0.2:
        second = (f"The masked-token model fills single holes but not a whole answer: {measured}. Its objective "
                  "never hides half a sequence nor asks it to continue one.")
    else:
        second = f"The masked-token model: {measured}."
    decoders = [(label, numbers[layout]) for label, layout in OBJECTIVES.items() if layout != "masked"]
    if all(r["test_exact_match"] >= masked["test_exact_match"] + 0.2 for _, r in decoders):
        second += (" The decoders, trained to continue a sequence, get more answers entirely right: "
                   + ", ".join(f"{label} {r['test_exact_match']:.3f}" for label, r in decoders)
                   + f" vs {masked['test_exact_match']:.3f} exact match.")
    rest = [f"{label}: " + outcome("test exact match", numbers[layout]["test_exact_match"], 1.0,
                                   numbers[layout]["solved_at_step"], numbers[layout]["solved_at_s"],
                                   numbers[layout]["steps"], numbers[layout].get("diverged")) + "."
            for label, layout in OBJECTIVES.items()]
    return [first, second, *rest]
