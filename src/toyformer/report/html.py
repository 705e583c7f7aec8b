"""One self-contained HTML page per run: verdict, diagnosis, curves, attention, embeddings, tables.

Images are embedded as base64 PNGs and the page has no scripts and no external links, so it
opens anywhere, offline, and can be mailed as one file. Every user string (task names, tokens,
config values) is HTML-escaped: a token ``<script>`` shows as text.

The page is built from ``Section`` objects by ``render(title, headline, sections)``; a run's
sections come from ``run_sections``. A sweep report builds its own sections (a results table,
comparison plots) from the same helpers and calls ``render``.

>>> toyformer.write_report("runs/rev")        # doctest: +SKIP
PosixPath('runs/rev/report.html')
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from pathlib import Path

from toyformer.files import write_text

MAX_PIXELS = 2_500_000  # a big figure is rendered at a lower resolution than 100 dpi


class Html(str):
    """Markup built by this module's helpers: trusted, never escaped again."""


def esc(value) -> Html:
    """Escape anything for HTML text or attribute values."""
    return value if isinstance(value, Html) else Html(html.escape(plain(value), quote=True))


def plain(value) -> str:
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.3e}"
    if value is None:
        return "—"
    return str(value)


@dataclass
class Section:
    """A titled block of the page. ``body`` is ``Html`` made with ``table``, ``image``, ``para``..."""

    title: str
    body: Html
    anchor: str = ""

    @property
    def id(self) -> str:
        return self.anchor or "".join(c if c.isalnum() else "-" for c in self.title.lower())

    def render(self) -> Html:
        return Html(f'<section id="{esc(self.id)}"><h2>{esc(self.title)}</h2>{self.body}</section>')


def para(text, cls: str = "") -> Html:
    return Html(f'<p class="{esc(cls)}">{esc(text)}</p>' if cls else f"<p>{esc(text)}</p>")


def join(*parts) -> Html:
    return Html("".join(p if isinstance(p, Html) else esc(p) for p in parts))


def table(headers: list | None, rows: list[list], cls: str = "") -> Html:
    """A table (``headers`` None: none); every cell is escaped unless it is ``Html``."""
    head = "<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr></thead>" if headers else ""
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in rows)
    return Html(f'<div class="scroll"><table class="{esc(cls)}">{head}<tbody>{body}</tbody></table></div>')


def image(png: bytes, alt: str) -> Html:
    data = base64.b64encode(png).decode("ascii")
    return Html(f'<figure><img src="data:image/png;base64,{data}" alt="{esc(alt)}"></figure>')


def figure(fig, alt: str) -> Html:
    """Render a matplotlib figure into an ``<img>``; a big one at a lower resolution."""
    from toyformer.inspect.plots import png_bytes

    w, h = fig.get_size_inches()
    dpi = int(min(100, (MAX_PIXELS / (w * h)) ** 0.5))
    return image(png_bytes(fig, dpi=dpi), alt)


def cards(items: list[tuple[str, object, str]]) -> Html:
    """Headline numbers: ``(label, value, note)`` each."""
    out = "".join(
        f'<div class="card"><div class="label">{esc(lab)}</div><div class="value">{esc(val)}</div>'
        f'<div class="note">{esc(note)}</div></div>'
        for lab, val, note in items
    )
    return Html(f'<div class="cards">{out}</div>')


def badge(text: str, kind: str) -> Html:
    return Html(f'<span class="badge {esc(kind)}">{esc(text)}</span>')


def tokens(words) -> Html:
    return Html('<div class="tokens">' + "".join(f"<code>{esc(w)}</code>" for w in words) + "</div>")


