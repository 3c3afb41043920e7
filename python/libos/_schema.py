"""JSON schemas of tool arguments, from a Python function's signature.

``schema_of(func)`` maps each parameter to a property: ``str`` to a string,
``int`` to an integer, ``float`` to a number, ``bool`` to a boolean,
``list[T]`` (or ``Sequence[T]``, ``tuple[T, ...]``) to an array of T,
``dict`` to an object, ``Literal[...]`` to an enum, and a parameter
without annotation to any value. A parameter with a default is not
required; ``Optional[T]`` without a default is required and may be null. Unknown arguments are refused
(``additionalProperties: false``), and so are ``*args``; ``**kwargs``
allows any extra ones. Anything else is an error naming the parameter: the
schema must say what the model may send.
"""

from __future__ import annotations

import collections.abc
import inspect
import typing
from typing import Any, Callable, Dict, Tuple

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


def _type_schema(hint: Any, where: str) -> Tuple[Dict[str, Any], bool]:
    """The schema of one annotation, and whether it admits None."""
    if hint is Any or hint is inspect.Parameter.empty:
        return {}, False
    if hint is type(None):
        return {"type": "null"}, True
    if hint in _SCALARS:
        return {"type": _SCALARS[hint]}, False
    if hint in (dict, collections.abc.Mapping):
        return {"type": "object"}, False
    if hint in (list, tuple, collections.abc.Sequence):
        return {"type": "array"}, False
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Union or type(hint).__name__ == "UnionType":
        rest = [a for a in args if a is not type(None)]
        optional = len(rest) < len(args)
        if len(rest) == 1:
            return _type_schema(rest[0], where)[0], optional
        return {"anyOf": [_type_schema(a, where)[0] for a in rest]}, optional
    if origin is typing.Literal:
        return {"enum": list(args)}, False
    if origin in (list, collections.abc.Sequence, set, frozenset):
        items = _type_schema(args[0], where)[0] if args else {}
        return ({"type": "array", "items": items} if items else {"type": "array"}), False
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "array", "items": _type_schema(args[0], where)[0]}, False
        items = [_type_schema(a, where)[0] for a in args]
        return {"type": "array", "prefixItems": items, "minItems": len(items), "maxItems": len(items)}, False
    if origin in (dict, collections.abc.Mapping):
        if len(args) == 2 and args[0] is not str:
            raise TypeError(f"{where}: object keys are strings, not {args[0]!r}")
        values = _type_schema(args[1], where)[0] if len(args) == 2 else {}
        return ({"type": "object", "additionalProperties": values} if values else {"type": "object"}), False
    raise TypeError(f"{where}: no JSON schema for the annotation {hint!r}; give the tool a schema")


def schema_of(func: Callable[..., Any]) -> Dict[str, Any]:
    """The JSON schema of `func`'s keyword arguments."""
    name = getattr(func, "__name__", repr(func))
    signature = inspect.signature(func)
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # unresolvable forward references: use the raw annotations
        hints = {}
    properties: Dict[str, Any] = {}
    required = []
    extra = False
    for p in signature.parameters.values():
        where = f"tool {name}, parameter `{p.name}`"
        if p.kind is inspect.Parameter.VAR_POSITIONAL:
            raise TypeError(f"{where}: a tool takes keyword arguments, not *args")
        if p.kind is inspect.Parameter.POSITIONAL_ONLY:
            raise TypeError(f"{where}: a tool's parameters are passed by name")
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            extra = True
            continue
        schema, nullable = _type_schema(hints.get(p.name, p.annotation), where)
        if p.default is not inspect.Parameter.empty:
            if p.default is not None and isinstance(p.default, (str, int, float, bool)):
                schema = dict(schema, default=p.default)
        else:
            required.append(p.name)
            if nullable and schema and schema.get("type") != "null":
                schema = {"anyOf": [schema, {"type": "null"}]}
        properties[p.name] = schema
    out: Dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": extra}
    if required:
        out["required"] = required
    return out


def description_of(func: Callable[..., Any]) -> str:
    """The first paragraph of `func`'s docstring, on one line."""
    doc = inspect.getdoc(func) or ""
    first = doc.strip().split("\n\n", 1)[0]
    return " ".join(first.split())
