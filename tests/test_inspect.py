"""Inspecting a model: attention maps under stable names with tokens on both axes, embeddings in 2-D."""

import pytest
import torch

from conftest import small_config
from toyformer import ConfigError, attention, build_model, embeddings, get_task, samples, train
from toyformer.inspect.capture import parse_input, project_2d
from toyformer.run import build


@pytest.fixture(scope="module")
def solved():
    """A one-layer tagger that reverses 5 tokens perfectly."""
    run = train(small_config(train={"steps": 600, "warmup_steps": 20}, eval={"every": 20, "target": 1.0}))
    assert run.summary["test_exact_match"] == 1.0
    return run


def test_a_solved_reverser_attends_to_the_mirrored_position(solved):
    maps = attention(solved, "3 1 4 1 5")
    assert maps.names() == ["encoder.blocks.0.attn"]
    w, queries, keys = maps.sample("encoder.blocks.0.attn", 0)
    assert queries == keys == ["3", "1", "4", "1", "5"]
    assert maps.describe(0) == ("3 1 4 1 5", "5 1 4 1 3")
    mirrored = w.amax(0)[torch.arange(5), torch.arange(4, -1, -1)]  # [5]: best head, key L-1-i
    assert (mirrored > 0.5).all(), w


@pytest.mark.parametrize("layout, names", [
    ("tagger", ["encoder.blocks.0.attn", "encoder.blocks.1.attn"]),
    ("causal", ["decoder.blocks.0.attn", "decoder.blocks.1.attn"]),
    ("seq2seq", ["encoder.blocks.0.attn", "encoder.blocks.1.attn", "decoder.blocks.0.attn",
                 "decoder.blocks.0.cross_attn", "decoder.blocks.1.attn", "decoder.blocks.1.cross_attn"]),
])
def test_every_layout_records_every_attention_with_its_tokens(layout, names):
    run = build(small_config(layout=layout, model={"n_layers": 2}))
    maps = attention(run, ["3 1 4", "2 7 1 8 2"])  # two inputs of different lengths
    assert maps.names() == names
    for name in names:
        w, queries, keys = maps.sample(name, 0)
        assert w.shape == (2, len(queries), len(keys))  # padding dropped
        assert torch.allclose(w.sum(-1), torch.ones(2, len(queries)), atol=1e-5)
        if name.endswith("cross_attn"):
            assert keys == ["3", "1", "4"] and queries[0] == "<bos>"
        elif layout == "causal":
            assert queries == keys and queries[:4] == ["3", "1", "4", "<sep>"]
            assert torch.allclose(w.triu(1), torch.zeros_like(w))  # nothing from the future
        elif name.startswith("encoder"):
            assert queries == keys == ["3", "1", "4"]
    given, answer = maps.describe(1)
    assert given == "2 7 1 8 2" and answer  # the model's own answer, whatever it is


def test_input_tokens_must_be_in_the_vocabulary():
    vocab = get_task("reverse", vocab_size=4).vocab
    assert parse_input(vocab, " 3 0  1 ").tolist() == [8, 5, 6]
    with pytest.raises(ConfigError, match=r"token '7' is not in the vocabulary of .*; allowed: 0 1 2 3$"):
        parse_input(vocab, "3 7")
    with pytest.raises(ConfigError, match="allowed: 0 1 2 3"):
        parse_input(vocab, "<eos>")  # specials are not task input
    with pytest.raises(ConfigError, match="empty input"):
        parse_input(vocab, "  ")


def test_a_bare_model_needs_its_task_and_layout():
    task = get_task("reverse", length=4)
    model = build_model(small_config().model, "tagger", task, (8, 8))
    with pytest.raises(ConfigError, match="needs its task and layout"):
        attention(model, "1 2")
    assert attention(model, "1 2", task=task, layout="tagger").names() == ["encoder.blocks.0.attn"]


def test_embeddings_raw_in_2d_and_pca_otherwise():
    run = build(small_config(model={"d_model": 2, "n_heads": 1}))
    tokens, positions = embeddings(run)
    assert (tokens.name, tokens.method, tokens.labels) == ("encoder tokens", "raw", [str(i) for i in range(10)])
    assert torch.equal(tokens.points, run.model.encoder.embed.tok.weight[5:].detach())
    assert positions.kind == "positions" and positions.labels == ["0", "1", "2", "3", "4"]  # the test set's width
    s2s = embeddings(build(small_config(layout="seq2seq", model={"positional": "sinusoidal"})))
    assert [m.name for m in s2s] == ["encoder tokens", "decoder tokens"]  # no learned positions
    assert all(m.method == "pca" and 0 < m.explained <= 1 for m in s2s)
    assert s2s[0].labels[0] == "0" and s2s[1].labels[0] == "<bos>"  # only the decoder reads <bos>


def test_pca_keeps_distances_of_points_that_lie_in_a_plane():
    g = torch.Generator().manual_seed(0)
    flat = torch.randn(12, 2, generator=g) @ torch.randn(2, 16, generator=g)  # rank 2 in 16-D
    points, method, explained = project_2d(flat)
    assert method == "pca" and explained == pytest.approx(1.0, abs=1e-5)
    assert torch.allclose(torch.cdist(points, points), torch.cdist(flat, flat), atol=1e-3)
    again, _, _ = project_2d(flat)
    assert torch.equal(points, again)


def test_samples_show_inputs_targets_and_answers(solved):
    rows = samples(solved, 3)
    assert len(rows) == 3 and all(r["correct"] for r in rows)
    assert rows[0]["target"] == " ".join(reversed(rows[0]["input"].split()))
