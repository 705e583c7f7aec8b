"""The documentation site builds with ``mkdocs build --strict`` (no warning at all), the README's
links point at files that exist, and the picture of the layers follows the import-linter contract."""

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import draw_layers  # noqa: E402  (scripts/ is not a package)


def test_site_builds_strict_without_warnings(tmp_path):
    pytest.importorskip("mkdocs")
    site = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(ROOT / "mkdocs.yml"),
                           "--site-dir", str(site)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    warnings = [line for line in log.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert not warnings, "\n".join(warnings)
    for page in ("index.html", "architecture/index.html", "guide/recipes/index.html", "reference/index.html",
                 "reference/eval/index.html", "results/index.html", "results/r0/report.html", "architecture.svg"):
        assert (site / page).is_file(), page
    api = (site / "reference" / "index.html").read_text()
    assert 'id="toyformer.train"' in api and 'id="toyformer.attention"' in api


LINK = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


def test_readme_links_point_at_files():
    text = (ROOT / "README.md").read_text()
    targets = [m[1] for m in LINK.finditer(text) if not m[1].startswith(("http://", "https://"))]
    assert targets, "the README links into docs/"
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, f"README links to missing files: {missing}"


def test_the_layer_picture_names_every_layer_of_the_contract():
    stack, inner = draw_layers.contracts()
    names = [name for layer in stack for name in layer]
    assert names[0] == "cli" and "errors" in stack[-1] and "eval" in names
    svg = (ROOT / "docs" / "architecture.svg").read_text()  # text stays text (svg.fonttype none)
    shown = {html.unescape(t) for t in re.findall(r">([^<>]+)</text>", svg)}
    missing = [n for n in names if n not in shown] + [s for subs in inner.values() for s in subs
                                                        if s not in shown and f"> {s}" not in shown]
    assert not missing, f"docs/architecture.svg misses {missing}: run python scripts/draw_layers.py"


def test_every_guide_page_is_reached_from_the_home_page():
    index = (ROOT / "docs" / "index.md").read_text()
    linked = {m[1] for m in LINK.finditer(index)}
    pages = sorted(f"guide/{p.name}" for p in (ROOT / "docs" / "guide").glob("*.md"))
    missing = [page for page in pages if page not in linked]
    assert not missing, f"docs/index.md does not link {missing}"
