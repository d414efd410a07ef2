"""A PatientRecord as JSON and back, for pages drawn later from a stored picture.

The timeline view is drawn when a clinician opens the card's link, seconds or minutes after the
hook call, possibly on another worker or replica: the call stores the picture (a few KB of JSON,
microseconds with orjson) instead of rendering a page nobody may open. Decoding is driven by the
dataclasses' own type hints, so it follows the model without a second schema, and refuses
anything it does not know (no pickle: stored data never becomes code).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import date
from enum import Enum
from functools import cache
from typing import Any

import orjson

from engine.model import PatientRecord


def dumps(record: PatientRecord) -> bytes:
    """The record as JSON (dates ISO 8601, enums by value)."""
    return orjson.dumps(record)


def loads(raw: bytes | str) -> PatientRecord:
    """The record `dumps` wrote. Raises ValueError on data that does not fit the model."""
    record = _decode(PatientRecord, orjson.loads(raw))
    assert isinstance(record, PatientRecord)
    return record


@cache
def _fields(cls: type) -> tuple[tuple[str, Any], ...]:
    hints = typing.get_type_hints(cls)
    return tuple((f.name, hints[f.name]) for f in dataclasses.fields(cls) if f.init)


def _decode(tp: Any, value: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _decode(inner, value)
    if origin is tuple:
        args = typing.get_args(tp)
        _expect(value, list, tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in value)
        if len(args) != len(value):
            raise ValueError(f"expected {len(args)} items for {tp}, got {len(value)}")
        return tuple(_decode(a, v) for a, v in zip(args, value, strict=True))
    if origin is dict:
        _expect(value, dict, tp)
        return dict(value)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        _expect(value, dict, tp)
        return tp(
            **{name: _decode(hint, value[name]) for name, hint in _fields(tp) if name in value}
        )
    if tp is date:
        _expect(value, str, tp)
        return date.fromisoformat(value)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"expected a number, got {type(value).__name__}")
        return float(value)
    if tp in (str, int, bool):
        _expect(value, tp, tp)
        return value
    if tp is object or tp is Any:
        return value
    raise ValueError(f"cannot decode {tp!r}")


def _expect(value: Any, kind: type, tp: Any) -> None:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(f"expected {kind.__name__} for {tp}, got {type(value).__name__}")
