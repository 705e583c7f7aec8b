"""The CPU kernels for small models: the same softmax as PyTorch, a dropout with the same law."""

import pytest
import torch
import torch.nn.functional as F
from torch.func import vmap

from toyformer.models import kernels as cpu_kernels
from toyformer.models.kernels import Dropout, dropout, softmax


@pytest.mark.parametrize("keys", [1, 3, 9, cpu_kernels.SHORT_ROW, cpu_kernels.SHORT_ROW + 7])
def test_softmax_and_its_gradient_equal_torch(keys):
    torch.manual_seed(0)
    x = (torch.randn(5, 2, 4, keys) * 4).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    mask = torch.rand(5, 1, 4, keys) < 0.3
    mask[..., 0] = False  # every row keeps a key
    g = torch.randn(5, 2, 4, keys)
    y, y_ref = softmax(x.masked_fill(mask, float("-inf"))), x_ref.masked_fill(mask, float("-inf")).softmax(-1)
    (y * g).sum().backward()
    (y_ref * g).sum().backward()
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(x.grad, x_ref.grad)
    assert (y[mask.expand_as(y)] == 0).all()


def test_softmax_keeps_low_precision_inputs_in_their_dtype():
    x = torch.randn(3, 9).bfloat16()
    y = softmax(x)
    assert y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), x.float().softmax(-1), atol=1e-2, rtol=1e-2)


def test_softmax_is_batched_by_vmap():
    x = torch.randn(4, 3, 6, 6)
    torch.testing.assert_close(vmap(softmax)(x), x.softmax(-1))


@pytest.mark.parametrize("p", [0.01, 0.1, 0.5])
def test_dropout_drops_the_right_fraction_and_keeps_the_mean(p):
    torch.manual_seed(0)
    y = dropout(torch.ones(200_003), p)  # a length that is not a multiple of 4
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - p) < 4 * (p * (1 - p) / 200_003) ** 0.5 + 1e-4
    kept = y[y != 0]
    assert torch.allclose(kept, torch.full_like(kept, 65536 / (65536 - round(p * 65536))))
    assert abs(y.mean().item() - 1) < 0.01


def test_dropout_gradient_is_the_mask_and_the_draw_follows_the_seed():
    torch.manual_seed(3)
    x = torch.randn(7, 9, 5, requires_grad=True)
    y = dropout(x, 0.2)
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y / x).detach())
    torch.manual_seed(3)
    assert torch.equal(dropout(torch.randn(7, 9, 5), 0.2), y.detach())


def test_dropout_is_the_identity_when_off_and_zero_at_p_one():
    x = torch.randn(4, 6)
    assert dropout(x, 0.5, training=False) is x and dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    module = Dropout(0.5).eval()
    assert module(x) is x and "p=0.5" in repr(module)


def test_dropout_under_vmap_draws_a_mask_per_replica():
    torch.manual_seed(0)
    y = vmap(lambda t: dropout(t, 0.5), randomness="different")(torch.ones(3, 64, 8))
    assert not torch.equal(y[0], y[1]) and not torch.equal(y[1], y[2])
    assert ((y == 0).float().mean(dim=(1, 2)) - 0.5).abs().max() < 0.1


def test_dropout_law_matches_torch_on_a_layer():
    """Same expected output and variance as ``F.dropout`` (not the same draws)."""
    torch.manual_seed(0)
    x = torch.randn(64)
    ours = torch.stack([dropout(x, 0.3) for _ in range(4000)])
    theirs = torch.stack([F.dropout(x, 0.3) for _ in range(4000)])
    torch.testing.assert_close(ours.mean(0), theirs.mean(0), atol=0.12, rtol=0)
    torch.testing.assert_close(ours.var(0), theirs.var(0), atol=0.25, rtol=0.2)


def test_relu_under_compile_takes_its_gradient_from_the_output(monkeypatch):
    x = torch.tensor([-2.0, -0.0, 0.0, 0.5, 3.0], requires_grad=True)
    grad = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    expected = torch.autograd.grad(torch.relu(x), x, grad)[0]
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    calls = []
    monkeypatch.setattr(cpu_kernels._ReLU, "backward", staticmethod(
        lambda ctx, g, real=cpu_kernels._ReLU.backward: calls.append(1) or real(ctx, g)))
    y = cpu_kernels.ReLU()(x)
    torch.testing.assert_close(y, torch.relu(x.detach()))
    torch.testing.assert_close(torch.autograd.grad(y, x, grad)[0], expected)  # 0 at 0, as torch.relu
    assert calls == [1]


def test_relu_under_compile_batches_under_vmap(monkeypatch):
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    x = torch.randn(3, 4, 5, requires_grad=True)
    y = vmap(cpu_kernels.relu, randomness="different")(x)
    torch.testing.assert_close(y, torch.relu(x.detach()))
    torch.testing.assert_close(torch.autograd.grad(y.sum(), x)[0], (x > 0).float())
