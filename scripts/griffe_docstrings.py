"""A Griffe extension for the documentation site (mkdocs.yml loads it): show the house style of
docstrings well in Markdown.

toyformer's docstrings are plain text (double-backtick code, ``::`` before an indented literal
block, ``>>>`` examples). mkdocstrings renders a docstring as Markdown, where a ``>>>`` example is
an ordinary paragraph (its lines run together and ``x["rows"][2]`` reads as a Markdown link) and
a paragraph's closing ``::`` is printed as is. This extension, as each object is loaded:

- wraps each doctest example (a ``>>>`` line and what follows it up to a blank line) in a fenced
  ``pycon`` block and drops the ``# doctest:`` directives, which say nothing to a reader;
- turns a paragraph's closing ``::`` into ``:`` (the indented block after it is code in
  Markdown too).

The source files are untouched.
"""

from __future__ import annotations

import re

import griffe

DIRECTIVE = re.compile(r"\s*#\s*doctest:.*$")


def markdown_docstring(text: str) -> str:
    """The docstring ``text`` with its doctests fenced and its ``::`` markers made ``:``."""
    out, block = [], []
    for line in text.splitlines():
        if block and line.strip():
            block.append(DIRECTIVE.sub("", line))
            continue
        if block:
            out += ["```pycon", *block, "```"]
            block = []
        if line.startswith(">>>"):
            if out and out[-1].strip():
                out.append("")  # a fence needs its own paragraph
            block = [DIRECTIVE.sub("", line)]
        elif line.rstrip().endswith("::") and not line.startswith((" ", "\t")):
            stripped = line.rstrip()[:-2].rstrip()
            if stripped:
                out.append(stripped + ":")
        else:
            out.append(line)
    if block:
        out += ["```pycon", *block, "```"]
    return "\n".join(out)


class PlainDocstrings(griffe.Extension):
    """Rewrite every docstring once, as its object is loaded (modules, classes, functions)."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None and (">>>" in obj.docstring.value or "::" in obj.docstring.value):
            obj.docstring.value = markdown_docstring(obj.docstring.value)
