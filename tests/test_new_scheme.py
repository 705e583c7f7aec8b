"""A new positional scheme is its module plus one row of ``toyformer.config.positional.SCHEMES``:
a toy scheme written to a module of its own (outside the package) and registered with one row is
accepted by the config, listed in its errors and the guide's table, built into a model, trained
by ``toyformer.train`` and loaded back from its run directory."""

from __future__ import annotations

import textwrap

import pytest
import torch

from conftest import small_config
from toyformer import load_run, train
from toyformer.config import RunConfig, positional
from toyformer.errors import ConfigError
from toyformer.run import build

MODULE = '''
import torch
from torch import nn


class Steps(nn.Module):
    """plug "embedding": a learned vector per position parity, scaled by the position."""

    def __init__(self, width):
        super().__init__()
        self.parity = nn.Embedding(2, width)

    @classmethod
    def from_config(cls, cfg, max_len, width):
        return cls(width)

    def forward(self, pos):  # [B, T] -> [B, T, width]
        return self.parity(pos % 2) * (1 + pos[..., None].float()).log()


class Nearby(nn.Module):
    """plug "scores": each head subtracts a learned multiple of the squared distance."""

    def __init__(self, n_heads):
        super().__init__()
        self.scale = nn.Parameter(torch.full((n_heads,), 0.1))

    @classmethod
    def from_config(cls, cfg, causal):
        return cls(cfg.n_heads)

    def forward(self, q_pos, k_pos):  # [B, Tq], [B, Tk] -> [B, H, Tq, Tk]
        return self.pairs(q_pos, k_pos[:, None, :])

    def pairs(self, q_pos, k_pos):  # [B, Tq], [B, Tq or 1, K] -> [B, H, Tq, K]
        dist = (q_pos[:, :, None] - k_pos).float() ** 2
        return -self.scale[None, :, None, None] * dist[:, None]
'''

TOYS = {"steps": ("embedding", "Steps"), "nearby": ("scores", "Nearby")}


@pytest.fixture
def toy_schemes(tmp_path, monkeypatch):
    """Place one: the module (a file of its own). Place two: one row per scheme."""
    (tmp_path / "toy_schemes.py").write_text(textwrap.dedent(MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    for name, (plug, cls) in TOYS.items():
        monkeypatch.setitem(positional.SCHEMES, name, positional.Scheme(name, plug, f"a toy {plug} scheme",
                                                                         module=f"toy_schemes:{cls}"))
    return tmp_path


@pytest.mark.parametrize("name", list(TOYS))
@pytest.mark.parametrize("layout", ["tagger", "causal"])
def test_a_new_scheme_is_one_row_and_its_module_and_trains(toy_schemes, name, layout, tmp_path):
    config = small_config("reverse", layout, model={"positional": name}, train={"steps": 4}, eval={"every": 2})
    run = train(config, out_dir=tmp_path / "run")
    assert run.summary["steps"] == 4 and torch.isfinite(torch.tensor(run.summary["train_loss"]))
    start = build(config).model.state_dict()  # the same seed, untrained
    own = [n for n, _ in run.model.named_parameters() if n.endswith(("parity.weight", "scale"))]
    assert own, "the toy scheme's parameters are part of the model"
    assert any(not torch.equal(run.model.state_dict()[n].cpu(), start[n]) for n in own), "and they train"
    again = load_run(tmp_path / "run")  # the run directory rebuilds with the row still registered
    for key, value in run.model.state_dict().items():
        assert torch.equal(again.model.state_dict()[key], value.cpu()), key


def test_a_new_scheme_is_listed_wherever_schemes_are_listed(toy_schemes):
    with pytest.raises(ConfigError, match=r"allowed: none, .*abacus, steps, nearby"):
        RunConfig.from_dict({"task": "reverse", "model": {"positional": "bogus"}})
    assert "| `nearby` | a bias on the attention scores | a toy scores scheme |" in positional.markdown_table()
    assert {"steps", "nearby"} <= set(positional.candidates())  # the schemes diagnose --try tries
    # the rules read the row: random positions apply to a scheme on sequence positions
    assert RunConfig.from_dict({"task": "reverse", "model": {"positional": "nearby", "random_positions": True,
                                                             "max_len": 40}}).model.positions.scheme.plug == "scores"


def test_a_row_whose_module_cannot_be_imported_is_one_config_error(monkeypatch):
    monkeypatch.setitem(positional.SCHEMES, "ghost", positional.Scheme("ghost", "scores", "x", module="no_such:Thing"))
    with pytest.raises(ConfigError, match="ghost.*no_such:Thing"):
        train(small_config("reverse", model={"positional": "ghost"}, train={"steps": 1}))
