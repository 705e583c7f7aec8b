"""Decoding: cached equals uncached, beam width 1 equals greedy, <eos> ends a row, beam search
beats greedy where it should, sampling is seeded."""

import pytest
import torch

from toyformer import ModelConfig, build_model, get_task
from toyformer.data.batches import causal_prompt
from toyformer.eval.decode import beam_search, greedy, sample
from toyformer.eval.evaluate import evaluate_examples
from toyformer.tasks.base import EOS, PAD, SEP

TASK = get_task("reverse", length=6)
SCHEMES = ["none", "sinusoidal", "learned", "rope", "alibi", "relative"]


def model_for(layout, positional="learned", **cfg):
    torch.manual_seed(0)
    base = {"d_model": 32, "n_heads": 4, "n_layers": 2, "d_ff": 64, "positional": positional}
    return build_model(ModelConfig(**{**base, **cfg}), layout, TASK, (16, 16)).eval()


def inputs(n=6, seed=0):
    x = TASK.sample(n, torch.Generator().manual_seed(seed)).input
    x[: n // 2, 4:] = PAD  # rows of two lengths: left-padded causal prompts, padded sources
    return x


@pytest.mark.parametrize("layout", ["causal", "seq2seq"])
@pytest.mark.parametrize("positional", SCHEMES)
def test_cached_logits_equal_a_full_forward(layout, positional):
    model = model_for(layout, positional)
    x = inputs()
    answer = TASK.sample(6, torch.Generator().manual_seed(1)).target  # any continuation
    with torch.no_grad():
        if layout == "causal":
            prompt = causal_prompt(x)
            full = model.logits(torch.cat([prompt, answer], 1))[:, prompt.shape[1] - 1 :]  # [B, 7, V]
        else:
            bos = torch.full((6, 1), 1)
            full = model.decode(torch.cat([bos, answer], 1), model.encode(x), x != PAD)
            prompt = x
        logits, cache = model.start(prompt, max_new=answer.shape[1])
        steps = [logits] + [model.step(answer[:, i], cache) for i in range(answer.shape[1])]
    assert torch.allclose(torch.stack(steps, 1), full, atol=1e-5)


@pytest.mark.parametrize("layout", ["causal", "seq2seq"])
@pytest.mark.parametrize("positional", ["learned", "rope", "alibi"])
def test_cached_decoding_equals_uncached(layout, positional):
    model, x = model_for(layout, positional), inputs()
    assert torch.equal(greedy(model, layout, x, 9), greedy(model, layout, x, 9, cache=False))
    beams = [beam_search(model, layout, x, 9, 3, cache=c, return_scores=True) for c in (True, False)]
    assert torch.equal(beams[0][0], beams[1][0]) and torch.allclose(beams[0][1], beams[1][1], atol=1e-5)


@pytest.mark.parametrize("layout", ["causal", "seq2seq"])
def test_beam_width_one_is_greedy(layout):
    model, x = model_for(layout), inputs(12)
    assert torch.equal(beam_search(model, layout, x, 9, beam_width=1), greedy(model, layout, x, 9))


class MarkovLM(torch.nn.Module):
    """A constructed causal "model": the next token depends on the last one only, through a
    table of probabilities. It counts decoding steps, and can be trained on nothing."""

    def __init__(self, probs: dict[int, dict[int, float]], vocab_size: int = 12):
        super().__init__()
        table = torch.full((vocab_size, vocab_size), 1e-9)
        for last, nxt in probs.items():
            for tok, p in nxt.items():
                table[last, tok] = p
        self.table = table.log()
        self.steps = 0

    def logits(self, tokens):  # [B, T] -> [B, T, V]
        return self.table[tokens]

    def start(self, prompt, max_new):
        cache = LastToken(prompt[:, -1])
        return self.table[cache.last], cache

    def step(self, tokens, cache):
        self.steps += 1
        cache.last = tokens
        return self.table[tokens]


class LastToken:
    def __init__(self, last):
        self.last = last

    def reorder(self, index):
        self.last = self.last[index]


def test_decoding_stops_at_eos_and_pads_after():
    # after <sep>: 5, then 6, then <eos>; after <eos> the model would go on with 7 7 7 ...
    lm = MarkovLM({SEP: {5: 1.0}, 5: {6: 1.0}, 6: {EOS: 1.0}, EOS: {7: 1.0}, 7: {7: 1.0}, PAD: {7: 1.0}})
    x = torch.tensor([[8, 9], [9, 0]])
    expected = [[5, 6, EOS, PAD, PAD, PAD, PAD, PAD]] * 2
    for decode in (lambda: greedy(lm, "causal", x, 8), lambda: beam_search(lm, "causal", x, 8, 3),
                   lambda: sample(lm, "causal", x, 8, generator=torch.Generator().manual_seed(0))):
        lm.steps = 0
        assert decode().tolist() == expected
        assert lm.steps == 2  # stopped once every row was done, not after 8 tokens


def test_beam_finds_a_more_likely_answer_than_greedy():
    # greedy takes 5 (p=.6) and then faces a flat distribution; 6 (p=.4) is followed by <eos>
    flat = {t: 0.25 for t in (EOS, 8, 9, 10)}
    lm = MarkovLM({SEP: {5: 0.6, 6: 0.4}, 5: flat, 6: {EOS: 0.95, 8: 0.05}, 8: {EOS: 1.0}, 9: {EOS: 1.0},
                   10: {EOS: 1.0}, EOS: {PAD: 1.0}, PAD: {PAD: 1.0}})
    x = torch.tensor([[7]])
    g = greedy(lm, "causal", x, 4)
    b, score = beam_search(lm, "causal", x, 4, beam_width=2, return_scores=True)
    assert g.tolist() == [[5, EOS, PAD, PAD]] and b.tolist() == [[6, EOS, PAD, PAD]]
    greedy_logp = torch.log(torch.tensor(0.6 * 0.25))
    assert score.item() == pytest.approx(torch.log(torch.tensor(0.4 * 0.95)).item(), abs=1e-5)
    assert score.item() > greedy_logp.item()


def test_length_penalty_favours_longer_answers():
    # two answers: <eos> at once (p=.5) or 5 <eos> (p=.45): alpha decides
    lm = MarkovLM({SEP: {EOS: 0.5, 5: 0.45, 6: 0.05}, 5: {EOS: 1.0}, 6: {EOS: 1.0}, EOS: {PAD: 1.0}, PAD: {PAD: 1.0}})
    x = torch.tensor([[7]])
    assert beam_search(lm, "causal", x, 3, beam_width=2, alpha=0.0)[0, 0].item() == EOS
    assert beam_search(lm, "causal", x, 3, beam_width=2, alpha=2.0)[0, 0].item() == 5


def test_sampling_is_seeded_and_respects_top_k():
    model, x = model_for("causal"), inputs(32)
    def draw(seed, **kw):
        return sample(model, "causal", x, 8, generator=torch.Generator().manual_seed(seed), **kw)

    assert torch.equal(draw(0, temperature=2.0), draw(0, temperature=2.0))
    assert not torch.equal(draw(0, temperature=2.0), draw(1, temperature=2.0))
    assert torch.equal(draw(3, top_k=1), greedy(model, "causal", x, 8))
    with torch.no_grad():
        top2 = model.logits(causal_prompt(x))[:, -1].topk(2, -1).indices  # [B, 2]
    first = draw(5, temperature=5.0, top_k=2)[:, 0]
    assert (first[:, None] == top2).any(-1).all()


def test_evaluation_decodes_by_beam_when_asked():
    model = model_for("causal")
    ex = TASK.sample(40, torch.Generator().manual_seed(2))
    g = evaluate_examples(model, ex, "causal", True, 16, "cpu")
    b1 = evaluate_examples(model, ex, "causal", True, 16, "cpu", decode="beam", beam_width=1)
    assert torch.equal(g["row_correct"], b1["row_correct"]) and g["token_acc"] == b1["token_acc"]
