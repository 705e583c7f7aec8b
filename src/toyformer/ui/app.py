"""The results browser as a Starlette (ASGI) app: HTML pages and the JSON they are filled from.

Read only: every route is a GET; the store is opened with SQLite's ``mode=ro``; run directories
are only read. Bad input (a filter that does not parse, an unknown field, a token outside the
vocabulary) is a 400 with ``{"error": "one line"}``; a run that is not there (an unknown key, a
directory removed while its page is open) a 404 with the same shape; the page shows the line and
the server stays up. Every response carries a strict Content-Security-Policy (scripts from this
server only) and, bound to a loopback address, requests for another host name are refused (a
web page elsewhere cannot reach the server through DNS rebinding).

Pages: ``/runs``, ``/compare?run=K1&run=K2&group=F``, ``/run/KEY``, ``/sweeps``, ``/sweep?name=N``,
``/tunes``, ``/tune?dir=DIR``.
JSON: ``/api/fields``, ``/api/runs?where=&columns=``, ``/api/runs/keys?where=`` (the keys a filter
keeps), ``/api/runs/page?where=&columns=&sort=&desc=1&group=&page=&collapsed=&size=`` (one page of
the table, what the runs page shows: ``view``), ``/api/runs/groups?where=`` (every setting but the
seed), ``/api/runs/export?where=&columns=&format=csv|json|markdown`` (a download),
``/api/compare?run=K1&run=K2&group=``,
``/api/run/{curves,samples,attention,embeddings,breakdown,explain}?run=KEY``,
``/api/sweep/{pivot,plot}?name=``, ``/api/tunes``, ``/api/tune?dir=``.
"""

from __future__ import annotations

import importlib.util
import json
from functools import partial
from pathlib import Path
from typing import cast

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from toyformer.errors import ConfigError
from toyformer.files import dumps
from toyformer.ui import pages, run_page, sweeps, table, tune, view
from toyformer.ui.data import RunGone, Source
from toyformer.ui.explanation import explanation
from toyformer.ui.frame import direction
from toyformer.ui.models import Models

CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
       "font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-store"}
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def plotly_js() -> Path:
    """The ``plotly.min.js`` bundled with the plotly Python package (served, never fetched)."""
    spec = importlib.util.find_spec("plotly")
    # plotly is a package: its spec lists the folders it is in
    path = (Path(next(iter(cast("list[str]", spec.submodule_search_locations)))) / "package_data" / "plotly.min.js"
            if spec else None)
    if path is None or not path.is_file():
        raise ConfigError("toyformer ui needs plotly's bundled plotly.min.js: pip install 'toyformer[ui]'")
    return path


class JSON(Response):
    media_type = "application/json"

    def render(self, content) -> bytes:
        try:  # the common case at C speed; a NaN or an infinity goes the careful way
            return json.dumps(content, allow_nan=False).encode("utf-8")
        except ValueError:
            return dumps(content).encode("utf-8")


def _count(q, name: str, default: int, text: str | None = None, maximum: int | None = None, least: int = 0) -> int:
    """Query parameter ``name`` (or ``text``, one of its values) as a whole number from ``least``
    (to ``maximum``); ``default`` when absent; else a ConfigError naming it."""
    text = q.get(name) if text is None else text
    if text is None or text == "":
        return default
    if not text.isdigit() or int(text) < least or (maximum is not None and int(text) > maximum):
        allowed = f"{least} to {maximum}" if maximum is not None else f"a whole number >= {least}"
        raise ConfigError(f"{name} {text!r} is not allowed; allowed: {allowed}")
    return int(text)


def _error(exc: Exception) -> JSON:
    return JSON({"error": " ".join(str(exc).split())}, status_code=404 if isinstance(exc, RunGone) else 400)


