"""The bad-input contract, case by case: more than 200 malformed inputs through the CLI, in
process. For each: exit code 2, exactly one line on stderr that names the bad value or file, no
traceback, no new file and no results store.

The table is built from the config schema itself (every numeric key with a value below, above
and outside its declared range, every option with a value it does not allow), then the
command-line options, files, damaged run directories, unwritable paths, task files that break
the protocol, and requests too large for the machine.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import typing
from pathlib import Path

import pytest

from toyformer.cli import main
from toyformer.config import SECTIONS
from toyformer.tasks import registry

SMALL = ["--set", "train.steps=10", "--set", "eval.every=5", "--set", "eval.val_size=16", "--set", "eval.test_size=16",
         "--set", "model.d_model=16", "--set", "model.n_heads=2", "--set", "model.n_layers=1", "--quiet",
         "--no-live-plot"]
TRAIN = ["train", "reverse", "--out", "out", "--quiet", "--no-live-plot"]


@dataclasses.dataclass
class Case:
    argv: list[str]
    names: str  # what the one line must contain (the bad value, key or file)
    files: dict = dataclasses.field(default_factory=dict)  # files to write first: path -> text or bytes
    damage: str | None = None  # how to damage the copy of the trained run in "run/" (see DAMAGE)
    id: str = ""


def schema_cases() -> list[Case]:
    """Every numeric config key outside its range (and not a number), every option with a value
    it does not allow, taken from the dataclass fields of each section."""
    cases = []
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            key = f"{section}.{f.name}"
            allowed = f.metadata.get("range")
            hint = hints[f.name]
            if allowed is not None:
                bad = ["abc"]
                if allowed.lo is not None:
                    bad.append(str(allowed.lo if allowed.lo_open else allowed.lo - 1))
                if allowed.hi is not None:
                    bad.append(str(allowed.hi if allowed.hi_open else allowed.hi + 1))
                if float in typing.get_args(hint) or hint is float:
                    bad += ["nan", "inf"]
                for value in bad:
                    cases.append(Case([*TRAIN, "--set", f"{key}={value}"], key, id=f"{key}={value}"))
            elif typing.get_origin(hint) is typing.Literal:
                cases.append(Case([*TRAIN, "--set", f"{key}=bogus"], key, id=f"{key}=bogus"))
            elif hint is bool:
                cases.append(Case([*TRAIN, "--set", f"{key}=maybe"], key, id=f"{key}=maybe"))
    return cases


OPTION_CASES = [
    # train: config keys, sections, overrides
    Case([*TRAIN, "--set", "model.bogus=1"], "model.bogus"),
    Case([*TRAIN, "--set", "bogus.key=1"], "bogus"),
    Case([*TRAIN, "--set", "nosuchkey=1"], "nosuchkey"),
    Case([*TRAIN, "--set", "model.d_model"], "model.d_model"),
    Case([*TRAIN, "--set", "seed=-1"], "seed=-1"),
    Case([*TRAIN, "--set", "seed=99999999999999999999"], "seed"),
    Case([*TRAIN, "--set", "model.d_model=30", "--set", "model.n_heads=4"], "model.n_heads=4"),
    Case([*TRAIN, "--set", "model.positional=rope", "--set", "model.d_model=24", "--set", "model.n_heads=8"], "rope"),
    Case([*TRAIN, "--set", "data.min_length=3"], "data.min_length"),
    Case([*TRAIN, "--set", "data.min_length=5", "--set", "data.max_length=3"], "data.min_length=5"),
    Case([*TRAIN, "--set", "model.pooling=flatten"], "model.pooling"),
    Case([*TRAIN, "--set", "model.positional=abacus"], "abacus"),
    Case([*TRAIN, "--set", "model.positional=bogus"], "model.positional='bogus'"),  # the table of schemes
    Case([*TRAIN, "--set", "train.epochs=2"], "train.epochs"),
    Case([*TRAIN, "--set", "model.head_hidden=8,-3"], "model.head_hidden"),
    Case([*TRAIN, "--set", "device=tpu"], "device"),
    Case(["train", "nosuchtask", "--out", "out"], "nosuchtask"),
    Case(["train", "reverse", "--set", "length=0", "--out", "out"], "task.length"),
    Case(["train", "reverse", "--set", "length=abc", "--out", "out"], "task.length"),
    Case(["train", "reverse", "--set", "vocab_size=1", "--out", "out"], "task.vocab_size"),
    Case(["train", "reverse", "--set", "task.bogus=1", "--out", "out"], "bogus"),
    Case(["train", "addition", "--set", "digits=0", "--out", "out"], "task.digits"),
    Case(["train", "arithmetic", "--set", "complexity=99", "--out", "out"], "task.complexity"),
    Case(["train", "modular_arithmetic", "--set", "op=^", "--out", "out"], "task.op"),
    Case(["train", "modular_arithmetic", "--set", "modulus=12", "--set", "op=/", "--out", "out"], "modulus=12"),
    Case(["train", "reverse", "--layout", "classifier", "--out", "out"], "classifier"),
    Case(["train", "reverse", "--layout", "bogus", "--out", "out"], "bogus"),
    Case(["train", "reverse", "--seed", "-1", "--out", "out"], "--seed"),
    Case(["train", "reverse", "--seed", "99999999999999999999", "--out", "out"], "--seed"),
    Case(["train", "reverse", "--seed", "x", "--out", "out"], "--seed"),
    Case(["train", "reverse", "--replicas", "0", "--out", "out"], "--replicas"),
    Case(["train", "reverse", "--replicas", "-2", "--out", "out"], "--replicas"),
    Case(["train", "reverse", "--replicas", "two", "--out", "out"], "--replicas"),
    Case(["train", "reverse", "--replicas", "3", "--replica-set", "lr=1e-3,3e-3", "--out", "out"], "--replica-set"),
    Case(["train", "reverse", "--replicas", "2", "--replica-set", "model.d_model=8,16", "--out", "out"],
         "--replica-set"),
    Case(["train", "reverse", "--replicas", "2", "--replica-set", "lr=a,b", "--out", "out"], "--replica-set"),
    Case(["train", "reverse", "--replica-set", "lr=1e-3", "--out", "out"], "--replica-set"),
    Case(["train", "reverse", "--device", "tpu", "--out", "out"], "tpu"),
    Case(["train", "--out", "out"], "task"),
    Case(["train", "--resume", "--out", "nowhere"], "nowhere"),
    Case(["train", "--resume"], "--out"),
    Case(["train", "reverse", "--bogus"], "--bogus"),
    Case(["train", "reverse", "--out", "run"], "run"),  # not empty
    Case(["nosuchcommand"], "nosuchcommand"),
    # eval
    Case(["eval", "run", "--beam", "0"], "--beam"),
    Case(["eval", "run", "--beam", "x"], "--beam"),
    Case(["eval", "run", "--n", "0", "--lengths", "5"], "--n"),
    Case(["eval", "run", "--lengths", "0"], "--lengths"),
    Case(["eval", "run", "--lengths", "a:b"], "--lengths"),
    Case(["eval", "run", "--lengths", "9:3"], "--lengths"),
    Case(["eval", "run", "--lengths", "5", "--plot", "x.gif"], "x.gif"),
    Case(["eval", "nowhere"], "nowhere"),
    Case(["eval", "run", "--device", "tpu"], "tpu"),
    # sample
    Case(["sample", "run", "--temperature", "nan"], "--temperature"),
    Case(["sample", "run", "--temperature", "inf"], "--temperature"),
    Case(["sample", "run", "--temperature", "0"], "--temperature"),
    Case(["sample", "run", "--temperature", "-1"], "--temperature"),
    Case(["sample", "run", "--top-k", "0"], "--top-k"),
    Case(["sample", "run", "--beam", "0"], "--beam"),
    Case(["sample", "run", "--n", "0"], "--n"),
    Case(["sample", "run", "--n", "-5"], "--n"),
    Case(["sample", "run", "--seed", "-1"], "--seed"),
    Case(["sample", "run", "--greedy", "--beam", "2"], "--greedy"),
    Case(["sample", "run", "--beam", "2", "--n", "3"], "--n 3"),
    Case(["sample", "run", "--input", "1 2 nosuchtoken"], "nosuchtoken"),
    Case(["sample", "tagger_run"], "tagger"),
    # plot and report
    Case(["plot", "run", "--what", "bogus"], "bogus"),
    Case(["plot", "run", "--what", "attention", "--sample", "-1"], "--sample"),
    Case(["plot", "run", "--what", "attention", "--sample", "100000"], "--sample 100000"),
    Case(["plot", "run", "--what", "curves", "--sample", "1"], "--sample"),
    Case(["plot", "run", "--out", "e.gif"], "e.gif"),
    Case(["plot", "run", "--what", "attention", "--input", "1 nosuchtoken"], "nosuchtoken"),
    Case(["plot", "nowhere"], "nowhere"),
    Case(["report", "nowhere"], "nowhere"),
    Case(["report", "."], "."),
    # recipes
    Case(["recipe", "nosuch"], "nosuch"),
    Case(["recipe", "lengths", "--budget-s", "nan"], "--budget-s"),
    Case(["recipe", "lengths", "--budget-s", "0"], "--budget-s"),
    Case(["recipe", "lengths", "--budget-s", "-3"], "--budget-s"),
    Case(["recipe", "r0", "--budget-s", "10"], "--budget-s"),
    # sweeps and results
    Case(["sweep", "nowhere.yaml"], "nowhere.yaml"),
    Case(["sweep", "s.yaml", "--workers", "0"], "--workers"),
    Case(["sweep", "s.yaml", "--replicas", "0"], "--replicas"),
    Case(["results", "--store", "nowhere.sqlite"], "nowhere.sqlite"),
    Case(["results", "--where", "seed ="], "--where"),
    Case(["results", "--where", "nosuchfield = 1"], "nosuchfield"),
    Case(["results", "--rows", "nosuch"], "nosuch"),
    Case(["results", "--columns", "nosuch"], "nosuch"),
    Case(["results", "--rows", "seed", "--value", "nosuch"], "nosuch"),
    Case(["results", "--cols", "seed"], "--cols"),
    Case(["results", "--plot", "x=seed"], "--plot"),
    Case(["results", "--plot", "x=seed,y=test_token_acc", "--out", "p.gif"], "p.gif"),
    Case(["results", "--format", "xml"], "xml"),
    Case(["bench", "bogus"], "bogus"),
    Case(["bench", "chomsky", "--tasks", "nosuchtask"], "nosuchtask"),
    Case(["bench", "chomsky", "--tasks", "parity"], "parity"),  # the suite's name is parity_check
    Case(["bench", "chomsky", "--models", "gru"], "gru"),
    Case(["bench", "chomsky", "--schemes", "rope,bogus"], "bogus"),
    Case(["bench", "chomsky", "--budget", "gigantic"], "gigantic"),
    Case(["bench", "chomsky", "--max-test-length", "40"], "--max-test-length"),
    Case(["bench", "chomsky", "--max-test-length", "x"], "--max-test-length"),
    Case(["bench", "chomsky", "--seeds-as", "both"], "both"),
    Case(["bench", "chomsky", "--workers", "0"], "--workers"),
    Case(["bench", "chomsky", "--workers", "2", "--cluster", "tcp://127.0.0.1:1"], "--cluster"),
    Case([*TRAIN, "--set", "model.family=lstm", "--set", "model.positional=rope"], "rope"),
    Case([*TRAIN, "--set", "model.family=lstm", "--set", "model.random_positions=true"], "random_positions"),
    Case([*TRAIN, "--set", "model.family=lstm", "--layout", "causal"], "lstm"),
    Case(["train", "reverse", "--set", "model.family=lstm", "--replicas", "2", "--out", "out"], "lstm"),
    Case(["train", "parity", "--set", "data.masking=answer", "--set", "model.family=gru", "--out", "out"],
         "model.family"),
    Case(["tasks", "--task-file", "nowhere.py"], "nowhere.py"),
    Case(["diagnose"], "run directory"),
    Case(["diagnose", "nowhere", "--try"], "nowhere"),
    Case(["diagnose", "nowhere", "--try", "--budget-s", "0"], "--budget-s"),
    Case(["diagnose", "nowhere", "--try", "--seeds", "0"], "--seeds"),
    Case(["bench", "diagnose", "--cases", "memorising,nosuchcase"], "nosuchcase"),
]
OPTION_CASES += [  # where: every unbalanced or foreign expression names --where
    Case(["results", "--where", expr], "--where", id=f"where {expr[:20]}")
    for expr in ["seed = 1 and", "(seed = 1", "seed = 1)", "seed ~ 1", "seed in (1,", "seed is 3",
                 "(" * 300 + "seed = 1" + ")" * 300, "seed = 1; drop table runs", "not"]
]

SWEEP = "base: {task: reverse}\ngrid: {model.d_model: [16]}\n"
FILE_CASES = [
    Case(["train", "--config", "c.yaml"], "c.yaml", {"c.yaml": "- a\n- b\n"}, id="config list"),
    Case(["train", "--config", "c.yaml"], "c.yaml", {"c.yaml": "3\n"}, id="config scalar"),
    Case(["train", "--config", "c.yaml"], "c.yaml", {"c.yaml": ""}, id="config empty"),
    Case(["train", "--config", "c.yaml"], "c.yaml", {"c.yaml": "model: 3\n"}, id="config section scalar"),
    Case(["train", "--config", "c.yaml"], "c.yaml", {"c.yaml": "model: [1]\n"}, id="config section list"),
    Case(["train", "--config", "c.yaml"], "c.yaml", {"c.yaml": "task: [1]\n"}, id="config task list"),
    Case(["train", "--config", "c.yaml"], "c.yaml", {"c.yaml": b"\xff\xfe\x00x"}, id="config not utf-8"),
    Case(["train", "--config", "c.yaml"], "c.yaml", {"c.yaml": "model: {d_model: [\n"}, id="config bad yaml"),
    Case(["train", "--config", "c.json"], "c.json", {"c.json": "{"}, id="config bad json"),
    Case(["train", "--config", "c.toml"], "c.toml", {"c.toml": "[model\n"}, id="config bad toml"),
    Case(["train", "--config", "c.txt"], "c.txt", {"c.txt": "task: reverse\n"}, id="config suffix"),
    Case(["train", "--config", "missing.yaml"], "missing.yaml", id="config missing"),
    Case(["train", "--config", "c.yaml"], "c.yaml", {"c.yaml": "task: reverse\nmodel: {bogus: 1}\n"}, id="config key"),
    Case(["train", "--config", "c.yaml"], "c.yaml", {"c.yaml": "task: reverse\nbogus: 1\n"}, id="config top key"),
    Case(["train", "--config", "c.yaml"], "c.yaml", {"c.yaml": "task: reverse\ntrain: {lr: .nan}\n"}, id="config nan"),
    Case(["sweep", "s.yaml"], "s.yaml", {"s.yaml": ""}, id="sweep empty"),
    Case(["sweep", "s.yaml"], "s.yaml", {"s.yaml": "- a\n"}, id="sweep list"),
    Case(["sweep", "s.yaml"], "s.yaml", {"s.yaml": "7\n"}, id="sweep scalar"),
    Case(["sweep", "s.yaml"], "s.yaml", {"s.yaml": b"\x80\x81"}, id="sweep not utf-8"),
    Case(["sweep", "s.yaml"], "s.yaml", {"s.yaml": "base: 3\n"}, id="sweep base scalar"),
    Case(["sweep", "s.yaml"], "s.yaml", {"s.yaml": "grid: [1, 2]\n"}, id="sweep grid list"),
    Case(["sweep", "s.yaml"], "s.yaml", {"s.yaml": "grid: {model.d_model: []}\n"}, id="sweep grid empty"),
    Case(["sweep", "s.yaml"], "s.yaml", {"s.yaml": "points: 3\n"}, id="sweep points"),
    Case(["sweep", "s.yaml"], "s.yaml", {"s.yaml": "seeds: [a]\n"}, id="sweep seeds"),
    Case(["sweep", "s.yaml"], "s.yaml", {"s.yaml": "bogus: 1\n"}, id="sweep key"),
    Case(["sweep", "s.yaml"], "s.yaml", {"s.yaml": SWEEP + "replicas: 0\n"}, id="sweep replicas"),
    Case(["sweep", "s.yaml"], "s.yaml", {"s.yaml": SWEEP + "table: 3\n"}, id="sweep table"),
    Case(["sweep", "s.yaml"], "s.yaml", {"s.yaml": SWEEP + "plot: {x: task.length}\n"}, id="sweep plot"),
    Case(["sweep", "s.yaml"], "model.d_model=-4", {"s.yaml": "base: {task: reverse}\ngrid: {model.d_model: [-4]}\n"},
         id="sweep bad value"),
    Case(["sweep", "s.yaml"], "train.lr=nan", {"s.yaml": "base: {task: reverse}\ngrid: {train.lr: [.nan]}\n"},
         id="sweep nan"),
]

DAMAGE = {  # how to damage the copy of a trained run in "run/"
    "truncated weights": lambda d: (d / "model.safetensors").write_bytes((d / "model.safetensors").read_bytes()[:100]),
    "garbage weights": lambda d: (d / "model.safetensors").write_bytes(b"not safetensors at all"),
    "garbage config": lambda d: (d / "config.json").write_text("{not json"),
    "config list": lambda d: (d / "config.json").write_text("[1, 2]"),
    "config bad value": lambda d: (d / "config.json").write_text(
        (d / "config.json").read_text().replace('"d_model": 16', '"d_model": -16')),
    "garbage summary": lambda d: (d / "summary.json").write_text("}}"),
    "summary not utf-8": lambda d: (d / "summary.json").write_bytes(b"\xff\xfe"),
    "metrics middle line": lambda d: (d / "metrics.jsonl").write_text(
        "garbage\n" + (d / "metrics.jsonl").read_text()),
    "weights of another shape": lambda d: _other_shape_weights(d),
    "no config": lambda d: (d / "config.json").unlink(),
    "changed task copy": None,  # (see TASK_CASES)
}


def _other_shape_weights(d: Path) -> None:
    from safetensors.torch import load_file, save_file

    weights = load_file(str(d / "model.safetensors"))
    name = next(k for k, v in weights.items() if v.dim() == 2)
    weights[name] = weights[name][:, :-1].contiguous()
    save_file(weights, str(d / "model.safetensors"))


RUN_DIR_CASES = [
    Case([*argv], names, damage=damage, id=f"{argv[0]} {damage}")
    for damage, names in [("truncated weights", "model.safetensors"), ("garbage weights", "model.safetensors"),
                          ("garbage config", "config.json"), ("config list", "config.json"),
                          ("config bad value", "model.d_model"), ("garbage summary", "summary.json"),
                          ("summary not utf-8", "summary.json"), ("weights of another shape", "model.safetensors"),
                          ("no config", "run")]
    for argv in (["eval", "run"], ["report", "run"], ["plot", "run", "--what", "attention"], ["sample", "run"])
] + [
    Case(["plot", "run"], "metrics.jsonl", damage="metrics middle line", id="plot metrics middle line"),
    Case(["train", "--resume", "--out", "run"], "config.json", damage="garbage config", id="resume garbage config"),
    Case(["train", "--resume", "--out", "run"], "summary.json", damage="garbage summary", id="resume garbage summary"),
]

UNWRITABLE_CASES = [
    Case(["train", "reverse", "--out", "/proc/toyformer-run", *SMALL], "/proc/toyformer-run", id="out under /proc"),
    Case(["train", "reverse", "--out", "afile/run", *SMALL], "afile", {"afile": "x"}, id="out under a file"),
    Case(["plot", "run", "--out", "/proc/x.png"], "/proc/x.png", id="plot under /proc"),
    Case(["report", "run", "--out", "afile/r.html"], "afile", {"afile": "x"}, id="report under a file"),
]

TASK = '''
from dataclasses import dataclass
from typing import ClassVar
import torch
from toyformer import register_task, Vocab, Examples

@register_task("{name}")
@dataclass(frozen=True)
class Broken:
    """A task that breaks the protocol."""
    length: int = 4
    kind: ClassVar[str] = "{kind}"
    default_layout: ClassVar[str] = "tagger"
    holdout: ClassVar[bool] = False
    description: ClassVar[str] = "broken"

    @property
    def vocab(self):
        return Vocab(["a", "b"])

    def sample(self, n, generator, length=None):
        x = torch.randint(5, 7, (n, self.length), generator=generator)
        {body}

    def domain(self):
        return None
'''
BROKEN = {
    "wrong rows": ("tag", "return Examples(x, x[:-1])", "shape"),
    "one-d target": ("tag", "return Examples(x, x[:, 0])", "2-d"),
    "float input": ("tag", "return Examples(x.float(), x)", "2-d torch.long"),
    "id outside vocab": ("tag", "return Examples(x, x + 10)", "outside the vocabulary"),
    "negative id": ("tag", "return Examples(x - 9, x)", "outside the vocabulary"),
    "bos token": ("tag", "return Examples(x, torch.ones_like(x))", "<bos>"),
    "sep token": ("tag", "return Examples(torch.full_like(x, 3), x)", "<sep>"),
    "unk token": ("tag", "return Examples(x, torch.full_like(x, 4))", "<unk>"),
    "token after pad": ("tag", "x[:, 1] = 0\n        return Examples(x, x.clone())", "after <pad>"),
    "empty row": ("tag", "x[0] = 0\n        return Examples(x, x.clone())", "without tokens"),
    "eos inside": ("tag", "x[:, 1] = 2\n        return Examples(x, x.clone())", "<eos>"),
    "tag widths": ("tag", "return Examples(x, x[:, :2])", "one target per input position"),
    "classify widths": ("classify", "return Examples(x, x)", "one target token"),
    "bad kind": ("regression", "return Examples(x, x)", "kind"),
    "not examples": ("tag", "return (x, x)", "Examples"),
    "sample raises": ("tag", "raise RuntimeError('boom')", "boom"),
}
TASK_CASES = [
    Case(["train", f"broken_{i}", "--task-file", f"t{i}.py", "--out", "out", *SMALL],
         f"broken_{i}' breaks the task protocol", {f"t{i}.py": TASK.format(name=f"broken_{i}", kind=kind, body=body)},
         id=f"task {what}")
    for i, (what, (kind, body, _)) in enumerate(BROKEN.items())
]
TASK_CASES += [
    Case(["train", "x", "--task-file", "t.py"], "t.py", {"t.py": "this is not python("}, id="task file syntax"),
    Case(["train", "x", "--task-file", "t.py"], "t.py", {"t.py": "x = 1\n"}, id="task file registers nothing"),
    Case(["train", "x", "--task-file", "nowhere.py"], "nowhere.py", id="task file missing"),
]

HUGE_CASES = [
    Case(["train", "reverse", "--set", "model.d_model=100000000", "--out", "out"], "weights", id="huge d_model"),
    Case(["train", "reverse", "--set", "length=100000000", "--out", "out"], "available", id="huge length"),
    Case(["train", "reverse", "--set", "model.n_layers=1000000", "--out", "out"], "available", id="huge depth"),
    Case(["train", "reverse", "--set", "eval.test_size=1000000000", "--out", "out"], "examples", id="huge test set"),
    Case(["train", "reverse", "--set", "data.batch_size=1000000000", "--out", "out"], "available", id="huge batch"),
    Case(["eval", "run", "--lengths", "100000000"], "--lengths 100000000", id="huge --lengths"),
    Case(["eval", "run", "--lengths", "5", "--n", "10000000000"], "--n", id="huge --n"),
    Case(["sample", "run", "--n", "100000000"], "--n 100000000", id="huge sample --n"),
]

HUGE_CASES += [  # every user string that reaches a model is checked before it does
    Case(["plot", "run", "--what", "attention", "--input", "1 " * 10**6], "1000000 tokens", id="huge --input"),
    Case(["explain", "run", "--input", "1 zz"], "'zz'", id="explain --input token"),
    Case(["explain", "run", "--input", " "], "empty input", id="explain --input empty"),
    Case(["explain", "run", "--input", "1 2 3", "--corrupt", "1 2"], "same number of tokens",
         id="explain --corrupt length"),
    Case(["explain", "run", "--input", "1 2", "--corrupt", "1 <eos>"], "'<eos>'", id="explain --corrupt special"),
    Case(["explain", "run", "--corrupt", "1 2"], "--corrupt needs --input", id="explain --corrupt alone"),
    Case(["sample", "run", "--input", "<pad> 1"], "'<pad>'", id="sample --input special"),
    Case(["sample", "run", "--input", "1 " * 10**6], "1000000 tokens", id="sample huge --input"),
]


def _store_bytes(version: int = 1, table: str = "runs") -> bytes:
    """A real SQLite file (rollback journal, so no -wal beside it): a toyformer store of schema
    ``version`` with one row, or a database of another program (``table`` other than runs)."""
    import sqlite3
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "s.sqlite"
        con = sqlite3.connect(path)
        if table == "runs":
            con.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, run_dir TEXT, recorded_at TEXT, source TEXT, "
                        "replica INTEGER, blob TEXT)")
            con.executemany("INSERT INTO runs (run_dir, recorded_at, source, replica, blob) "
                            "VALUES (?, 'now', 'api', 0, ?)",
                            [(f"/r{i}", "x" * 2000) for i in range(20)])
        else:
            con.execute(f"CREATE TABLE {table} (x)")
        con.execute(f"PRAGMA user_version = {version}")
        con.commit()
        con.close()
        return path.read_bytes()


STORE = _store_bytes()
BROKEN_STORES = {  # name -> (file content, what the one line names)
    "not sqlite": (b"hello, this is a text file\n" * 50, "not an SQLite database"),
    "truncated": (STORE[:len(STORE) // 2], "damaged"),
    "cut in its header": (STORE[:50], "damaged"),
    "another program's": (_store_bytes(table="things"), "other tables (things"),
    "newer schema": (_store_bytes(version=7), "newer toyformer"),
}
STORE_SWEEP = "base: {task: reverse, model: {d_model: 16, n_heads: 2, n_layers: 1}}\ngrid: {seed: [0]}\n"
STORE_COMMANDS = {  # every command that opens the results store, with the store in bad.sqlite
    "results": ["results", "--store", "bad.sqlite"],
    "results --sync": ["results", "--sync", ".", "--store", "bad.sqlite"],
    "ui": ["ui", "--store", "bad.sqlite", "--port", "0"],
    "train": ["train", "reverse", "--out", "out", "--store", "bad.sqlite", *SMALL],
    "sweep": ["sweep", "sw.yaml", "--out", "sw", "--store", "bad.sqlite", "--quiet"],
    "tune": ["tune", "count_ones", "--budget-s", "5", "--out", "tn", "--store", "bad.sqlite"],
    "recipe": ["recipe", "r1", "--quick", "--out", "rc", "--store", "bad.sqlite"],
}
STORE_CASES = [
    Case(argv, names, {"bad.sqlite": content, "sw.yaml": STORE_SWEEP}, id=f"store {what}: {command}")
    for what, (content, names) in BROKEN_STORES.items() for command, argv in STORE_COMMANDS.items()
] + [
    Case(argv, names, {"sw.yaml": STORE_SWEEP}, id=f"store a directory: {command}")
    for command, argv in STORE_COMMANDS.items() for names in ["is a directory"]
] + [  # an empty store: nothing to read (a store to write into, though: train and sweep record into it)
    Case(["results", "--store", "empty.sqlite"], "holds no runs", {"empty.sqlite": b""}, id="store empty: results"),
    Case(["results", "--fields", "--store", "empty.sqlite"], "holds no runs", {"empty.sqlite": b""},
         id="store empty: results --fields"),
]

CASES = (schema_cases() + OPTION_CASES + FILE_CASES + RUN_DIR_CASES + UNWRITABLE_CASES + TASK_CASES + HUGE_CASES
         + STORE_CASES)


def test_the_table_has_at_least_200_cases():
    assert len(CASES) >= 200, len(CASES)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished causal run (sample applies to it) and a tagger run, trained once."""
    root = tmp_path_factory.mktemp("trained")
    os.environ["TOYFORMER_RESULTS"] = str(root / "store.sqlite")
    assert main(["train", "reverse", "--layout", "causal", "--out", str(root / "run"), *SMALL, "--no-store"]) == 0
    assert main(["train", "reverse", "--out", str(root / "tagger_run"), *SMALL]) == 0  # recorded in store.sqlite
    return root


