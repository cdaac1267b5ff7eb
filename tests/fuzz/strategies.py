"""Hypothesis strategies built from protobuf message descriptors: every field type, unknown
enum numbers, extreme numbers, deep nesting (Struct/Value), and raw bytes that are not valid
protobuf or carry invalid UTF-8 in string fields."""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor, message, message_factory
from google.protobuf.descriptor import FieldDescriptor as F
from hypothesis import strategies as st

from kodosumi.jsonvalue import dict_to_struct, python_to_value

MAX_DEPTH = 3

_INTS = {
    F.TYPE_INT32: (-(2**31), 2**31 - 1),
    F.TYPE_SINT32: (-(2**31), 2**31 - 1),
    F.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    F.TYPE_INT64: (-(2**63), 2**63 - 1),
    F.TYPE_SINT64: (-(2**63), 2**63 - 1),
    F.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    F.TYPE_UINT32: (0, 2**32 - 1),
    F.TYPE_FIXED32: (0, 2**32 - 1),
    F.TYPE_UINT64: (0, 2**64 - 1),
    F.TYPE_FIXED64: (0, 2**64 - 1),
}

texts = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "..", "../../etc/passwd", "%s%n", "\x00", "é" * 3, "a" * 5000]),
)

json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**53), 2**53),
    texts,
)
json_values = st.recursive(
    json_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(texts, children, max_size=4)
    ),
    max_leaves=30,
)


def deep_nesting(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"nested": value}
    return value


json_objects = st.one_of(
    st.dictionaries(texts, json_values, max_size=5),
    st.integers(10, 60).map(lambda d: {"deep": deep_nesting(d)}),
)


def _scalar(field: descriptor.FieldDescriptor) -> st.SearchStrategy[Any]:
    if field.type in _INTS:
        low, high = _INTS[field.type]
        return st.one_of(st.integers(low, high), st.sampled_from([low, high, 0, -1 if low else 1]))
    if field.type == F.TYPE_DOUBLE:
        return st.floats()
    if field.type == F.TYPE_FLOAT:
        return st.floats(width=32)
    if field.type == F.TYPE_BOOL:
        return st.booleans()
    if field.type == F.TYPE_STRING:
        return texts
    if field.type == F.TYPE_BYTES:
        return st.binary(max_size=64)
    if field.type == F.TYPE_ENUM:
        # Open enums accept numbers they do not name.
        return st.integers(-(2**31), 2**31 - 1)
    raise AssertionError(f"unhandled field type {field.type}")


def _single(field: descriptor.FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.type == F.TYPE_MESSAGE:
        return messages(field.message_type, depth + 1)
    return _scalar(field)


def messages(desc: descriptor.Descriptor, depth: int = 0) -> st.SearchStrategy[message.Message]:
    """Messages of `desc` with any subset of fields set to arbitrary values."""
    cls = message_factory.GetMessageClass(desc)
    if desc.full_name == "google.protobuf.Struct":
        return json_objects.map(dict_to_struct)
    if desc.full_name == "google.protobuf.Value":
        return json_values.map(python_to_value)
    if depth > MAX_DEPTH:
        return st.just(cls())
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in desc.fields:
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key = _scalar(field.message_type.fields_by_name["key"])
            value = _single(field.message_type.fields_by_name["value"], depth)
            fields[field.name] = st.dictionaries(key, value, max_size=3)
        elif field.is_repeated:
            fields[field.name] = st.lists(_single(field, depth), max_size=3)
        else:
            fields[field.name] = _single(field, depth)

    def build(values: dict[str, Any]) -> message.Message:
        instance = cls()
        for name, value in values.items():
            target = getattr(instance, name)
            if isinstance(value, message.Message):
                target.CopyFrom(value)
            elif isinstance(value, dict):
                for k, v in value.items():
                    if isinstance(v, message.Message):
                        target[k].CopyFrom(v)
                    else:
                        target[k] = v
            elif isinstance(value, list):
                if value and isinstance(value[0], message.Message):
                    for item in value:
                        target.add().CopyFrom(item)
                else:
                    target.extend(value)
            else:
                setattr(instance, name, value)
        return instance

    return st.fixed_dictionaries({}, optional=fields).map(build)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def invalid_utf8_requests(desc: descriptor.Descriptor) -> list[bytes]:
    """For every string field: a request whose field holds bytes that are not UTF-8."""
    payloads = []
    for field in desc.fields:
        if field.type == F.TYPE_STRING:
            bad = b"\xff\xfe\xc3\x28"
            payloads.append(_varint(field.number << 3 | 2) + _varint(len(bad)) + bad)
    return payloads


raw_bytes = st.binary(min_size=1, max_size=200)
