"""Convert between Python JSON values and protobuf Struct/Value.

JSON numbers travel as doubles in Struct; integral values within the exactly representable
range come back as `int`, so a flow declared with `{"type": "integer"}` receives `3`, not `3.0`.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2

_MAX_EXACT = 2**53


def restore_ints(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) <= _MAX_EXACT:
        return int(value)
    if isinstance(value, dict):
        return {k: restore_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [restore_ints(v) for v in value]
    return value


def struct_to_dict(message: struct_pb2.Struct) -> dict[str, Any]:
    result: dict[str, Any] = restore_ints(json_format.MessageToDict(message))
    return result


def value_to_python(message: struct_pb2.Value) -> Any:
    if message.WhichOneof("kind") is None:
        return None
    return restore_ints(json_format.MessageToDict(message))


def dict_to_struct(
    data: dict[str, Any] | None, out: struct_pb2.Struct | None = None
) -> struct_pb2.Struct:
    target = out if out is not None else struct_pb2.Struct()
    if data:
        target.update(_jsonable(data))
    return target


def python_to_value(data: Any, out: struct_pb2.Value | None = None) -> struct_pb2.Value:
    target = out if out is not None else struct_pb2.Value()
    json_format.ParseDict(_jsonable(data), target)
    return target


def _jsonable(value: Any) -> Any:
    """Tuples become lists, keys become strings, non-JSON leaves become their `str`."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return str(value)
