"""The results store's command-line side, shared by every command that records runs: ``--store``
and ``--no-store``, the store they name, and the error of a run that could not be recorded."""

from __future__ import annotations

from toyformer.errors import ConfigError


def add_store(parser, recording: bool = True) -> None:
    """``--store PATH`` (and ``--no-store`` where runs are recorded)."""
    parser.add_argument("--store", metavar="PATH",
                        help="results database (default: $TOYFORMER_RESULTS or runs/results.sqlite)")
    if recording:
        parser.add_argument("--no-store", action="store_true", help="do not record the run(s) in the results store")


def store_from_args(args):
    """The store a command records into: None with --no-store. A run it cannot record is kept in
    its ``failures`` (no warning line): ``raise_not_recorded`` reports it when the command ends."""
    from toyformer.experiments.store.store import ResultsStore

    return None if getattr(args, "no_store", False) else ResultsStore(args.store, warn=False)


def raise_not_recorded(store, where) -> None:
    """After a command that recorded its runs: the first run it could not record, as its error
    (the runs are kept; the line says how to record them). Nothing when every run was recorded."""
    if store is None or not store.failures:
        return
    exc = store.failures[0]
    if isinstance(exc, OSError):
        raise exc  # a full or read-only disk: the CLI says what was kept and how to go on
    raise ConfigError(f"{' '.join(str(exc).split())}; {len(store.failures)} run(s) not recorded, kept in {where}; "
                      f"record them later with: toyformer results --sync {where} --store {store.path}")