def make_app(source: Source, host: str = "127.0.0.1") -> Starlette:
    """The app over ``source`` (a ``data.Source``). ``host``: the address it is served on; a
    loopback address admits only loopback host names."""
    models = Models()
    plotly = plotly_js()

    def api(fn):
        """A JSON endpoint: ``fn(query params)`` in a worker thread; ConfigError -> 400, RunGone -> 404."""
        async def endpoint(request: Request):
            try:
                return JSON(await run_in_threadpool(fn, request.query_params))
            except ConfigError as exc:
                return _error(exc)
        return endpoint

    def page(fn, status_if_missing: int = 404):
        async def endpoint(request: Request):
            try:
                return HTMLResponse(await run_in_threadpool(fn, request))
            except RunGone as exc:
                return HTMLResponse(pages.error_page(str(exc), 404), status_code=404)
            except ConfigError as exc:
                return HTMLResponse(pages.error_page(str(exc), 400), status_code=400)
        return endpoint

    def run_dir(q) -> Path:
        return source.resolve(q.get("run", ""))[0]

    def columns(q):
        return [c for c in (q.get("columns") or "").split(",") if c]

    def page_of(q):
        collapsed = [_count(q, "collapsed", 0, c) for c in (q.get("collapsed") or "").split(",") if c]
        return view.view(source, q.get("where"), columns(q), sort=q.get("sort") or None,
                         descending=q.get("desc") == "1", group=q.get("group") or None,
                         page=_count(q, "page", 0), collapsed=collapsed,
                         size=_count(q, "size", view.PAGE, maximum=view.MAX_PAGE, least=1))

    def attention(q):
        sample = q.get("sample")
        if sample is not None and not sample.lstrip("-").isdigit():
            raise ConfigError(f"sample {sample!r} is not an integer")
        return models.attention(run_dir(q), int(sample) if sample else None, q.get("input"))

    def breakdown(q):
        info = source.run(q.get("run", ""))
        s = info["summary"]
        return {"by_length": s.get("test_by_length"), "by_position": s.get("test_by_position"),
                "chance": s.get("chance"), "finished": bool(s)}

    def explained(q):
        info = source.run(q.get("run", ""))
        s, metrics = info["summary"], info["metrics"]
        step = s.get("steps") if s else (metrics[-1]["step"] if metrics else None)
        return explanation(info["run_dir"], step)

    def export(request: Request):
        q = request.query_params
        kind = q.get("format") or "csv"
        text = table.export(source, q.get("where"), columns(q), kind)
        media = {"csv": "text/csv", "json": "application/json"}.get(kind, "text/markdown")
        ext = {"markdown": "md"}.get(kind, kind)
        return Response(text + "\n", media_type=f"{media}; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="runs.{ext}"'})

    async def download(request: Request):
        try:
            return await run_in_threadpool(export, request)
        except ConfigError as exc:
            return _error(exc)

    routes = [
        Route("/", lambda request: RedirectResponse("/runs")),
        Route("/runs", page(lambda r: pages.runs_page())),
        Route("/compare", page(lambda r: pages.compare_page(r.query_params.getlist("run"),
                                                            r.query_params.get("group", "")))),
        Route("/run/{key:path}", page(lambda r: run_page.run_page(source.run(r.path_params["key"])))),
        Route("/sweeps", page(lambda r: pages.sweeps_page(sweeps.list_sweeps(source)))),
        Route("/sweep", page(lambda r: pages.sweep_page(sweeps.sweep_info(source, r.query_params.get("name", ""))))),
        Route("/tunes", page(lambda r: pages.tunes_page(tune.list_studies(source)))),
        Route("/tune", page(lambda r: pages.tune_page(tune.study(source, r.query_params.get("dir", ""))))),
        Route("/api/fields", api(lambda q: {"fields": (f := source.fields()),
                                            "directions": {k: d for k in f if (d := direction(k))}})),
        Route("/api/runs", api(lambda q: source.table(q.get("where"), columns(q)))),
        Route("/api/runs/keys", api(lambda q: source.keys(q.get("where")))),
        Route("/api/runs/page", api(page_of)),
        Route("/api/runs/groups", api(lambda q: table.groups(source, q.get("where"), q.get("group", ""), columns(q)))),
        Route("/api/runs/export", download),
        Route("/api/compare", api(lambda q: source.compare([k for k in q.getlist("run") if k],
                                                           q.get("group") or None))),
        Route("/api/run/curves", api(lambda q: source.curves(q.get("run", "")))),
        Route("/api/run/samples", api(lambda q: {"samples": models.samples(run_dir(q))})),
        Route("/api/run/attention", api(attention)),
        Route("/api/run/embeddings", api(lambda q: {"maps": models.embeddings(run_dir(q))})),
        Route("/api/run/breakdown", api(breakdown)),
        Route("/api/run/explain", api(explained)),
        Route("/api/tunes", api(lambda q: {"studies": tune.list_studies(source)})),
        Route("/api/tune", api(lambda q: tune.study(source, q.get("dir", "")))),
        Route("/api/sweep", api(lambda q: sweeps.sweep_info(source, q.get("name", "")))),
        Route("/api/sweep/pivot", api(lambda q: sweeps.sweep_pivot(source, q.get("name", ""), q.get("rows"),
                                                                   q.get("cols"), q.get("value", "")))),
        Route("/api/sweep/plot", api(lambda q: sweeps.sweep_plot(source, q.get("name", ""), q.get("x", ""),
                                                                 q.get("y", ""), q.get("lines") or None))),
        Route("/static/plotly.min.js", partial(_cached_file, plotly)),
        Route("/static/{name}", partial(_page_file, page_files())),
    ]
    middleware = [Middleware(SecurityHeaders)]
    if host in LOOPBACK:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=["127.0.0.1", "localhost", "[::1]", "::1"]))
    app = Starlette(routes=routes, middleware=middleware)
    app.state.models, app.state.source = models, source
    return app


class SecurityHeaders:
    """ASGI middleware: ``HEADERS`` on every response (static files keep their caching, and a
    page file asked for by its versioned URL may be kept for good)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        static = scope["path"].startswith("/static/")
        versioned = static and b"v=" in scope.get("query_string", b"")  # pages.static: the URL changes with the file

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    if name not in headers and not (static and name == "Cache-Control"):
                        headers[name] = value
                if versioned and message.get("status") == 200:
                    headers["Cache-Control"] = "public, max-age=31536000, immutable"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def page_files() -> dict[str, tuple[bytes, str]]:
    """The page scripts and the style sheet (``pages.STATIC``), read once: each served from
    memory in the event loop, with no thread or file opened per request."""
    kinds = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
    return {p.name: (p.read_bytes(), kinds[p.suffix]) for p in pages.STATIC.iterdir() if p.suffix in kinds}


async def _page_file(files: dict, request: Request) -> Response:
    found = files.get(request.path_params["name"])
    if found is None:
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(found[0], media_type=found[1])


async def _cached_file(path: Path, request: Request) -> FileResponse:
    return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})
