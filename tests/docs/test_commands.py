"""Every command and code block of the README and the guide runs.

The test collects every fenced block of ``PAGES`` and runs each page's blocks in order, in a fresh
working directory (``examples/`` and ``scripts/`` of the repository linked beside it,
``TOYFORMER_RESULTS`` inside it), so that a line can use what an earlier line of its page made:

- ``bash`` blocks, line by line (``\\`` continues a line, ``#`` starts a comment):

  - ``toyformer ...`` runs through the CLI in process (``toyformer.cli.main``) and must exit with
    0, or with the code its comment names (``# exits with code 2``);
  - ``python scripts/...`` runs the script with this interpreter;
  - ``make TARGET`` runs the ``toyformer`` lines of that target's recipe in the ``Makefile``, or
    is exempt (``EXEMPT``, with the reason);
  - any other line must be listed in ``EXEMPT``, or the test fails;

- ``python`` blocks are executed; the blocks of one page share one namespace;
- a block with a title (``title="my_task.py"``, any language) is also written to that file
  before the blocks after it run.

Long commands get tiny budgets by the substitutions of ``SUBSTITUTIONS`` (command lines) and
``PYTHON_SUBSTITUTIONS`` (Python text), never by being skipped. Three more keep a line inside the
sandbox: ``bench race|levers --reference DIR`` finds stand-ins of the reference scripts there
(``RACE_STAND_IN``: the reference code lives outside this repository), ``sweep --cluster
tcp://HOST:8786`` goes to an in-process Dask ``LocalCluster``, and
``python scripts/draw_layers.py`` without ``--out`` draws into the working directory, never over
the committed ``docs/architecture.svg``. A block in a language this test
does not know, a line it cannot run, or a stale table entry fails the test, so a new block is
covered or the test says why not.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import shutil
import subprocess
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ["README.md", "docs/index.md", "docs/architecture.md",
         *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs" / "guide").glob("*.md"))]

# Pages whose blocks train many runs (recipes, sweeps, replicas, torch.compile): marked slow. The
# others (the README first) stay in `make test-fast`, together well under a minute.
SLOW_PAGES = {"docs/guide/chomsky.md", "docs/guide/decoding.md", "docs/guide/explain.md", "docs/guide/inspecting.md",
              "docs/guide/models.md", "docs/guide/recipes.md", "docs/guide/replicas.md", "docs/guide/speed.md",
              "docs/guide/sweeps.md", "docs/guide/tune.md"}

RUN_LANGUAGES = {"bash", "python"}
TEXT_LANGUAGES = {"", "yaml", "toml", "text"}  # not run (written to a file when titled)

# The budget of a long command, made tiny: (name, which argv it applies to, what is appended).
TINY_TRAIN = ["--set", "train.steps=10", "--set", "eval.every=10", "--set", "eval.val_size=64",
              "--set", "eval.test_size=128"]
# sweep points may set train.steps themselves (R2's do): a time limit bounds them too
TINY_SWEEP = [*TINY_TRAIN, "--set", "train.max_time_s=5"]
SUBSTITUTIONS = [
    ("train: 10 steps, small held-out sets", lambda a: a[0] == "train" and "--resume" not in a, TINY_TRAIN),
    ("sweep: 10 steps (at most 5 s) per point, small held-out sets", lambda a: a[0] == "sweep", TINY_SWEEP),
    ("recipe: --quick", lambda a: a[0] == "recipe" and a[1:2] != ["list"], ["--quick"]),
    ("bench: --quick", lambda a: a[0] == "bench", ["--quick"]),
    ("eval --lengths: 16 examples per length", lambda a: a[0] == "eval" and "--lengths" in a, ["-n", "16"]),
    ("bench chomsky --max-test-length: 44 (--quick tests 41..43; a scratchpad decodes every length)",
     lambda a: a[:2] == ["bench", "chomsky"] and "--max-test-length" in a, ["--max-test-length", "44"]),
    ("tune: 2 trials of at most 1 s, 10 steps each", lambda a: a[0] == "tune",
     ["--budget-s", "12", "--trials", "2", "--trial-s", "1", *TINY_TRAIN]),
    ("diagnose --try: 1 seed, 10 s in all", lambda a: a[0] == "diagnose" and "--try" in a,
     ["--budget-s", "10", "--seeds", "1"]),
    ("explain: 64 examples per analysis", lambda a: a[0] == "explain" and "-n" not in a, ["-n", "64"]),
]
# bench race runs the reference code from --reference DIR, which lives outside this repository: the
# sandbox gets a stand-in folder whose scripts print the reference's result lines at once
RACE_STAND_IN = {
    "r0_count_ones.py": "r0 steps=20 loss_last100=2.3 test_acc=0.100 samples_per_s=60 wall_s=1.0",
    "r1_lookup_table.py": "r1 2layer_pad steps=20 loss=1.0 acc=0.050 steps_per_s=9 wall_s=1.0",
    "r2_reverse.py": "r2 N=200 M=20 steps=20 loss=2.9 test_token_acc=0.050 samples_per_s=900 wall_s=1.0",
    "r4_arithmetic.py": "r4 pos=1 epochs=1 val_token_acc=0.100 val_exact_match=0.001 examples_per_s=900 wall_s=1.0",
}
CLUSTER_ADDRESS = "tcp://HOST:8786"  # sweep --cluster: replaced by the address of an in-process LocalCluster

# Python text -> what runs instead: (page, text, replacement, why)
PYTHON_SUBSTITUTIONS = [
    ("docs/guide/recipes.md", 'run_recipe("r3", "runs/recipes/r3")', 'run_recipe("r3", "runs/recipes/r3", quick=True)',
     "a whole recipe trains for minutes; --quick runs its pipeline"),
]

# Lines that are not run, with the reason. Keep this short.
EXEMPT = {
    "make test": "runs this very test suite",
    "make test-fast": "runs this very test suite",
    "ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=AVX2 make test":
        "runs this very test suite (on another code path: .ci/run does)",
    "ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE make test": "runs this very test suite (on another code path: "
                                                                 ".ci/run does)",
    "ATEN_CPU_CAPABILITY=default MKL_CBWR=COMPATIBLE,STRICT ONEDNN_MAX_CPU_ISA=SSE41 python my_script.py":
        "the user's own script; tests/test_numerics.py starts a portable run from an unpinned shell and checks that "
        "it restarts pinned and repeats the golden bits",
    "make docs": "tests/docs/test_site.py builds the site with --strict",
    "make docs-serve": "a server that runs until it is stopped; test_site.py builds the same site",
    "dask scheduler": "starts a long-running Dask scheduler; the sweep --cluster line runs against a LocalCluster",
    "dask worker tcp://HOST:8786 --nthreads 1 --nworkers 8": "starts long-running Dask workers (as above)",
    "toyformer ui": "a web server that runs until it is stopped; tests/ui/test_browser.py starts it on a free port and "
                    "drives every page in headless chromium (tests/ui/test_server.py: its start-up errors)",
    "tensorboard --logdir runs/tb": "TensorBoard's own web server, which runs until it is stopped; "
                                    "tests/test_tensorboard.py reads the event files back with TensorBoard's reader",
}
MAKE_RUN = {"demo"}  # make targets whose toyformer lines run here

EXIT_CODE = re.compile(r"#.*\bexits with code (\d+)")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<lang>[\w+-]*)(?P<attrs>.*)$")
TITLE = re.compile(r'title="([^"]+)"')


@dataclass
class Block:
    page: str
    line: int
    lang: str
    title: str | None
    code: str


def blocks(page: str) -> list[Block]:
    """Every fenced block of ``page``, in order."""
    found, lines = [], (ROOT / page).read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, indent = i, m["indent"]
        title = TITLE.search(m["attrs"])
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent):] if lines[i].startswith(indent) else lines[i])
            i += 1
        assert i < len(lines), f"{page}:{start + 1}: unclosed code fence"
        found.append(Block(page, start + 1, m["lang"], title[1] if title else None, "\n".join(body) + "\n"))
        i += 1
    return found


def bash_lines(code: str) -> list[str]:
    """Commands of a bash block: continuations joined, blank and comment-only lines dropped."""
    out, current = [], ""
    for raw in code.splitlines():
        line = raw.rstrip()
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip() and not current.strip().startswith("#"):
            out.append(current.strip())
        current = ""
    return out


def without_comment(line: str) -> str:
    return " ".join(shlex.split(line, comments=True))


class PageRunner:
    """Runs the blocks of one page in ``workdir``, one namespace for its Python blocks."""

    def __init__(self, page: str, workdir: Path):
        self.page, self.workdir = page, workdir
        # Python blocks run as one module (registered, so that dataclasses and pickling find it)
        self.module = types.ModuleType("docs_" + re.sub(r"\W", "_", page))
        sys.modules[self.module.__name__] = self.module
        self._cluster = None

    # --- bash -------------------------------------------------------------------------
    def run_line(self, line: str, where: str) -> None:
        command = without_comment(line)
        if command in EXEMPT:
            return
        argv = shlex.split(line, comments=True)
        if argv[0] == "toyformer":
            m = EXIT_CODE.search(line)
            self.toyformer(argv[1:], int(m[1]) if m else 0, where)
        elif argv[:2] == ["python", "scripts/draw_layers.py"]:
            if "--out" not in argv:
                argv += ["--out", "architecture.svg"]  # never overwrite the committed picture
            subprocess.run([sys.executable, *argv[1:]], check=True, cwd=self.workdir)
        elif argv[0] == "make" and len(argv) == 2 and argv[1] in MAKE_RUN:
            for recipe_line in make_recipe(argv[1]):
                self.make_line(recipe_line, where)
        else:
            pytest.fail(f"{where}: cannot run {command!r}: make it a toyformer command, or list it in EXEMPT "
                        f"with the reason")

    def make_line(self, line: str, where: str) -> None:
        argv = shlex.split(line)
        if argv[0] == "$(VENV)/toyformer":
            self.toyformer(argv[1:], 0, f"{where} (Makefile)")
        elif argv[:2] == ["rm", "-rf"]:
            for path in argv[2:]:
                shutil.rmtree(self.workdir / path, ignore_errors=True)
        else:
            pytest.fail(f"{where}: Makefile line {line!r}: not a toyformer command")

    def toyformer(self, argv: list[str], expected: int, where: str) -> None:
        from toyformer.cli import main

        for _name, applies, extra in SUBSTITUTIONS:
            if applies(argv):
                argv = [*argv, *extra]
        if CLUSTER_ADDRESS in argv:
            argv = [self.cluster() if a == CLUSTER_ADDRESS else a for a in argv]
        if argv[:2] in (["bench", "race"], ["bench", "levers"]):
            folder = self.workdir / argv[argv.index("--reference") + 1]
            folder.mkdir(parents=True, exist_ok=True)
            for name, line in RACE_STAND_IN.items():
                (folder / name).write_text(f"print({line!r})\n")
        t0 = time.perf_counter()
        code = main(argv)
        print(f"[{time.perf_counter() - t0:.1f} s] toyformer {shlex.join(argv)}", file=sys.stderr)
        assert code == expected, f"{where}: `toyformer {shlex.join(argv)}` exited with {code}, expected {expected}"

    def cluster(self) -> str:
        if self._cluster is None:
            distributed = pytest.importorskip("distributed")
            self._cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                                     protocol="tcp", host="127.0.0.1", dashboard_address=None)
        return self._cluster.scheduler_address

    def close(self) -> None:
        sys.modules.pop(self.module.__name__, None)
        if self._cluster is not None:
            self._cluster.close()

    # --- python -------------------------------------------------------------------------
    def run_python(self, code: str, where: str) -> None:
        for page, text, replacement, _ in PYTHON_SUBSTITUTIONS:
            if page == self.page and text in code:
                code = code.replace(text, replacement)
        exec(compile(code, where, "exec"), self.module.__dict__)

    # --- a page -------------------------------------------------------------------------
    def run(self, block: Block) -> None:
        where = f"{block.page}:{block.line}"
        if block.title:
            (self.workdir / block.title).write_text(block.code)
        if block.lang == "bash":
            for line in bash_lines(block.code):
                self.run_line(line, where)
        elif block.lang == "python":
            self.run_python(block.code, where)
        else:
            assert block.lang in TEXT_LANGUAGES, (
                f"{where}: a ```{block.lang} block: this test runs bash and python and knows {sorted(TEXT_LANGUAGES)}; "
                f"teach it the new language")


def make_recipe(target: str) -> list[str]:
    """The recipe lines of ``target`` in the Makefile."""
    lines, inside = [], False
    for line in (ROOT / "Makefile").read_text().splitlines():
        if re.match(rf"^{re.escape(target)}\s*:", line):
            inside = True
        elif inside and line.startswith("\t"):
            lines.append(line.strip())
        elif inside:
            break
    assert lines, f"Makefile: no recipe for {target!r}"
    return lines


@contextlib.contextmanager
def page_sandbox(tmp_path: Path, monkeypatch):
    """A fresh working directory; tasks, attention patterns and positional schemes registered by
    the page are removed afterwards."""
    from toyformer.config import positional
    from toyformer.explain import roles
    from toyformer.tasks import registry

    for name in ("examples", "scripts"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TOYFORMER_RESULTS", str(tmp_path / "runs" / "results.sqlite"))
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    before, patterns, schemes = dict(registry._REGISTRY), dict(roles._REGISTRY), dict(positional.SCHEMES)
    try:
        yield
    finally:
        positional.SCHEMES.clear()  # positional schemes a page registered (docs/guide/models.md)
        positional.SCHEMES.update(schemes)
        registry._REGISTRY.clear()
        registry._REGISTRY.update(before)
        roles._REGISTRY.clear()  # attention patterns a page registered (docs/guide/explain.md)
        roles._REGISTRY.update(patterns)


@pytest.mark.parametrize("page", [pytest.param(p, marks=pytest.mark.slow) if p in SLOW_PAGES else p for p in PAGES])
def test_every_block_of_the_page_runs(page, tmp_path, monkeypatch):
    runner = PageRunner(page, tmp_path)
    with page_sandbox(tmp_path, monkeypatch):
        try:
            for block in blocks(page):
                runner.run(block)
        finally:
            runner.close()


def test_pages_have_blocks_and_known_languages():
    """Each page is collected, and every block is in a language the runner handles."""
    for page in PAGES:
        found = blocks(page)
        for b in found:
            assert b.lang in RUN_LANGUAGES | TEXT_LANGUAGES, f"{page}:{b.line}: unknown block language {b.lang!r}"
    assert any(b.lang == "bash" for b in blocks("README.md"))


def test_tables_have_no_stale_entries():
    """Every exemption and Python substitution still matches a line of the pages."""
    lines = {without_comment(line) for page in PAGES for b in blocks(page) if b.lang == "bash"
             for line in bash_lines(b.code)}
    stale = [line for line in EXEMPT if line not in lines]
    assert not stale, f"EXEMPT lists lines no page has: {stale}"
    for page, text, _, _ in PYTHON_SUBSTITUTIONS:
        assert any(text in b.code for b in blocks(page) if b.lang == "python"), f"{page}: no block has {text!r}"


def test_readme_is_short():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_bash_lines_join_continuations_and_drop_comments():
    code = "# a comment\ntoyformer train a \\\n  --set x=1   # why\n\nmake demo\n"
    assert bash_lines(code) == ["toyformer train a    --set x=1   # why", "make demo"]
    assert without_comment(bash_lines(code)[0]) == "toyformer train a --set x=1"
