"""Phases from a metrics log (memorisation, generalisation, grokking) and the Fourier account of
modular addition, on constructed numbers and hand-set embeddings."""

import math

import pytest
import torch

from conftest import small_config
from toyformer.explain import fourier, phases
from toyformer.explain.phases import fourier_basis, key_frequencies, spectrum
from toyformer.run import build


def log(*rows):
    return [{"step": s, "train_exact_match": t, "val_exact_match": v} for s, t, v in rows]


def test_memorising_then_generalising_is_grokking():
    ph = phases(log((100, 0.5, 0.1), (200, 0.95, 0.1), (300, 1.0, 0.2), (400, 1.0, 0.3), (900, 1.0, 0.92)))
    assert ph["grokked"]
    assert ph["memorised"] == {"step": 200, "train": 0.95, "val": 0.1}
    assert ph["generalised"] == {"step": 900, "train": 1.0, "val": 0.92}


def test_rising_together_is_not_grokking():
    ph = phases(log((100, 0.3, 0.25), (200, 0.7, 0.6), (300, 0.95, 0.93), (400, 1.0, 1.0)))
    assert not ph["grokked"] and ph["memorised"] is None and ph["generalised"]["step"] == 300


def test_one_evaluation_with_a_gap_is_not_a_memorisation_phase():
    ph = phases(log((100, 0.95, 0.2), (200, 0.97, 0.9), (300, 1.0, 1.0)))
    assert ph["memorised"] is None and not ph["grokked"]


def test_memorising_without_generalising():
    ph = phases(log((100, 0.95, 0.1), (200, 1.0, 0.1), (300, 1.0, 0.12)))
    assert ph["memorised"]["step"] == 100 and ph["generalised"] is None and not ph["grokked"]
    assert phases([])["evaluations"] == 0


def test_the_fourier_basis_is_orthonormal():
    for p in (7, 8, 23):
        b = fourier_basis(p)
        torch.testing.assert_close(b @ b.T, torch.eye(p, dtype=torch.float64))


def _embedding(p, freqs, d=16):
    x = torch.arange(p, dtype=torch.float64)
    e = torch.zeros(p, d, dtype=torch.float64)
    for i, k in enumerate(freqs):
        e[:, 2 * i] = torch.cos(2 * math.pi * k * x / p)
        e[:, 2 * i + 1] = torch.sin(2 * math.pi * k * x / p)
    return e


def test_an_embedding_made_of_two_frequencies_has_those_as_key_frequencies():
    shares = spectrum(_embedding(23, [3, 7]))
    assert len(shares) == 11 and sum(shares) == pytest.approx(1.0)
    assert shares[2] == pytest.approx(0.5) and shares[6] == pytest.approx(0.5)
    assert key_frequencies(shares) == [3, 7]
    assert key_frequencies([1 / 11] * 11) == []


def test_the_fourier_account_of_a_modular_addition_run():
    run = build(small_config({"name": "modular_arithmetic", "modulus": 23}, "classifier", model={"d_model": 16}))
    vocab = run.task.vocab
    ids = torch.tensor([vocab.id(str(i)) for i in range(23)])
    with torch.no_grad():
        run.model.encoder.embed.tok.weight[ids] = _embedding(23, [4, 9]).float()
    f = fourier(run)
    assert f["key_frequencies"] == [4, 9] and f["key_share"] == pytest.approx(1.0)
    for key in ("loss", "restricted_loss", "excluded_loss"):
        assert math.isfinite(f[key])
    assert f["chance_loss"] == pytest.approx(math.log(23)) and f["train_pairs"] == len(run.splits.pool)
    other = build(small_config({"name": "modular_arithmetic", "modulus": 23, "op": "*"}, "classifier"))
    assert fourier(other) is None
