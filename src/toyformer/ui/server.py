"""Starting the results browser: check the inputs, bind the port, serve with uvicorn.

Everything that can be wrong at start is a one-line ConfigError before anything is served (the
CLI turns it into exit code 2): a store that is not a toyformer store, a missing runs folder, a
port in use, a host that cannot be bound, the ``ui`` extra not installed. The socket is bound
here and handed to uvicorn, so the port checked is the port served.

>>> with Background(store="runs/results.sqlite", runs="runs") as url:   # doctest: +SKIP
...     urllib.request.urlopen(url + "/runs")
"""

from __future__ import annotations

import errno
import socket
import threading
from pathlib import Path

from toyformer.errors import ConfigError

DEFAULT_PORT = 8765
EXTRA = "pip install 'toyformer[ui]'"


def check_installed() -> None:
    """A one-line ConfigError naming the extra when starlette, uvicorn or plotly is missing."""
    import importlib

    missing = []
    for name in ("starlette", "uvicorn", "plotly"):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise ConfigError(f"toyformer ui needs {', '.join(missing)}: {EXTRA}")


def make_source(store: str | Path | None, runs: str | Path | None):
    """The ``data.Source`` for ``store`` and ``runs``, checked: a store given or found must be a
    toyformer store; with neither a store file nor a runs folder there is nothing to show."""
    from toyformer.experiments.store.health import StoreEmpty
    from toyformer.experiments.store.store import default_store_path
    from toyformer.ui.data import Source, check_store

    store_path = Path(store) if store is not None else default_store_path()
    if runs is not None and not Path(runs).is_dir():
        raise ConfigError(f"runs folder {str(runs)!r} is not a directory; pass runs=DIR")
    if runs is None and store_path.parent.is_dir():
        runs = store_path.parent  # runs/results.sqlite: the runs folder beside it
    if store is not None or store_path.is_file() or runs is None:
        try:
            check_store(store_path)
        except StoreEmpty:  # no run recorded yet: the runs folder may hold some; the start line says so
            if runs is None:
                raise
    return Source(store_path, runs)  # a store made later (the first run recorded) is read when it is there


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one), or a one-line ConfigError."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(f"host={host!r} cannot be resolved ({exc.strerror}); e.g. 127.0.0.1") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"port {port} on {host} is in use; choose another port= (0: a free one)") from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _server(app, sock: socket.socket, log_level: str):
    import uvicorn

    config = uvicorn.Config(app, log_level=log_level, access_log=False, lifespan="off", timeout_graceful_shutdown=2)
    return uvicorn.Server(config)


def serve(store=None, runs=None, host: str = "127.0.0.1", port: int = DEFAULT_PORT, log=None) -> None:
    """Serve until interrupted (Ctrl-C). Checks everything first; ``log`` (default: print to
    stdout) is told the address."""
    check_installed()
    from toyformer.ui.app import LOOPBACK, make_app

    log = log or (lambda line: print(line, flush=True))
    source = make_source(store, runs)
    app = make_app(source, host)
    sock = bind(host, port)
    where = (f"{source.store.path}, not there yet" if not source.store.path.is_file() else
             source.store.path if source.store_columns() else f"{source.store.path}, which holds no runs yet")
    log(f"toyformer ui: {url_of(sock)}/runs  (store {where}, runs {source.runs or '-'}; read only; Ctrl-C stops)")
    if host not in LOOPBACK:
        log(f"toyformer ui: warning: listening on {host}: whoever can reach this machine can read these runs")
    server = _server(app, sock, "warning")
    threading.Thread(target=source.warm, daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


class Background:
    """The server in a thread, for tests and benchmarks: ``with Background(...) as url``."""

    def __init__(self, store=None, runs=None, host: str = "127.0.0.1", port: int = 0):
        check_installed()
        from toyformer.ui.app import make_app

        self.source = make_source(store, runs)
        self.app = make_app(self.source, host)
        self.sock = bind(host, port)
        self.url = url_of(self.sock)
        self.server = _server(self.app, self.sock, "error")
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        threading.Thread(target=self.source.warm, daemon=True).start()
        import time

        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the ui server did not start")
            time.sleep(0.02)
        return self.url

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()
