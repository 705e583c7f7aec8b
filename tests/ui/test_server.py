"""The results browser's server, over HTTP: what each endpoint answers (checked against the store's
own queries and statistics), bad input at start (one line, exit code 2) and while serving (a
message, and the server stays up), read only, escaped, and a model loaded once per run."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from ui_lab import EVIL_TOKENS, get, lab, row_id, server, tiny, tree_digest  # noqa: F401 (fixtures)

from toyformer.cli import main


# ---- bad input at start: one line, exit code 2, nothing served -----------------------------------

def _one_line_error(capsys, code, *words):
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and err.startswith("toyformer: error: "), err
    for w in words:
        assert w in err, err
    return err


def test_a_store_that_is_not_a_toyformer_store(tmp_path, capsys):
    text = tmp_path / "notes.sqlite"
    text.write_text("not a database\n" * 100)
    _one_line_error(capsys, main(["ui", "--store", str(text), "--port", "0"]), "not a toyformer results store")
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE things (x)")
    con.close()
    _one_line_error(capsys, main(["ui", "--store", str(other), "--port", "0"]), "not a toyformer results store", "runs")
    _one_line_error(capsys, main(["ui", "--store", str(tmp_path / "missing.sqlite")]), "does not exist")
    _one_line_error(capsys, main(["ui", "--store", str(other), "--runs", str(text)]), "not a directory")
    _one_line_error(capsys, main(["ui", "--port", "70000"]), "70000")


def test_a_port_in_use(lab, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        code = main(["ui", "--store", str(lab["store"]), "--port", str(port)])
    _one_line_error(capsys, code, f"port {port}", "in use")


# ---- the pages and their numbers ------------------------------------------------------------------

def test_the_runs_table_filters_with_the_where_language(server, lab):
    from toyformer.experiments.store import ResultsStore

    store = ResultsStore(lab["store"], read_only=True)
    status, _, all_runs = get(server.base, "/api/runs", columns="task.name,model.d_model,test_token_acc")
    assert status == 200 and all_runs["count"] == len(store.query()) == 7
    assert all_runs["columns"] == ["key", "status", "task.name", "model.d_model", "test_token_acc"]
    where = "task.name = 'reverse' and model.d_model >= 16"
    _, _, some = get(server.base, "/api/runs", where=where, columns="model.d_model")
    assert sorted(r[0] for r in some["rows"]) == sorted(str(r["id"]) for r in store.query(where))
    assert {r[2] for r in some["rows"]} == {16}
    status, _, bad = get(server.base, "/api/runs", where="model.d_model >>= 3")
    assert status == 400 and "where=" in bad["error"] and "\n" not in bad["error"]
    status, _, bad = get(server.base, "/api/runs", where="colour = 'red'")
    assert status == 400 and "unknown field 'colour'" in bad["error"]
    _, _, fields = get(server.base, "/api/fields")
    assert {"key", "status", "task.name", "test_exact_match", "sweep"} <= set(fields["fields"])
    assert "config_json" not in fields["fields"]


def test_compare_bands_are_the_mean_and_95_ci_per_step(server, lab):
    from toyformer.files import read_jsonl
    from toyformer.stats import mean_ci

    keys = [row_id(lab["store"], p) for p in sorted((lab["runs"] / "sweeps" / "widths" / "runs").iterdir())]
    _, _, data = get(server.base, "/api/compare", run=keys, group="model.d_model")
    assert [r["key"] for r in data["runs"]] == keys and data["errors"] == []
    assert set(data["differing"]) == {"model.d_model", "seed"}
    assert {g["value"]: g["n"] for g in data["groups"]} == {8: 2, 16: 2}
    g16 = next(g for g in data["groups"] if g["value"] == 16)
    dirs = [p for p in sorted((lab["runs"] / "sweeps" / "widths" / "runs").iterdir()) if "d_model=16" in p.name]
    at_20 = [next(r["val_token_acc"] for r in read_jsonl(d / "metrics.jsonl") if r["step"] == 20) for d in dirs]
    mean, ci = mean_ci(at_20)
    i = g16["curves"]["step"].index(20)
    assert g16["curves"]["val_token_acc"]["mean"][i] == pytest.approx(mean)
    assert g16["curves"]["val_token_acc"]["hi"][i] == pytest.approx(mean + ci)
    status, _, bad = get(server.base, "/api/compare", run=keys[0], group="model.colour")
    assert status == 400 and "model.colour" in bad["error"]
    by_folder = "d:sweeps/widths/runs/d_model=16,seed=0"  # a key with a comma: keys are repeated parameters
    _, _, two = get(server.base, "/api/compare", run=[by_folder, keys[-1]])  # d_model=8, seed=1
    assert [r["key"] for r in two["runs"]] == [by_folder, keys[-1]]
    assert set(two["differing"]) == {"model.d_model", "seed"}


def test_the_sweep_pivot_is_the_stores_pivot(server, lab):
    from toyformer.experiments.store import ResultsStore

    status, _, sweeps_page = get(server.base, "/sweeps")
    assert status == 200 and "/sweep?name=widths" in sweeps_page
    _, _, info = get(server.base, "/api/sweep", name="widths")
    assert info["swept"] == ["model.d_model"] and info["plots"] == [{"x": "model.d_model", "y": "test_token_acc"}]
    assert len(info["points"]) == 4 and info["dir"].endswith("widths")
    _, _, p = get(server.base, "/api/sweep/pivot", name="widths", rows="model.d_model", cols="seed",
                  value="test_token_acc")
    want = ResultsStore(lab["store"], read_only=True).pivot("model.d_model", "seed", "test_token_acc",
                                                             where="sweep = 'widths'")
    assert p["row_keys"] == [[8], [16]] and p["col_keys"] == [[0], [1]]
    for i, rk in enumerate(want.row_keys):
        for j, ck in enumerate(want.col_keys):
            mean, ci, n = want.cell(rk, ck)
            assert (p["cells"][i][j]["mean"], p["cells"][i][j]["n"]) == (pytest.approx(mean), n)
    _, _, by_width = get(server.base, "/api/sweep/pivot", name="widths", rows="model.d_model", value="test_token_acc")
    cell = by_width["cells"][0][0]
    assert cell["n"] == 2 and "(mean of 2 runs, n=128, 95% CI " in cell["text"] and len(cell["keys"]) == 2
    assert 0 <= cell["low"] <= cell["mean"] <= cell["high"] <= 1 and cell["examples"] == 128
    _, _, plot = get(server.base, "/api/sweep/plot", name="widths", x="model.d_model", y="test_token_acc")
    assert plot["series"][0]["x"] == [8, 16] and plot["series"][0]["n"] == [2, 2]
    for s in plot["series"]:  # an accuracy's interval (stats.seeds_interval) stays inside [0, 1]
        assert all(0 <= lo <= m <= hi <= 1 for lo, m, hi in zip(s["low"], s["mean"], s["high"]))
        assert s["examples"] == [128, 128]  # the two seeds' test examples, pooled
    status, _, bad = get(server.base, "/api/sweep/pivot", name="widths", rows="model.colour", value="test_token_acc")
    assert status == 400 and "model.colour" in bad["error"]
    assert get(server.base, "/api/sweep", name="nope")[0] == 404


def test_a_run_is_loaded_once_for_every_look_inside(server, lab):
    key = row_id(lab["store"], lab["runs"] / "count")
    before = server.app.state.models.loads  # count_ones: 10 inputs in all, so 10 test examples
    _, _, samples = get(server.base, "/api/run/samples", run=key)
    assert len(samples["samples"]) == 10 and {"input", "target", "output", "correct"} <= set(samples["samples"][0])
    for i in range(3):
        _, _, att = get(server.base, "/api/run/attention", run=key, sample=i)
        assert [m["name"] for m in att["modules"]] == ["encoder.blocks.0.attn"]
        m = att["modules"][0]
        assert len(m["weights"]) == m["heads"] == 2 and len(m["weights"][0]) == len(m["queries"]) == 10
        assert all(abs(sum(row) - 1) < 1e-3 for row in m["weights"][0])
    _, _, typed = get(server.base, "/api/run/attention", run=key, input="1 1 0 0 0 0 0 0 0 0")
    assert typed["modules"][0]["queries"] == "1 1 0 0 0 0 0 0 0 0".split()
    status, _, bad = get(server.base, "/api/run/attention", run=key, input="1 x 0")
    assert status == 400 and "'x' is not in the vocabulary" in bad["error"]
    status, _, bad = get(server.base, "/api/run/attention", run=key, sample=10**6)
    assert status == 400 and "test example" in bad["error"]
    _, _, emb = get(server.base, "/api/run/embeddings", run=key)
    assert [m["name"] for m in emb["maps"]] == ["encoder tokens", "encoder positions"]
    assert server.app.state.models.loads - before == 1
    _, _, curves = get(server.base, "/api/run/curves", run=key)
    assert curves["finished"] and curves["curves"]["step"] == [10, 20, 30, 40]
    _, _, breakdown = get(server.base, "/api/run/breakdown", run=key)
    assert breakdown["by_position"]["position"] == [0] and breakdown["finished"]


def test_user_strings_are_escaped_and_the_headers_strict(server, lab):
    key = row_id(lab["store"], lab["runs"] / "evil")
    status, headers, page = get(server.base, f"/run/{key}")
    assert status == 200
    assert "evil&lt;i&gt;copy&lt;b&gt;" in page and "<i>copy" not in page and "<script>alert" not in page
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-eval" not in csp
    assert headers["x-content-type-options"] == "nosniff"
    _, _, att = get(server.base, "/api/run/attention", run=key, input=" ".join(EVIL_TOKENS[:3]))
    assert att["modules"][0]["queries"] == EVIL_TOKENS[:3]  # JSON, shown by the page as text
    status, _, js = get(server.base, "/static/plotly.min.js")
    assert status == 200 and len(js) > 1_000_000  # Plotly.js, from the plotly package: nothing from a CDN
    request = urllib.request.Request(server.base + "/runs", headers={"Host": "attacker.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:  # DNS rebinding: another host name is refused
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400


def test_unknown_runs_and_runs_not_in_the_store(server, lab, tmp_path):
    assert get(server.base, "/run/999999")[0] == 404
    assert get(server.base, "/run/d:../../etc")[0] == 404
    status, _, bad = get(server.base, "/api/run/curves", run="d:nowhere")
    assert status == 404 and "not there" in bad["error"]


def test_a_removed_run_directory_is_a_message_and_the_server_stays_up(server, lab):
    key = row_id(lab["store"], lab["runs"] / "doomed")
    assert get(server.base, f"/run/{key}")[0] == 200
    shutil.rmtree(lab["runs"] / "doomed")
    for path in ("/api/run/curves", "/api/run/samples", "/api/run/attention", "/api/run/embeddings"):
        status, _, body = get(server.base, path, run=key)
        assert status == 404 and "was removed" in body["error"], (path, body)
    status, _, page = get(server.base, f"/run/{key}")
    assert status == 404 and "was removed" in page
    assert get(server.base, "/runs")[0] == 200
    _, _, table = get(server.base, "/api/runs")
    assert key in [r[0] for r in table["rows"]]  # the store still has its row


def test_nothing_is_written(lab, tmp_path):
    """Every endpoint, and the store and run directories are as they were, to the byte and the mtime."""
    from toyformer.ui import Background

    before = tree_digest(lab["runs"])
    with Background(store=lab["store"], runs=lab["runs"], port=0) as base:
        key = row_id(lab["store"], lab["runs"] / "count")
        for path, params in [("/runs", {}), ("/sweeps", {}), ("/sweep", {"name": "widths"}), (f"/run/{key}", {}),
                             ("/compare", {"run": key}), ("/api/runs", {"where": "seed = 0"}), ("/api/fields", {}),
                             ("/api/compare", {"run": key}), ("/api/run/curves", {"run": key}),
                             ("/api/run/samples", {"run": key}), ("/api/run/attention", {"run": key}),
                             ("/api/run/embeddings", {"run": key}), ("/api/sweep/pivot",
                             {"name": "widths", "rows": "seed", "value": "test_loss"})]:
            assert get(base, path, **params)[0] == 200, path
    assert tree_digest(lab["runs"]) == before


def test_runs_not_in_the_store_are_listed_with_their_status(lab, tmp_path):
    from toyformer import train
    from toyformer.ui import Background

    runs = tmp_path / "runs"
    train(tiny("reverse"), out_dir=runs / "unrecorded")
    (runs / "stopped").mkdir(parents=True)
    shutil.copy(runs / "unrecorded" / "config.json", runs / "stopped" / "config.json")
    with Background(store=None, runs=runs, port=0) as base:
        _, _, table = get(base, "/api/runs", columns="task.name,steps")
        assert sorted((r[0], r[1]) for r in table["rows"]) == [("d:stopped", "stopped"), ("d:unrecorded", "unrecorded")]
        _, _, some = get(base, "/api/runs", where="status = 'stopped'")
        assert [r[0] for r in some["rows"]] == ["d:stopped"]
        status, _, page = get(base, "/run/d:unrecorded")
        assert status == 200 and "not in the store" in page
        status, _, msg = get(base, "/api/run/samples", run="d:stopped")
        assert status == 400 and "no weights yet" in msg["error"]


def test_without_the_ui_extra_one_line(lab, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn raises ImportError
    code = main(["ui", "--store", str(lab["store"]), "--port", "0"])
    _one_line_error(capsys, code, "uvicorn", "pip install 'toyformer[ui]'")


def test_the_command_serves_until_ctrl_c(lab, tmp_path):
    """``toyformer ui`` in its own process: one line with the address, pages served, and Ctrl-C
    (SIGINT) ends it with exit code 0."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, "-m", "toyformer", "ui", "--store", str(lab["store"]), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        line = proc.stdout.readline()
        assert line.startswith("toyformer ui: http://127.0.0.1:") and "read only" in line, line
        base = line.split()[2].removesuffix("/runs")
        assert get(base, "/runs")[0] == 200 and get(base, "/api/fields")[0] == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