def snapshot(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=[c.id or " ".join(c.argv)[:60] for c in CASES])
def test_bad_input_gets_one_line_exit_2_and_writes_nothing(case, trained, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    for name in ("run", "tagger_run"):
        shutil.copytree(trained / name, work / name)
    shutil.copy(trained / "store.sqlite", work / "store.sqlite")
    if "directory" in case.id:
        (work / "bad.sqlite").mkdir()
    for name, content in case.files.items():
        (work / name).write_bytes(content) if isinstance(content, bytes) else (work / name).write_text(content)
    if case.damage:
        DAMAGE[case.damage](work / "run")
    monkeypatch.chdir(work)
    monkeypatch.setenv("TOYFORMER_RESULTS", str(work / "store.sqlite"))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))  # task files register into a copy
    monkeypatch.setattr(registry, "_SOURCES", dict(registry._SOURCES))
    before = snapshot(work)
    capsys.readouterr()
    code = main(case.argv)
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2, f"exit {code}; stderr: {err}"
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith("toyformer: error: "), err
    assert case.names in lines[0], f"{case.names!r} not named in: {lines[0]}"
    after = snapshot(work)
    assert set(after) == set(before), f"new files: {sorted(set(after) - set(before))}"
    assert all(after[k] == before[k] for k in before), "a file was rewritten"
