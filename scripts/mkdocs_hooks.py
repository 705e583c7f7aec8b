"""MkDocs hooks for the documentation site (mkdocs.yml loads this file).

The files under ``docs/results/`` are written by toyformer's own commands (each names the command
that wrote it) and are committed as they came out. Their prose says things like ``M[i][j]``,
which Markdown (and mkdocs-autorefs) reads as a reference-style link; here such brackets are
escaped so that the page shows them as written. The files themselves are not changed.

Tables that the code owns are filled in from it where a page has their marker: ``<!-- positional
schemes -->`` becomes the table of ``toyformer.config.positional.SCHEMES``, so the guide lists
exactly the schemes a config accepts.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's toyformer

from toyformer.config import positional  # noqa: E402

GENERATED = {"<!-- positional schemes -->": positional.markdown_table}

# `[a][b]` outside code spans: escape the second bracket so it is not a reference link
REFERENCE = re.compile(r"\]\[")
CODE = re.compile(r"(`+)(.+?)\1")


def on_page_markdown(markdown: str, page, **kwargs) -> str:
    for marker, table in GENERATED.items():
        markdown = markdown.replace(marker, table())
    if not page.file.src_uri.startswith("results/"):
        return markdown
    lines = []
    in_fence = False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        if not in_fence:
            line = _escape_outside_code(line)
        lines.append(line)
    return "\n".join(lines)


def _escape_outside_code(line: str) -> str:
    out, last = [], 0
    for m in CODE.finditer(line):
        out += [REFERENCE.sub(r"]\\[", line[last:m.start()]), m.group(0)]
        last = m.end()
    out.append(REFERENCE.sub(r"]\\[", line[last:]))
    return "".join(out)
