"""What the page tests share: a task whose tokens and name are hostile HTML (``EVIL_TASK``,
written to a file for ``--task-file``), and Debian's chromium under Playwright to view the
pages those tokens end up in (the report, the results browser).

>>> executable = chromium_or_skip()                 # doctest: +SKIP
>>> browser = p.chromium.launch(executable_path=executable, headless=True, args=chromium_flags())  # doctest: +SKIP
"""

from __future__ import annotations

import os
import shutil

import pytest

EVIL_TOKENS = ["<script>alert(1)</script>", "<b>bold</b>", "&amp;", '"q"', "$x$", "a'b"]
EVIL_TASK = f'''
from dataclasses import dataclass
from typing import ClassVar
import torch
from toyformer import Examples, Vocab, register_task

@register_task("evil<i>copy<b>")
@dataclass(frozen=True)
class EvilCopy:
    """Copy a sequence of hostile tokens."""
    length: int = 4
    kind: ClassVar[str] = "tag"
    default_layout: ClassVar[str] = "tagger"
    holdout: ClassVar[bool] = False
    description: ClassVar[str] = "copy <img src=x onerror=alert(2)> tokens"

    @property
    def vocab(self):
        return Vocab({EVIL_TOKENS!r})

    def sample(self, n, generator, length=None):
        x = torch.randint(5, 11, (n, length or self.length), generator=generator)
        return Examples(x, x.clone())

    def domain(self):
        return None
'''


def chromium_flags(local_server: bool = False) -> list[str]:
    """Headless chromium that reaches nothing: no background traffic, and every name resolves
    to nothing, except the local server's address when a page is served from it."""
    rules = "MAP * ~NOTFOUND" + (", EXCLUDE 127.0.0.1" if local_server else "")
    return ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run", f"--host-resolver-rules={rules}"]


def chromium_or_skip() -> str:
    """The chromium executable Playwright drives. Without it (or without the playwright
    package) the test is skipped, and fails under CI=true, where the browser tests must run."""
    try:
        from playwright.sync_api import sync_playwright  # noqa: F401
        reason = ""
    except ImportError:
        reason = "the playwright package is not installed (pip install playwright; no `playwright install`)"
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not reason and not path:
        reason = "no chromium executable (apt-get install -y chromium)"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the browser test: {reason}")
        pytest.skip(reason)
    return path
