"""The input JSON Schema of a plain callable, read from its signature.

A flow function says what it takes: `def greet(ctx, name: str = "world", times: int = 1)`
takes a string `name` and an integer `times`, both optional, and nothing else. This module
turns that into the schema a node validates launches against, so that a misspelled input
is refused instead of silently falling back to its default. It understands type hints,
defaults, `Literal` and `Enum` choices, `Annotated[..., "description"]` (or a pydantic
`Field(description=...)`), pydantic models, dataclasses and TypedDicts (through pydantic's
`TypeAdapter`, imported only for a hint that needs it).

What the engine's callable adapter binds (`engine.adapters`) decides the shape: the
context parameter (`ctx`, `context` or a `FlowContext` annotation) is no input; a parameter
named `inputs` or a lone unannotated (or `dict`) parameter takes the whole input mapping,
so such a flow accepts any inputs; `**kwargs` accepts extra inputs; a lone parameter
annotated with a model or TypedDict takes the model's fields as the inputs.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import typing
from collections.abc import Callable, Mapping
from typing import Any

CONTEXT_NAMES = ("ctx", "context")
# What a parameter without a usable hint accepts: anything JSON.
ANY: dict[str, Any] = {}
_SIMPLE: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    type(None): {"type": "null"},
    dict: {"type": "object"},
    list: {"type": "array"},
    tuple: {"type": "array"},
    Any: ANY,
}


class SignatureError(ValueError):
    """A hint no JSON Schema describes (e.g. a socket); names the parameter."""


def is_context(param: inspect.Parameter, hint: Any) -> bool:
    if param.name in CONTEXT_NAMES:
        return True
    names = {getattr(h, "__name__", "") for h in (hint, *typing.get_args(hint))}
    text = param.annotation if isinstance(param.annotation, str) else ""
    return "FlowContext" in names or "FlowContext" in text


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:
        # A hint naming something not importable at run time (e.g. under TYPE_CHECKING):
        # those parameters accept anything rather than the flow being unlistable.
        return {}


def _takes_whole_mapping(hint: Any) -> bool:
    base = typing.get_origin(hint) or hint
    return hint is inspect.Parameter.empty or base in (dict, Mapping, Any)


def is_structured(hint: Any) -> bool:
    """A model, dataclass or TypedDict: the engine builds it from the input mapping."""
    hint = _strip_annotated(hint)[0]
    if not inspect.isclass(hint):
        return False
    if dataclasses.is_dataclass(hint) or typing.is_typeddict(hint):
        return True
    return any(
        c.__module__.startswith("pydantic") and c.__name__ == "BaseModel" for c in hint.__mro__
    )


def _strip_annotated(hint: Any) -> tuple[Any, str]:
    """The hint inside `Annotated[...]` and the description its metadata carries."""
    description = ""
    if typing.get_origin(hint) is typing.Annotated:
        inner, *metadata = typing.get_args(hint)
        for item in metadata:
            if isinstance(item, str) and not description:
                description = item
            elif isinstance(getattr(item, "description", None), str) and not description:
                description = item.description
        return inner, description
    return hint, ""


def _hoist(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """Move pydantic's `$defs` to the root, where its `#/$defs/...` references point."""
    defs.update(schema.pop("$defs", {}))
    return schema


def type_schema(hint: Any, defs: dict[str, Any], where: str) -> dict[str, Any]:
    hint, description = _strip_annotated(hint)
    schema = _plain(hint, defs, where)
    if description:
        schema = {**schema, "description": description}
    return schema


def _plain(hint: Any, defs: dict[str, Any], where: str) -> dict[str, Any]:
    if hint is inspect.Parameter.empty:
        return dict(ANY)
    if hint in _SIMPLE:
        return dict(_SIMPLE[hint])
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Literal:
        schema: dict[str, Any] = {"enum": list(args)}
        kinds = {type(a) for a in args}
        if len(kinds) == 1 and next(iter(kinds)) in _SIMPLE:
            schema = {**_SIMPLE[next(iter(kinds))], **schema}
        return schema
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        options = [type_schema(a, defs, where) for a in args]
        simple = [o for o in options if set(o) == {"type"}]
        if len(simple) == len(options):
            return {"type": [o["type"] for o in options]}
        return {"anyOf": options}
    if origin in (list, tuple, set, frozenset) or (
        origin is not None and inspect.isclass(origin) and issubclass(origin, typing.Sequence)
    ):
        items = [a for a in args if a is not Ellipsis]
        schema = {"type": "array"}
        if len(items) == 1:
            schema["items"] = type_schema(items[0], defs, where)
        return schema
    if origin is not None and inspect.isclass(origin) and issubclass(origin, Mapping):
        schema = {"type": "object"}
        if len(args) == 2:
            schema["additionalProperties"] = type_schema(args[1], defs, where)
        return schema
    if inspect.isclass(hint) and issubclass(hint, enum.Enum):
        return {"enum": [m.value for m in hint]}
    if typing.is_typeddict(hint):
        # By hand: pydantic refuses `typing.TypedDict` before Python 3.12.
        fields = typing.get_type_hints(hint, include_extras=True)
        return {
            "type": "object",
            "title": hint.__name__,
            "properties": {k: type_schema(v, defs, f"{where}.{k}") for k, v in fields.items()},
            "required": sorted(hint.__required_keys__),
            "additionalProperties": False,
        }
    return _adapted(hint, defs, where)


