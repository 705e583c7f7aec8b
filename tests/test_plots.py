"""Figures: every plot renders to a PNG, written atomically, with tokens as literal text."""

import pytest

from conftest import small_config
from toyformer import attention, embeddings, plot_run, train
from toyformer.errors import ConfigError
from toyformer.inspect.plots import attention_figure, by_length_figure, curves_figure, label, png_bytes, save

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("plots") / "run"
    train(small_config(layout="seq2seq", train={"steps": 40}), out_dir=out)
    return out


@pytest.mark.parametrize("what", ["attention", "embeddings", "curves", "by-length", "by-position"])
def test_plot_run_writes_a_png(run_dir, what):
    path = plot_run(run_dir, what)
    assert path == run_dir / f"{what}.png" and path.read_bytes().startswith(PNG)
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]


def test_plot_run_rejects_bad_requests(run_dir):
    with pytest.raises(ConfigError, match="allowed: attention, embeddings, curves, by-length, by-position"):
        plot_run(run_dir, "weights")
    with pytest.raises(ConfigError, match="sample=5000 is out of range; allowed: 0..127"):
        plot_run(run_dir, "attention", sample=5000)
    with pytest.raises(ConfigError, match="apply to what='attention' only"):
        plot_run(run_dir, "curves", input_text="1 2")


def test_attention_grid_has_one_row_per_module_and_one_column_per_head(run_dir):
    maps = attention(str(run_dir), "1 2 3")
    fig = attention_figure(maps)
    grid = [ax for ax in fig.axes if ax.images]  # the colorbar draws no image
    assert len(grid) == len(maps.names()) * 2  # small_config: 2 heads
    assert [t.get_text() for t in grid[0].get_yticklabels()] == ["1", "2", "3"]
    assert png_bytes(fig).startswith(PNG)


def test_curves_draw_chance_and_target_lines():
    run = train(small_config(train={"steps": 40}))
    fig = curves_figure(run.metrics, run.summary, "tagger")
    labels = [t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts()]
    assert "chance ln 10" in labels and "validation" in labels


def test_tokens_are_literal_text_not_mathtext(tmp_path):
    assert label("$x$") == r"\$x\$" and label("a" * 20, 6) == "aaaaa…"
    bl = {"length": [1, 2], "n": [3, 4], "token_acc": [0.5, 1.0], "exact_match": [0.0, 1.0]}
    path = save(by_length_figure(bl), tmp_path / "x.png")
    assert path.read_bytes().startswith(PNG)


def test_embeddings_of_a_run_directory(run_dir):
    assert [m.name for m in embeddings(run_dir)] == ["encoder tokens", "encoder positions", "decoder tokens",
                                                      "decoder positions"]
