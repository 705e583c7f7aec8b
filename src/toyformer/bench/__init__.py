"""toyformer's benchmarks, run on demand: ``toyformer bench WHAT`` (or ``python -m toyformer.bench``).

Each benchmark is a module with ``run(args) -> dict`` (every number, written as JSON) and
``render(result) -> str`` (one markdown table), listed in ``main.BENCHMARKS``:

- ``throughput`` (``throughput.py``): toyformer against plain PyTorch (``baselines.py``) on the
  models of R0, R1 and R4, interleaved; achieved model FLOP/s (``flops.py``) against the matmul
  peak (``peak.py``); the ``train.precision`` / ``train.compile`` knobs.
- ``peak``: the matmul peak alone.
- ``time-to-solve`` (``time_to_solve.py``): every task at its default configuration, trained to
  99.9% test exact match.
- ``kernels`` (``kernels.py``): the speed paths of ``models.kernels`` (short-row softmax,
  dropout, the attention implementations, the fused AdamW update) against PyTorch's ops.
- ``replicas`` (``replicas.py``): K batched replicas against one run and against K runs one
  after another.
- ``ui`` (``ui.py``): the results browser with 2,000 runs in its store, timed in headless
  chromium: the runs page to interactive and a filter's answer.
- ``explain`` (``explain.py``): the analysis time of ``toyformer explain`` on every task's default
  model, and what the hook points cost a training step.
- ``portable`` (``portable.py``): training speed on the portable mode's pinned code paths
  (``train.portable=true``) against the CPU's own.
- ``levers`` (``levers.py``): R4's race one setting at a time: which change makes toyformer's
  R4 configuration fast against the reference code.
- ``hold`` (``hold.py``): how many confirming evaluations in a row a solve needs (``eval.hold``):
  each hold's false solves, by the true error of the solved runs on fresh rows, and its cost.

Speed targets live here, never in timed unit tests; measured results are committed under
``docs/results/``, each file naming the command that wrote it.
"""

import os
import platform

import torch


def machine() -> dict:
    """Where a benchmark ran: CPU model, cores, torch threads, versions, GPU if any."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__, "platform": platform.platform()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info
