"""Ctrl-C in the first seconds, while the command line starts (torch's import takes seconds):
before any of toyformer's handlers exist. One line, exit 130 (143 for SIGTERM), no traceback,
nothing written; for ``python -m toyformer`` and for the ``toyformer`` console script alike.

The signal must fall inside the import, every time: the child runs with a ``sitecustomize``
(the test's only) whose import hook, when torch is first imported, says so in a file and
sleeps; the test sends the signal once the file is there. The real start-up path runs
unchanged: ``toyformer/__init__.py`` sets its guard (``interrupts.guard_start``) first thing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from toyformer import interrupts

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

SRC = str(Path(__file__).resolve().parents[1] / "src")
HOLD = textwrap.dedent("""
    import importlib.abc, os, sys, time

    class Hold(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "torch":
                sys.meta_path.remove(self)
                open(os.environ["HOLD_READY"], "w").close()
                time.sleep(120)
            return None

    sys.meta_path.insert(0, Hold())
""")
SCRIPT = textwrap.dedent("""\
    # -*- coding: utf-8 -*-
    import re
    import sys
    from toyformer.cli import main
    if __name__ == '__main__':
        sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
        sys.exit(main())
""")  # what pip writes for the console script (the pyproject's [project.scripts])


@contextmanager
def as_a_shell_starts():
    """Children started inside the block begin with Ctrl-C at its default, as from an interactive
    shell, whatever this test process has it as: ignored when pytest was itself started in the
    background by a non-interactive shell (``make test &`` in a script), which every child inherits."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # a Python handler: SIG_DFL after exec
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


def held_at_import(tmp_path: Path, command: list[str]) -> subprocess.Popen:
    """``command`` in a child (its own process group, as a terminal runs it), held inside
    ``import torch`` until signalled; returns once it is there."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOLD)
    ready = hook / "ready"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hook), SRC, os.environ.get("PYTHONPATH", "")]),
           "HOLD_READY": str(ready), "TOYFORMER_RESULTS": str(tmp_path / "work" / "store.sqlite")}
    (tmp_path / "work").mkdir()
    with as_a_shell_starts():
        proc = subprocess.Popen([sys.executable, *command], cwd=tmp_path / "work", env=env, start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ready.exists():
        if proc.poll() is not None:
            pytest.fail(f"the child ended ({proc.returncode}) before importing torch: {proc.communicate()[1][-2000:]}")
        assert time.monotonic() < deadline, "the child never reached torch's import"
        time.sleep(0.05)
    return proc


TRAIN = ["train", "reverse", "--out", "run", "--store", "store.sqlite", "--quiet"]


@pytest.mark.parametrize("how", ["python -m toyformer", "console script"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_while_starting_is_one_line(how, sig, tmp_path):
    if how == "console script":
        (tmp_path / "bin").mkdir()
        (tmp_path / "bin" / "toyformer").write_text(SCRIPT)
        command = [str(tmp_path / "bin" / "toyformer"), *TRAIN]
    else:
        command = ["-m", "toyformer", *TRAIN]
    proc = held_at_import(tmp_path, command)
    os.killpg(proc.pid, sig)  # a terminal's Ctrl-C reaches the whole group
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, (proc.returncode, err)
    assert err == interrupts.STARTING, err
    assert out == ""
    assert list((tmp_path / "work").iterdir()) == []  # nothing written: no run directory, no store


def test_a_program_importing_toyformer_keeps_python_s_handlers():
    """The guard is the command line's only: ``import toyformer`` in a program (or ``python -c``)
    leaves Python's Ctrl-C (a KeyboardInterrupt) as it is."""
    code = ("import signal, toyformer; "
            "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler, "
            "signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([SRC, os.environ.get("PYTHONPATH", "")])}
    with as_a_shell_starts():
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.stdout.split() == ["True", "True"], done.stderr


def test_the_command_s_own_handlers_take_over_and_then_python_s(monkeypatch):
    """Inside ``installed()`` the command's handlers stop at a safe point; after it, Python's own
    (not the guard, which would say "while starting" as the process exits)."""
    before = {s: signal.getsignal(s) for s in interrupts.SIGNALS}
    monkeypatch.setattr(interrupts, "command_line", lambda: True)
    try:
        for s in interrupts.SIGNALS:
            signal.signal(s, signal.default_int_handler if s == signal.SIGINT else signal.SIG_DFL)
        interrupts.guard_start()
        assert all(signal.getsignal(s) is interrupts._starting for s in interrupts.SIGNALS)
        with interrupts.installed():
            assert all(signal.getsignal(s) is interrupts._handle for s in interrupts.SIGNALS)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


@pytest.mark.parametrize("argv,orig,expected", [
    (["-m", "train"], ["python", "-m", "toyformer", "train"], True),
    (["-m"], ["python", "-X", "importtime", "-m", "toyformer"], True),
    (["-m"], ["python", "-mtoyformer.__main__"], True),
    (["-m"], ["python", "-m", "pytest", "-m", "toyformer"], False),  # the first -m is the interpreter's
    (["-c"], ["python", "-c", "import toyformer"], False),
    ([""], ["python"], False),
])
def test_the_command_line_is_recognised(argv, orig, expected, monkeypatch):
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setattr(sys, "orig_argv", orig)
    assert interrupts.command_line() is expected
