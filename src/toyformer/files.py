"""Files written atomically: a temporary name, flushed, then renamed over the target.

A process killed at any moment leaves either the old or the new version of a file, never half
of one. Every file toyformer writes (run directories, results, reports) goes through here.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from toyformer.errors import ConfigError


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; results are meant to be read
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_json(path: Path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2) + "\n")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def check_folder_name(name: str, what: str) -> str:
    """``name`` if it can be one folder's name (no ``/`` or ``\\``, not empty, ``.`` or ``..``), else a
    one-line ConfigError: names that become folders must never nest them or climb out.

    >>> check_folder_name("reverse-width", "sweep name")
    'reverse-width'
    """
    if not isinstance(name, str) or not name.strip() or name in (".", "..") or any(c in name for c in "/\\\0"):
        raise ConfigError(f"{what} {name!r} is not allowed: it becomes a folder's name; use a name without "
                          "'/' or '\\' (and not empty, '.' or '..')")
    return name
