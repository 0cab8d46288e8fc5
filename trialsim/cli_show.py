"""``trialsim show KIND [NAME]``: the registered types of a kind, or one of them described (its
documentation and its YAML keys in YAML words); ``show pk`` the published PK models."""
from __future__ import annotations

import dataclasses
import inspect
import types
import typing

#: The kinds ``trialsim show`` lists.
SHOW_KINDS = ("pk", "design", "phase2_design", "modifier", "stopping_rule", "response",
              "distribution", "route", "pk_structure", "covariate_effect")


def cmd_show(args) -> int:
    """Print the list or the description; an unknown name is a ``ValueError`` (one line)."""
    if args.name is not None and not args.name.strip():
        raise ValueError(f"show {args.what}: expected a name, got ''")
    if args.what == "pk":
        from trialsim.pk import library
        if not args.name:
            print("\n".join(library.available()))
            return 0
        try:
            print(library.describe(args.name))
        except KeyError as e:
            raise ValueError(e.args[0]) from None
        return 0
    import trialsim.config.build  # noqa: F401  (registers the built-in types)
    from trialsim.registry import lookup, names

    if not args.name:
        print("\n".join(names(args.what)))
        return 0
    try:
        cls = lookup(args.what, args.name)
    except KeyError as e:
        raise ValueError(e.args[0]) from None
    print(describe_type(args.what, args.name, cls))
    return 0


def describe_type(kind: str, name: str, cls: type) -> str:
    """A registered type as text: its documentation and its YAML keys."""
    from trialsim.config.build import field_default
    from trialsim.config.study import DOSE_FIELDS

    key = {"distribution": "dist", "pk_structure": "structure"}.get(kind, "type")
    lines = [f"{kind} {key}: {name}  ({cls.__module__}.{cls.__name__})", ""]
    lines += [f"  {x}" if x else "" for x in inspect.cleandoc(cls.__doc__ or "").splitlines()]
    if dataclasses.is_dataclass(cls):
        lines += ["", "keys:"]
        info = getattr(cls, "__pydantic_fields__", {})
        for f in dataclasses.fields(cls):
            if f.name == "parent":
                continue
            fi = info.get(f.name)
            value, factory = field_default(cls, f)
            default = ("from the study's doses (leave it out)" if f.name in DOSE_FIELDS
                       and kind == "design"
                       else "default: see docs" if factory is not dataclasses.MISSING
                       else "required" if value is dataclasses.MISSING
                       else f"default {value!r}")
            desc = getattr(fi, "description", None) or ""
            tname = type_text(getattr(fi, "annotation", f.type))
            lines.append(f"  {f.name}: {tname}, {default}" + (f" — {desc}" if desc else ""))
    return "\n".join(lines)


def type_text(ann) -> str:
    """A field's type in YAML words: ``list of int``, ``empiric | logistic``,
    ``list of 6 float``, ``... or null``."""
    origin, args = typing.get_origin(ann), typing.get_args(ann)
    if origin is typing.Annotated:
        return type_text(args[0])
    if origin is typing.Literal:
        return " | ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        kinds = [type_text(a) for a in args if a is not type(None)]
        return " or ".join(kinds) + (" or null" if type(None) in args else "")
    if origin in (tuple, list):
        if not args:
            return "list"
        if len(args) == 2 and args[1] is Ellipsis or origin is list:
            return f"list of {type_text(args[0])}"
        kinds = {type_text(a) for a in args}
        return (f"list of {len(args)} {kinds.pop()}" if len(kinds) == 1
                else "list of " + ", ".join(type_text(a) for a in args))
    if origin is dict:
        return "mapping" if not args else f"mapping of {type_text(args[0])} to {type_text(args[1])}"
    if ann is tuple or ann is list:
        return "list"
    return getattr(ann, "__name__", None) or str(ann).replace("typing.", "")
