"""Values typed on a command line (or passed by papermill) as the types of a profile's fields.

:func:`paperkit.config.apply_overrides` converts every override through :func:`coerce` before it
validates the profile; :class:`ConfigError` is the error of both.
"""
from __future__ import annotations

import typing
from typing import Any


class ConfigError(ValueError):
    """A profile name, key or value that cannot be used; the message names it and the fix."""


def coerce(key: str, value: Any, hint: Any) -> Any:
    """``value`` as the type ``hint`` of the profile field ``key``; strings as typed on a command line
    (``"0.3"``, ``"3,5,7"``, ``"false"``) are converted, already-typed values checked.

    Raises
    ------
    ConfigError
        Naming ``key`` when ``value`` cannot be read as that type.
    """
    origin = typing.get_origin(hint)
    if origin is tuple:
        item_type = typing.get_args(hint)[0]
        if isinstance(value, str):
            value = [v for v in value.replace(" ", "").split(",") if v]
        if not isinstance(value, (list, tuple)):
            value = [value]
        return tuple(_coerce_scalar(key, v, item_type) for v in value)
    return _coerce_scalar(key, value, hint)


def _coerce_scalar(key: str, value: Any, typ: Any) -> Any:
    """One value of type ``typ`` (bool, int, float or str)."""
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"parameter {key!r} must be true or false, got {value!r}")
    if typ is int:
        if isinstance(value, bool):
            raise ConfigError(f"parameter {key!r} must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise ConfigError(f"parameter {key!r} must be an integer, got {value!r}")
    if typ is float:
        if isinstance(value, bool):
            raise ConfigError(f"parameter {key!r} must be a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"parameter {key!r} must be a number, got {value!r}") from None
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"parameter {key!r} must be a string, got {value!r}")
        return value
    raise ConfigError(f"parameter {key!r} has an unsupported type {typ!r}")  # pragma: no cover
