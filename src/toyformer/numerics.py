"""Which numeric code paths a CPU run takes, and the portable mode that makes a run the same on
every x86-64 machine.

A seeded run repeats to the bit only on the same *code path*: torch's kernels are compiled for
several instruction sets and picked by the CPU at start (``ATen`` capability ``DEFAULT``,
``AVX2`` or ``AVX512``); Intel MKL (the matrix products) and oneDNN (GELU, for one) choose their
own kernels by CPU too; and the thread count splits the reductions. Two machines with other
CPUs round differently, and a training run amplifies the first differing bit.

The portable mode pins all of them to paths every x86-64 CPU has: ATen's ``DEFAULT`` kernels,
MKL's conditional-numerical-reproducibility branch ``COMPATIBLE,STRICT``, oneDNN's SSE4.1
kernels, one thread, and torch's deterministic algorithms. The first three are read once, when
torch loads, so they are environment variables set before the process starts (the CLI restarts
itself with them; a Python user starts Python with them)::

    ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE,STRICT ONEDNN_MAX_CPU_ISA=SSE41 python train.py

>>> sorted(PORTABLE_ENV)
['ATEN_CPU_CAPABILITY', 'MKL_CBWR', 'MKL_NUM_THREADS', 'OMP_NUM_THREADS', 'ONEDNN_MAX_CPU_ISA']
>>> shell_line().startswith("ATEN_CPU_CAPABILITY=default ")
True

``train.portable=true`` asks for it: ``run.build`` refuses it in a process that is not pinned
(``NotPinned``, with the line above), and the training loop runs inside ``pinned_threads()``.
``compile_model()`` is ``torch.compile`` made to build on every code path, ``DEFAULT`` included.
"""

from __future__ import annotations

import contextlib
import os
import platform

import torch

from toyformer.errors import ConfigError

# read by torch, MKL and oneDNN when they load: they must be in the environment of the process
PORTABLE_ENV = {
    "ATEN_CPU_CAPABILITY": "default",  # ATen's kernels without AVX2/AVX-512 vectorisation
    "MKL_CBWR": "COMPATIBLE,STRICT",  # MKL's SSE2 branch, independent of the data's alignment
    "ONEDNN_MAX_CPU_ISA": "SSE41",  # oneDNN's kernels for SSE4.1, which every x86-64 CPU since 2008 has
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
X86 = ("x86_64", "AMD64")


class NotPinned(ConfigError):
    """``train.portable=true`` in a process whose numeric code paths are not pinned."""


def shell_line() -> str:
    """The environment of the portable mode as one shell prefix."""
    return " ".join(f"{k}={v}" for k, v in PORTABLE_ENV.items())


def code_path() -> dict:
    """The numeric code path of this process: what a bit-for-bit repeat of a CPU run must share."""
    return {"cpu_capability": torch.backends.cpu.get_cpu_capability(), "mkl_cbwr": os.environ.get("MKL_CBWR"),
            "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA"), "threads": torch.get_num_threads(),
            "portable": is_pinned()}


def unpinned() -> list[str]:
    """The settings of this process that differ from the portable mode's (empty when pinned)."""
    wrong = [f"{k}={os.environ.get(k, '(unset)')}" for k in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", "ONEDNN_MAX_CPU_ISA")
             if os.environ.get(k, "").upper() != PORTABLE_ENV[k].upper()]
    capability = torch.backends.cpu.get_cpu_capability()
    if not wrong and capability != "DEFAULT":  # set after torch loaded: too late to take effect
        wrong.append(f"torch's CPU capability {capability}")
    return wrong


def is_pinned() -> bool:
    return platform.machine() in X86 and not unpinned()


def check(portable: bool, device: torch.device) -> None:
    """Refuse ``train.portable=true`` where it cannot hold: not on x86-64, not on a GPU, and not
    in a process started without the pinned environment."""
    if not portable:
        return
    if device.type != "cpu":
        raise ConfigError(f"train.portable=true pins CPU code paths; the run's device is {device.type!r}; "
                          "allowed: device=cpu, or train.portable=false")
    if platform.machine() not in X86:
        raise ConfigError(f"train.portable=true pins x86-64 code paths; this machine is {platform.machine()}; "
                          "allowed: train.portable=false")
    wrong = unpinned()
    if wrong:
        raise NotPinned(f"train.portable=true needs the numeric code paths pinned before torch loads, and here "
                        f"{', '.join(wrong)}; start the process with {shell_line()} (the toyformer command "
                        "restarts itself so)")


@contextlib.contextmanager
def pinned_threads(portable: bool):
    """Inside: one torch thread and deterministic algorithms when ``portable`` (restored after)."""
    if not portable:
        yield
        return
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)


def compile_model(model: torch.nn.Module) -> torch.nn.Module:
    """``torch.compile(model)`` on this process's code path.

    - inductor's on-disk cache gets a folder per ATen CPU capability (``cpu-avx2`` under the usual
      one): its keys do not hold the capability, so a kernel cached by an AVX-512 process and read
      by an AVX2 one on the same machine computes NaN or aborts;
    - where ATen runs its ``DEFAULT`` (unvectorised) kernels, inductor's generated C++ is made
      scalar too (``cpp.simdlen`` 1): its vector kernels name ``at::vec`` types that do not build
      there (``CppCompileError``).
    """
    capability = torch.backends.cpu.get_cpu_capability()
    _inductor_cache_per_capability(capability)
    scalar = capability == "DEFAULT"  # cpp.* options touch only CPU code
    return torch.compile(model, options={"cpp.simdlen": 1} if scalar else None)  # type: ignore[return-value]


def _inductor_cache_per_capability(capability: str) -> None:
    """Point ``TORCHINDUCTOR_CACHE_DIR`` (read by inductor at every use) at ``<its folder>/cpu-<capability>``."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    base = os.environ.get("TORCHINDUCTOR_CACHE_DIR") or default_cache_dir()
    leaf = f"cpu-{capability.lower()}"
    if os.path.basename(base) != leaf:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = os.path.join(base, leaf)