def _adapted(hint: Any, defs: dict[str, Any], where: str) -> dict[str, Any]:
    """Models, dataclasses, TypedDicts and the rest: pydantic knows their schema."""
    try:
        from pydantic import TypeAdapter

        return _hoist(TypeAdapter(hint).json_schema(), defs)
    except Exception as e:
        raise SignatureError(f"{where}: no JSON Schema for {hint!r}: {e}") from None


def _json_default(value: Any) -> tuple[bool, Any]:
    if isinstance(value, enum.Enum):
        value = value.value
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False, None
    return True, value


def signature_schema(target: Any) -> dict[str, Any] | None:
    """The input schema of a plain callable; None when it takes any inputs (see above) or
    is no plain function (a class, a CrewAI object: its own rules apply)."""
    if inspect.isclass(target) or not callable(target):
        return None
    try:
        params = list(inspect.signature(target).parameters.values())
    except (TypeError, ValueError):
        return None
    hints = _hints(target)
    where = getattr(target, "__qualname__", repr(target))
    named: list[tuple[inspect.Parameter, Any]] = []
    extra = False
    for param in params:
        hint = hints.get(param.name, param.annotation)
        if is_context(param, hint):
            continue
        if param.name == "inputs":
            return None
        if param.kind is param.VAR_KEYWORD:
            extra = True
        elif param.kind is not param.VAR_POSITIONAL:
            named.append((param, hint))
    defs: dict[str, Any] = {}
    if len(named) == 1 and named[0][0].default is inspect.Parameter.empty:
        param, hint = named[0]
        if _takes_whole_mapping(_strip_annotated(hint)[0]):
            return None
        if is_structured(hint):
            schema = type_schema(hint, defs, f"{where}({param.name})")
            if defs:
                schema["$defs"] = {**schema.get("$defs", {}), **defs}
            return schema
    properties: dict[str, Any] = {}
    required: list[str] = []
    for param, hint in named:
        prop = type_schema(hint, defs, f"{where}({param.name})")
        if param.default is inspect.Parameter.empty:
            required.append(param.name)
        else:
            ok, default = _json_default(param.default)
            if ok:
                prop = {**prop, "default": default}
        properties[param.name] = prop
    schema = {"type": "object", "properties": properties, "required": required}
    if not extra:
        schema["additionalProperties"] = False
    if defs:
        schema["$defs"] = defs
    return schema


def first_paragraph(target: Any) -> str:
    """The docstring's first paragraph, one line: a flow's description when none is given."""
    doc = inspect.getdoc(target) if callable(target) and not inspect.isclass(target) else None
    if not doc:
        return ""
    return " ".join(doc.split("\n\n", 1)[0].split())


def _wants_conversion(hint: Any) -> bool:
    hint = _strip_annotated(hint)[0]
    return is_structured(hint) or (inspect.isclass(hint) and issubclass(hint, enum.Enum))


def build_arguments(fn: Callable[..., Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments with models, dataclasses, TypedDicts and Enums built from the
    JSON values the node validated (a flow annotated `req: Request` gets a `Request`)."""
    hints = _hints(fn)
    converted = dict(kwargs)
    for name, value in kwargs.items():
        hint = hints.get(name)
        # Only JSON values the node sent are built (never the context object).
        json_value = isinstance(value, dict | list | str | int | float)
        if hint is None or not json_value or not _wants_conversion(hint):
            continue
        plain = _strip_annotated(hint)[0]
        if typing.is_typeddict(plain):
            continue  # a TypedDict is a dict already
        from pydantic import TypeAdapter

        converted[name] = TypeAdapter(plain).validate_python(value)
    return converted