CSS = """
:root { --ink:#1f2933; --muted:#616e7c; --line:#e4e7eb; --bg:#f5f7fa; --card:#fff;
        --good:#1e8e3e; --bad:#c5221f; --warn:#b06000; --accent:#3b6fb6; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font:15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
header { background:linear-gradient(135deg,#1f2933,#3b4a5c); color:#fff; padding:28px 0 22px; }
.wrap { max-width:1180px; margin:0 auto; padding:0 24px; }
header h1 { margin:0 0 6px; font-size:26px; font-weight:650; letter-spacing:-0.01em; }
header .sub { color:#cbd2d9; font-size:14px; }
.verdict { display:flex; align-items:center; gap:14px; margin-top:16px; font-size:17px; flex-wrap:wrap; }
.badge { display:inline-block; padding:3px 12px; border-radius:999px; font-weight:650; font-size:13px;
         letter-spacing:0.02em; text-transform:uppercase; }
.badge.good { background:#e6f4ea; color:var(--good); } .badge.bad { background:#fce8e6; color:var(--bad); }
.badge.warn { background:#fef3e0; color:var(--warn); } .badge.info { background:#e8f0fe; color:var(--accent); }
nav { background:#fff; border-bottom:1px solid var(--line); position:sticky; top:0; z-index:1; }
nav .wrap { display:flex; gap:18px; overflow-x:auto; padding-top:10px; padding-bottom:10px; font-size:14px; }
nav a { color:var(--muted); text-decoration:none; white-space:nowrap; } nav a:hover { color:var(--accent); }
main { padding:8px 0 40px; }
section { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:18px 22px;
          margin:18px 0; box-shadow:0 1px 2px rgba(0,0,0,0.04); }
h2 { margin:0 0 12px; font-size:18px; } h3 { margin:16px 0 8px; font-size:15px; }
.cards { display:grid; grid-template-columns:repeat(auto-fill,minmax(165px,1fr)); gap:12px; margin-top:18px; }
.card { background:var(--card); color:var(--ink); border:1px solid var(--line); border-radius:10px; padding:12px 14px; }
.card .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:0.04em; }
.card .value { font-size:24px; font-weight:650; margin-top:2px; font-variant-numeric:tabular-nums; }
.card .note { color:var(--muted); font-size:12px; }
figure { margin:8px 0; } img { max-width:100%; height:auto; border-radius:6px; }
.scroll { overflow-x:auto; }
.grid { display:grid; grid-template-columns:repeat(auto-fit,minmax(250px,1fr)); gap:4px 28px; }
.grid table { width:100%; }
table { border-collapse:collapse; font-size:13px; margin:6px 0 4px; min-width:40%; }
th, td { text-align:left; padding:5px 12px 5px 0; border-bottom:1px solid var(--line); vertical-align:top; }
th { color:var(--muted); font-weight:600; font-size:12px; text-transform:uppercase; letter-spacing:0.03em; }
td { font-variant-numeric:tabular-nums; }
table.mono td { font-family:ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size:12.5px; }
.finding { border-left:4px solid var(--bad); padding:4px 0 4px 16px; margin:14px 0; }
.finding.mild { border-color:var(--warn); }
.finding h3 { margin-top:4px; }
.suspect { color:var(--bad); font-weight:650; }
.tokens { display:flex; flex-wrap:wrap; gap:6px; margin:6px 0; }
.tokens code, code { background:#eef2f7; border-radius:4px; padding:1px 6px; font-size:13px; }
.muted { color:var(--muted); } .ok { color:var(--good); font-weight:650; } .no { color:var(--bad); font-weight:650; }
details summary { cursor:pointer; color:var(--accent); margin:8px 0; }
footer { color:var(--muted); font-size:12px; text-align:center; padding:10px 0 30px; }
"""


def render(title: str, headline: Html, sections: list[Section], subtitle: str = "") -> str:
    """The whole page: a header with ``headline`` (verdict, cards), a contents bar, the sections."""
    nav = "".join(f'<a href="#{esc(s.id)}">{esc(s.title)}</a>' for s in sections)
    body = "".join(s.render() for s in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
        f'<header><div class="wrap"><h1>{esc(title)}</h1><div '
        f'class="sub">{esc(subtitle)}</div>{headline}</div></header><nav><div class="wrap">{nav}</div></nav><main><div '
        f'class="wrap">{body}</div></main><footer>made by toyformer · self-contained: no scripts, nothing '
        'fetched</footer></body></html>\n'
    )


def write(path: str | Path, title: str, headline: Html, sections: list[Section], subtitle: str = "") -> Path:
    """Render and write a page atomically."""
    path = Path(path)
    write_text(path, render(title, headline, sections, subtitle))
    return path
