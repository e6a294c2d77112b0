"""Two adjustments to typer 0.29, applied once when `main` is imported; no-ops on other typer versions.

- Its rich help prints flags as `--json <bool>`, as if they took a value.
- It coerces options through pydantic `TypeAdapter`s it builds on first use, which
  imports most of pydantic (~15 ms beyond what our schemas need) and builds one
  adapter per option even when the option keeps its default (or is `--help`, unset).
  For the plain shapes our options have (a string, a decimal number with bounds, a
  flag) a value
  that is clearly valid is taken as it is; anything else (a bad number, a value out
  of bounds, bytes, other types) still goes through typer's own coercion, so errors
  read exactly as typer words them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# Only what pydantic's float and int validators accept the same way: plain digits,
# with a fraction for floats. `1e3`, `1_000`, ` 5`, `inf` go the long way.
_PLAIN_INT = re.compile(r"[0-9]+")
_PLAIN_FLOAT = re.compile(r"[0-9]+(\.[0-9]+)?")


def apply() -> None:
    try:
        from typer import core
        from typer._coercion import RuntimeParam
    except ImportError:  # typer before 0.29: click's own types, nothing to adjust
        return
    _flags_take_no_value(core)
    _plain_values_without_pydantic(core, RuntimeParam)


def _flags_take_no_value(core: Any) -> None:
    shown = getattr(core.TyperOption, "display_type_rich", None)
    if shown is None:
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    core.TyperOption.display_type_rich = display_type_rich


def _plain_values_without_pydantic(core: Any, runtime_param: type) -> None:
    parameter: Any = getattr(core, "_TyperParameter", None)
    typer_runtime_param: Any = getattr(parameter, "get_runtime_param", None)
    if parameter is None or typer_runtime_param is None:
        return

    @dataclass(frozen=True)
    class PlainParam(runtime_param):  # type: ignore[misc,valid-type]
        """A str or number option: clear values here, the rest through typer's adapter."""

        typer_param: Any = None

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            plain = plain_value(self.annotation, self.parameter_info, value)
            if plain is not None:
                return plain
            return typer_runtime_param(self.typer_param)._coerce_value(value, param=param, ctx=ctx)

    def get_runtime_param(self: Any) -> Any:
        if self._runtime_param is None and _is_plain(self.type_descriptor):
            descriptor = self.type_descriptor
            self._runtime_param = PlainParam(descriptor.parameter_info, descriptor.annotation, typer_param=_Lazy(self))
        return typer_runtime_param(self)

    parameter.get_runtime_param = get_runtime_param


class _Lazy:
    """Stands in for the parameter when typer's own coercion is needed after all."""

    def __init__(self, param: Any) -> None:
        self.type_descriptor = param.type_descriptor
        self._runtime_param = None


def _is_plain(descriptor: Any) -> bool:
    info = descriptor.parameter_info
    if descriptor.annotation not in (str, int, float, bool) or descriptor.file_annotation is not None:
        return False
    if getattr(info, "parser", None) is not None or getattr(info, "clamp", False):
        return False
    return not descriptor.is_choice and not descriptor.is_path


def plain_value(annotation: type, info: Any, value: Any) -> Any:
    """The coerced value when it is clearly valid, else None (typer's adapter decides)."""
    if annotation is str:
        return value if isinstance(value, str) else None
    if annotation is bool or isinstance(value, bool):  # flags arrive as bools; a string flag goes the long way
        return value if annotation is bool and isinstance(value, bool) else None
    if isinstance(value, str):
        pattern = _PLAIN_INT if annotation is int else _PLAIN_FLOAT
        if not pattern.fullmatch(value):
            return None
        number: Any = annotation(value)
    elif isinstance(value, annotation):
        number = value
    else:
        return None
    if (info.min is not None and number < info.min) or (info.max is not None and number > info.max):
        return None
    return number
