"""Type-checking of user-given values against dataclass field annotations.

Values arrive from the CLI as strings (``--set model.n_layers=2``) or from YAML/TOML/JSON as
plain data; ``coerce`` turns them into the annotated type or raises a one-line ConfigError.
"""

from __future__ import annotations

import types
from typing import Any, Literal, Union, get_args, get_origin

import yaml

from toyformer.errors import ConfigError


def parse_scalar(text: str) -> Any:
    """Parse a CLI value: ``2`` -> 2, ``1e-3`` -> 0.001, ``true`` -> True, ``none`` -> None."""
    if text.strip().lower() in ("none", "null", "~"):
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads "1e-3" as a string
        except ValueError:
            return value
    return value


def coerce(value: Any, annotation, name: str) -> Any:
    """Convert ``value`` to ``annotation`` or raise ConfigError naming ``name`` and the allowed values.

    >>> coerce("3", int, "model.n_layers")
    3
    >>> coerce("pre", Literal["pre", "post"], "model.norm")
    'pre'
    """
    origin, args = get_origin(annotation), get_args(annotation)
    if isinstance(value, str) and annotation is not str and not (origin is Literal and value in args):
        value = parse_scalar(value)
    if origin is Literal:
        if value not in args:
            allowed = ", ".join(str(a) for a in args)
            raise ConfigError(f"{name}={value!r} is not allowed; allowed: {allowed}")
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(value, arg, name)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{name}={value!r} has the wrong type")
    if origin in (tuple, list):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if isinstance(value, str):
            value = [parse_scalar(v) for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}={value!r} must be a list")
        item = args[0] if args else Any
        return origin(coerce(v, item, name) for v in value)
    if annotation is Any:
        return value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{name}={value!r} must be a boolean; allowed: true, false")
    if annotation is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise ConfigError(f"{name}={value!r} must be an integer")
        return int(value)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{name}={value!r} must be a number")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{name}={value!r} must be a string")
        return value
    raise TypeError(f"unsupported annotation {annotation!r} for {name}")
