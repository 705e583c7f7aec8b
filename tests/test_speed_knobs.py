"""The speed knobs: train.precision (autocast on the run's device type) and train.compile."""

import math
import os
import subprocess
import sys

import pytest
import torch

from conftest import small_config
from toyformer import ConfigError, train
from toyformer.numerics import compile_model
from toyformer.run import build
from toyformer.training import SingleStep


def test_bf16_trains_on_the_run_device():
    cfg = small_config(train={"steps": 20, "precision": "bf16"}, eval={"every": 10})
    stepper = SingleStep(build(cfg, "cpu"))
    assert stepper.autocast == {"device_type": "cpu", "dtype": torch.bfloat16, "enabled": True}
    run = train(cfg, device="cpu")
    assert math.isfinite(run.summary["train_loss"])
    assert all(p.dtype == torch.float32 for p in run.model.parameters())  # weights stay fp32
    fp32 = train(small_config(train={"steps": 20}, eval={"every": 10}), device="cpu")
    assert run.summary["train_loss"] != fp32.summary["train_loss"]  # autocast really ran in bf16


def test_fp32_is_the_default_and_bad_precision_is_rejected():
    assert SingleStep(build(small_config(), "cpu")).autocast["enabled"] is False
    with pytest.raises(ConfigError, match="allowed: fp32, bf16"):
        small_config(train={"precision": "fp16"})


def test_compile_wraps_the_model(monkeypatch):
    compiled = []

    def fake_compile(model, options=None):  # a real compile takes 10-40 s here (tested once): record the call
        compiled.append(model)
        return model

    monkeypatch.setattr(torch, "compile", fake_compile)
    run = train(small_config(train={"steps": 10, "compile": True}, eval={"every": 10}))
    assert compiled == [run.model]
    train(small_config(train={"steps": 10}, eval={"every": 10}))
    assert len(compiled) == 1  # compile=false (the default) never compiles


def test_the_loop_runs_single_step(monkeypatch):
    """The throughput benchmark times SingleStep.step: it must be what the training loop runs."""
    calls = []
    original = SingleStep.step

    def counted(self, step, active=None):
        calls.append(step)
        return original(self, step, active)

    monkeypatch.setattr(SingleStep, "step", counted)
    run = train(small_config(train={"steps": 12}, eval={"every": 4}))
    assert calls == list(range(12)) and run.summary["steps"] == 12


@pytest.mark.slow
def test_compiled_model_matches_eager():
    """torch.compile really traces the few-keys attention and the mask-free ReLU (about 25 s):
    loss and gradients of one batch equal the eager model's, and the model is one graph."""
    from toyformer.eval.evaluate import loss_and_predictions

    cfg = small_config("lookup_table", model={"d_model": 16, "n_heads": 2, "n_layers": 2, "activation": "relu",
                                              "positional": "none", "pooling": "slot", "causal_encoder": True},
                       layout="classifier", data={"batch_size": 64})
    stepper = SingleStep(build(cfg, "cpu"))
    batch, model = stepper.batch(0), stepper.runs[0].model
    grads = []
    for forward in (model, compile_model(model)):
        model.zero_grad()
        loss, _ = loss_and_predictions(forward, batch)
        loss.backward()
        grads.append([loss.detach()] + [p.grad.clone() for p in model.parameters()])
    for eager, compiled in zip(*grads):
        torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-4)
    assert torch._dynamo.explain(model)(batch).graph_break_count == 0  # one graph: the fast path


def test_compile_keeps_a_cache_folder_per_code_path(monkeypatch, tmp_path):
    monkeypatch.setattr(torch, "compile", lambda model, options=None: (model, options))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    model = torch.nn.Linear(2, 2)
    _, options = compile_model(model)
    leaf = f"cpu-{torch.backends.cpu.get_cpu_capability().lower()}"
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / leaf)
    compile_model(model)  # once per process: never nested
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / leaf)
    assert options == ({"cpp.simdlen": 1} if leaf == "cpu-default" else None)


COMPILE_CHILD = """
import torch
from toyformer.numerics import compile_model
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Embedding(10, 16), torch.nn.LayerNorm(16), torch.nn.Linear(16, 10))
x = torch.randint(0, 10, (8, 5))
eager, compiled = model(x), compile_model(model)(x)
assert torch.isfinite(compiled).all() and torch.allclose(compiled, eager, atol=1e-5), (compiled - eager).abs().max()
print(torch.backends.cpu.get_cpu_capability())
"""


@pytest.mark.slow
def test_compiled_kernels_of_one_code_path_are_never_read_by_another(tmp_path):
    """Two processes of one machine on two ATen code paths share inductor's cache folder: the
    second must compile its own kernels (a kernel cached under AVX-512 computes NaN under AVX2)."""
    native = torch.backends.cpu.get_cpu_capability()
    paths = {"AVX512": ["avx512", "avx2"], "AVX2": ["avx2", "default"]}.get(native)
    if paths is None:
        pytest.skip(f"this CPU's ATen capability is {native}: no second vectorised path to compare")
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp_path)}
    for capability in paths:
        done = subprocess.run([sys.executable, "-c", COMPILE_CHILD], env={**env, "ATEN_CPU_CAPABILITY": capability},
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (capability, done.stderr[-2000:])
        assert done.stdout.split()[-1] == capability.upper()
