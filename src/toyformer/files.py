"""Files written atomically: a temporary name, flushed, then renamed over the target.

A process killed at any moment leaves either the old or the new version of a file, never half
of one. Every file toyformer writes (run directories, results, reports) goes through here. A
full or read-only disk is an ``OSError`` naming the file meant, whichever library failed
(``toyformer.faults``); a Ctrl-C waits for the write under way (``toyformer.interrupts``); the
temporary files a SIGKILL leaves are removed by the directory's next writer
(``remove_orphan_temporaries``).
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path

from toyformer import faults, interrupts
from toyformer.errors import ConfigError


TMP_SUFFIX = ".tmp"
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # atomic_write's temporary files: .NAME.XXXXXXXX.tmp


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then rename the temporary file over ``path`` (mode 0644, as
    every file toyformer writes: results are meant to be read).

    A failure of the disk, whatever library ``write`` calls raises it (safetensors, matplotlib,
    Pillow, torch), is an ``OSError`` naming ``path`` and the reason (``toyformer.faults``); the
    temporary file is removed and ``path`` keeps its old version. A signal that arrives meanwhile
    is raised after the rename (``toyformer.interrupts``)."""
    path = Path(path)
    with interrupts.critical():
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
        except OSError as exc:  # name the file meant, not the temporary one
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        os.close(fd)
        with interrupts.temporary(tmp):
            try:
                write(tmp)
                os.chmod(tmp, 0o644)  # after writing: a writer may have made the file anew (mkstemp makes 0600)
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException as exc:
                Path(tmp).unlink(missing_ok=True)
                failed = None if isinstance(exc, KeyboardInterrupt) else faults.io_error(exc, path)
                if failed is not None:
                    raise failed from exc
                raise


def is_temporary(path: Path) -> bool:
    """Whether ``path`` is named as ``atomic_write``'s temporary files are."""
    return bool(_TEMPORARY.match(Path(path).name))


def remove_orphan_temporaries(directory: Path, recursive: bool = True) -> list[Path]:
    """Remove the temporary files that a process killed mid-write (SIGKILL, a power cut) left in
    ``directory``; returns them. Only its writer may call this, holding its lock
    (``toyformer.run.lock``): another writer's temporary file would be under way."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = [p for p in (directory.rglob("*") if recursive else directory.iterdir())
             if is_temporary(p) and p.is_file()]
    for p in found:
        p.unlink(missing_ok=True)
    return found


def json_safe(obj):
    """``obj`` with NaN and infinite floats as None, so that it is valid JSON (``null``)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def dumps(obj, **kwargs) -> str:
    """``json.dumps`` of ``json_safe(obj)``: never a bare ``NaN`` or ``Infinity``."""
    return json.dumps(json_safe(obj), allow_nan=False, **kwargs)


def write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def write_json(path: Path, obj) -> None:
    write_text(path, dumps(obj, indent=2) + "\n")


def write_jsonl(path: Path, rows: list[dict]) -> None:
    write_text(path, "".join(dumps(r) + "\n" for r in rows))


def _text(path: Path) -> str:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{str(path)!r} is missing")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{str(path)!r} is not UTF-8 text; it is damaged: restore it or train again") from None


def read_json(path: Path, expect: type = dict):
    """The JSON value in ``path`` (a mapping unless ``expect`` says otherwise); a missing,
    damaged or unexpected file is one ConfigError naming it."""
    try:
        value = json.loads(_text(path))
    except ValueError as exc:
        raise ConfigError(f"{str(path)!r} is not valid JSON ({exc}); restore it or train again") from None
    if not isinstance(value, expect):
        raise ConfigError(f"{str(path)!r} holds {type(value).__name__}, not a JSON "
                          f"{'object' if expect is dict else expect.__name__}")
    return value


def read_jsonl(path: Path) -> list[dict]:
    """One JSON object per line. A damaged last line (a write cut short by a kill, from a
    version without atomic writes or another writer) is left out; a damaged line before the
    last is a ConfigError naming the file and the line."""
    lines = _text(path).splitlines()
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            row = None
        if not isinstance(row, dict):
            if n == len(lines):
                break
            raise ConfigError(f"{str(path)!r} line {n} is not a JSON object; the file is damaged")
        rows.append(row)
    return rows


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
