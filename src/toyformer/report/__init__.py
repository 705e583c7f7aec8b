"""Self-contained HTML pages: a run's report, and the parts every page is built from
(``html.py``: sections, tables, figures, escaping) that sweeps and recipes use for theirs."""

from toyformer.report.html import (Html, Section, badge, cards, esc, figure, image, join, para, plain, render, table,
                                   tokens, write)
from toyformer.report.run_page import write_report

__all__ = ["Html", "Section", "badge", "cards", "esc", "figure", "image", "join", "para", "plain", "render", "table",
           "tokens", "write", "write_report"]
