"""A fast path for :func:`callhook.events.validate_data`: plain Python generated from the models.

Pydantic validation plus ``model_dump`` cost 15 µs per event of the benchmark's mix (the
Python validators and the timestamp serializer called from Rust, the model instance, the dump):
with batches of 100 that was the largest part of the ingest route's own CPU, on the thread that
also serves HTTP (profiled). The generated checks take 5.6 µs for the same events (measured).

Contract: ``FAST[event](data)`` either returns exactly what
``model.model_validate(data).model_dump(mode="json", exclude_none=True, by_alias=True)`` returns,
or raises :class:`Unsure`; ``validate_data`` then asks pydantic, which gives the answer or the
error. The fast path therefore never reports an error itself, and it must never accept what the
model refuses. It is conservative by construction:

- it is generated from each model's own fields (names, aliases, order, defaults, constraints);
  a construct it does not know (a new constraint, type, validator or config option) leaves the
  model to pydantic alone (``compile_model`` returns None) instead of being skipped;
- where pydantic's behaviour is subtle it accepts a subset only: strict types by exact
  ``type()``; ``pattern`` constraints matched with ASCII classes (pydantic-core's Rust regex
  reads ``\\d`` as any Unicode digit, so ASCII matches are a subset); timestamps only in the
  common ``YYYY-MM-DDTHH:MM:SS[.ffffff](Z|±HH:MM)`` shape between the years 1900 and 2999,
  and inside the accepted range of :mod:`callhook.core.times` once in UTC;
  integers for ``float`` fields only up to 2**53 (exactly representable);
- the models' own Python checks (``AfterValidator`` functions, ``field_validator`` methods of
  ``callhook.events.models``) are called as they are, so their rules are not restated; one that
  raises, or returns something other than its input, makes the input :class:`Unsure`.
  ``_check_e164``, ``_check_pbx_id``, ``_check_line`` and ``_check_block`` are a single match
  of a module regex: that same compiled regex is called directly.

Each model's check is one generated function (straight-line code, one block per field): a loop
over per-field closures cost twice as much. ``tests/unit/events/test_fast_validation.py``
compares both paths on every sample and on generated variations of them.
"""

from __future__ import annotations

import math
import re
import types
import typing
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final, Literal, Union

import annotated_types
from pydantic import AfterValidator, AwareDatetime, BaseModel, PlainSerializer, Strict
from pydantic.functional_validators import BeforeValidator
from pydantic.json_schema import WithJsonSchema

from callhook.core import times
from callhook.core.clock import rfc3339
from callhook.events import models


class Unsure(Exception):
    """The fast path cannot vouch for this input: pydantic must decide."""


class _Unsupported(Exception):
    """A model construct the fast path does not know (the model stays on pydantic)."""


Validate = Callable[[Any], dict[str, Any]]

_MISSING: Final = object()
_MAX_EXACT_INT = 2**53


# --- Helpers the generated code calls ----------------------------------------------------------
# The shape pydantic's RFC 3339 pre-check (``models._check_rfc3339``) and parser both accept,
# narrowed to ASCII digits, ``T`` and ``Z``, one to six fraction digits and minute offsets.
_TIMESTAMP = re.compile(
    r"(19|2\d)\d\d-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)", re.ASCII
)
# Parsed timestamps by their text: a call's events repeat its ``started_at`` and other times.
_SEEN_TIMESTAMPS: dict[str, tuple[datetime, str]] = {}
_SEEN_LIMIT = 4096


def _timestamp(value: Any) -> tuple[datetime, str]:
    """The aware UTC datetime pydantic's validators see, and the ``rfc3339`` text it dumps."""
    if type(value) is not str:
        raise Unsure
    seen = _SEEN_TIMESTAMPS.get(value)
    if seen is not None:
        return seen
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        raise Unsure
    try:
        # Python 3.11+ reads this whole shape (``Z``, any fraction length); it refuses
        # impossible dates, hours and offsets, as pydantic does (both are then Unsure).
        when = datetime.fromisoformat(value).astimezone(UTC)
    except ValueError:
        raise Unsure from None
    if not times.EARLIEST <= when <= times.LATEST:  # pydantic names the range error
        raise Unsure
    fraction = match.group(2)
    if match.group(3) == "Z" and fraction is not None and len(fraction) == 4:
        seen = (when, value)  # already ``rfc3339(when)``: UTC with milliseconds
    else:
        seen = (when, rfc3339(when))
    if len(_SEEN_TIMESTAMPS) >= _SEEN_LIMIT:
        _SEEN_TIMESTAMPS.clear()
    _SEEN_TIMESTAMPS[value] = seen
    return seen


def _to_float(value: Any) -> float:
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            raise Unsure
        return value  # type: ignore[no-any-return]
    if kind is int and -_MAX_EXACT_INT <= value <= _MAX_EXACT_INT:
        return float(value)  # strict float fields take integers, as floats
    raise Unsure


def _passes(check: Callable[[Any], Any], value: Any) -> bool:
    """Whether one of the models' checks accepts ``value`` unchanged."""
    try:
        return check(value) is value
    except Exception:  # any refusal is pydantic's to report
        return False


class _Info:
    """What the models' field validators read of pydantic's ``ValidationInfo``."""

    __slots__ = ("config", "context", "data", "field_name", "mode")

    def __init__(self, data: dict[str, Any], field_name: str, config: Any) -> None:
        self.data = data
        self.field_name = field_name
        self.config = config
        self.context = None
        self.mode = "python"


def _validated(
    validator: Callable[[Any, Any], Any], value: Any, seen: dict[str, Any], name: str, config: Any
) -> bool:
    """Whether a field validator accepts ``value`` unchanged, given the earlier fields."""
    try:
        return validator(value, _Info(seen, name, config)) is value
    except Exception:  # any refusal is pydantic's to report
        return False


# --- Reading the models ------------------------------------------------------------------------
_TIMESTAMP_METADATA: Final = (
    Strict(False),
    BeforeValidator(models._check_rfc3339),  # the models' own parts
    AfterValidator(models._to_utc),
    PlainSerializer(rfc3339, return_type=str, when_used="json"),
)
# The models' checks that are one regex match: the same compiled regex, called directly.
_REGEX_CHECKS: Final[dict[Callable[..., Any], re.Pattern[str]]] = {
    models._check_e164: models._E164,
    models._check_pbx_id: models._PBX_ID,
    models._check_line: models._LINE,
    models._check_block: models._BLOCK,
}
# ``pattern`` constraints the ASCII reading may take: anchored, made of literals, ``\d``, simple
# classes, groups, ``?``/``+``/``*`` and ``{m,n}``. Anything else (alternation, lookaround,
# other escapes) keeps the model on pydantic.
_SIMPLE_PATTERN = re.compile(
    r"\^(?:[A-Za-z0-9 _.:-]|\\d|\[[A-Za-z0-9_.:-]*\]|\{\d+(?:,\d+)?\}|[()?+*])*\$", re.ASCII
)
_KNOWN_CONFIG = {"extra", "strict", "frozen", "title", "allow_inf_nan"}


def _own(func: Any) -> bool:
    """A check written in ``callhook.events.models`` (whose validators only read ``info.data``
    and return their input or raise)."""
    return getattr(func, "__module__", None) == models.__name__


def _flatten(extras: tuple[Any, ...] | list[Any]) -> list[Any]:
    out: list[Any] = []
    for extra in extras:
        if type(extra).__name__ == "FieldInfo" and hasattr(extra, "metadata"):
            out.extend(extra.metadata)  # Field(min_length=…) inside Annotated
        elif isinstance(extra, Strict) and extra.strict:
            pass  # the models are strict already
        elif not isinstance(extra, WithJsonSchema):  # schema only
            out.append(extra)
    return out


def _lengths(constraints: list[Any]) -> tuple[int | None, int | None, list[Any]]:
    """``MinLen``/``MaxLen`` out of ``constraints``; the rest are returned."""
    low = high = None
    rest = []
    for c in constraints:
        if isinstance(c, annotated_types.MinLen):
            low = c.min_length
        elif isinstance(c, annotated_types.MaxLen):
            high = c.max_length
        else:
            rest.append(c)
    return low, high, rest


# --- Generating code ---------------------------------------------------------------------------
class _Source:
    """The objects generated code refers to, by name, and a counter for fresh names."""

    def __init__(self) -> None:
        self.env: dict[str, Any] = {
            "Unsure": Unsure,
            "_MISSING": _MISSING,
            "_timestamp": _timestamp,
            "_to_float": _to_float,
            "_passes": _passes,
            "_validated": _validated,
        }
        self._count = 0

    def name(self, obj: Any) -> str:
        self._count += 1
        name = f"k{self._count}"
        self.env[name] = obj
        return name

    def function(self, name: str, body: list[str]) -> Callable[..., Any]:
        """Define ``def <name>(v): <body>`` (the text is built here, from the models)."""
        self._count += 1
        name = f"{name}_{self._count}"
        code = f"def {name}(v):\n" + "".join(f"    {line}\n" for line in body)
        exec(compile(code, f"<callhook.events.fast {name}>", "exec"), self.env)  # noqa: S102
        func: Callable[..., Any] = self.env[name]
        return func


_BOUNDS: Final = (
    (annotated_types.Ge, "ge", ">="),
    (annotated_types.Gt, "gt", ">"),
    (annotated_types.Le, "le", "<="),
    (annotated_types.Lt, "lt", "<"),
)


def _bounds_test(src: _Source, constraints: list[Any], kind: str) -> str:
    """A condition on ``v`` that holds inside ``Ge``/``Gt``/``Le``/``Lt`` (or ``True``)."""
    terms = []
    for c in constraints:
        for cls, attr, op in _BOUNDS:
            if type(c) is cls:
                terms.append(f"v {op} {src.name(getattr(c, attr))}")
                break
        else:
            raise _Unsupported(f"{c!r} on {kind}")
    return " and ".join(terms) or "True"


def _length_test(low: int | None, high: int | None) -> str | None:
    if low is None and high is None:
        return None
    return f"{low or 0} <= len(v)" + (f" <= {high}" if high is not None else "")


def _str_lines(src: _Source, constraints: list[Any]) -> list[str]:
    low, high, rest = _lengths(constraints)
    lines = ["if type(v) is not str:", "    raise Unsure"]
    if (test := _length_test(low, high)) is not None:
        lines += [f"if not {test}:", "    raise Unsure"]
    for c in rest:
        if type(c).__name__ == "_PydanticGeneralMetadata" and set(vars(c)) == {"pattern"}:
            if not isinstance(c.pattern, str) or not _SIMPLE_PATTERN.fullmatch(c.pattern):
                raise _Unsupported(f"pattern {c.pattern!r}")
            match = src.name(re.compile(c.pattern, re.ASCII).fullmatch)
        elif isinstance(c, AfterValidator) and c.func in _REGEX_CHECKS:
            match = src.name(_REGEX_CHECKS[c.func].fullmatch)
        elif isinstance(c, AfterValidator) and _own(c.func):
            lines += [f"if not _passes({src.name(c.func)}, v):", "    raise Unsure"]
            continue
        else:
            raise _Unsupported(f"{c!r} on str")
        lines += [f"if {match}(v) is None:", "    raise Unsure"]
    return [*lines, "d = v"]


def _type_lines(src: _Source, tp: Any, constraints: list[Any]) -> list[str]:
    """Statements that check the input ``v``, leaving in ``v`` the value pydantic's validators
    see and in ``d`` what ``model_dump(mode="json")`` writes (None: left out); or raise Unsure."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        inner, *extras = typing.get_args(tp)
        return _type_lines(src, inner, [*_flatten(extras), *constraints])
    if origin is Union or origin is types.UnionType:
        args = typing.get_args(tp)
        others = [a for a in args if a is not type(None)]
        if len(args) != 2 or len(others) != 1:
            raise _Unsupported(repr(tp))
        inner_lines = _type_lines(src, others[0], constraints)
        return ["if v is None:", "    d = None", "else:", *(f"    {line}" for line in inner_lines)]
    if origin is Literal:
        values = typing.get_args(tp)
        if constraints or not all(type(v) is str for v in values):
            raise _Unsupported(f"Literal{list(values)!r}")
        allowed = src.name(frozenset(values))
        return [f"if type(v) is not str or v not in {allowed}:", "    raise Unsure", "d = v"]
    if origin is list:
        (item_type,) = typing.get_args(tp)
        low, high, rest = _lengths(constraints)
        if rest:
            raise _Unsupported(f"{rest!r} on list")
        item = src.name(src.function("item", [*_type_lines(src, item_type, []), "return d"]))
        lines = ["if type(v) is not list:", "    raise Unsure"]
        if (test := _length_test(low, high)) is not None:
            lines += [f"if not {test}:", "    raise Unsure"]
        return [*lines, f"d = v = [{item}(x) for x in v]"]
    if origin is not None:
        raise _Unsupported(repr(tp))
    if tp is AwareDatetime:
        if tuple(constraints) != _TIMESTAMP_METADATA:
            raise _Unsupported(f"datetime with {constraints!r}")
        return ["v, d = _timestamp(v)"]
    if tp is str:
        return _str_lines(src, constraints)
    if tp is int:
        test = _bounds_test(src, constraints, "int")
        return [f"if type(v) is not int or not ({test}):", "    raise Unsure", "d = v"]
    if tp is float:
        test = _bounds_test(src, constraints, "float")
        return ["v = _to_float(v)", f"if not ({test}):", "    raise Unsure", "d = v"]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        if constraints:
            raise _Unsupported(f"{constraints!r} on {tp.__name__}")
        nested = src.name(_compile(tp, src))
        return [f"d = v = {nested}(v)"]
    raise _Unsupported(repr(tp))


def _compile(model: type[BaseModel], src: _Source) -> Validate:
    config = model.model_config
    if (
        config.get("extra") != "forbid"
        or config.get("strict") is not True
        or not set(config) <= _KNOWN_CONFIG
    ):
        raise _Unsupported(f"{model.__name__} config {dict(config)!r}")
    decorators = model.__pydantic_decorators__
    for kind in (
        "model_validators",
        "field_serializers",
        "model_serializers",
        "computed_fields",
        "validators",
        "root_validators",
    ):
        if getattr(decorators, kind, None):
            raise _Unsupported(f"{model.__name__} has {kind}")
    after: dict[str, list[Callable[[Any, Any], Any]]] = {}
    for dec in decorators.field_validators.values():
        if dec.info.mode != "after" or not _own(getattr(dec.func, "__func__", dec.func)):
            raise _Unsupported(f"{model.__name__} validator {dec.func!r}")
        for name in dec.info.fields:
            if name not in model.model_fields:
                raise _Unsupported(f"{model.__name__} validates unknown field {name}")
            after.setdefault(name, []).append(dec.func)

    keep_seen = bool(after)  # pydantic's ``info.data``: the earlier fields, defaults included
    cfg = src.name(config)
    keys = []
    body = ["data = v"]
    if keep_seen:
        body.append("seen = {}")
    body.append("out = {}")
    for name, info in model.model_fields.items():
        key = info.alias or name
        if (
            info.validation_alias not in (None, key)
            or info.serialization_alias not in (None, key)
            or info.exclude
            or getattr(info, "exclude_if", None) is not None
            or info.validate_default
            or info.default_factory is not None
            or info.discriminator is not None
        ):
            raise _Unsupported(f"{model.__name__}.{name}")
        required = info.is_required()
        if not required and info.default is not None:
            raise _Unsupported(f"{model.__name__}.{name} default {info.default!r}")
        keys.append(key)
        check = _type_lines(src, info.annotation, _flatten(info.metadata))
        for validator in after.get(name, []):
            check += [
                f"if not _validated({src.name(validator)}, v, seen, {name!r}, {cfg}):",
                "    raise Unsure",
            ]
        if keep_seen:
            check.append(f"seen[{name!r}] = v")
        check += ["if d is not None:", f"    out[{key!r}] = d"]
        body.append(f"v = data.get({key!r}, _MISSING)")
        if required:
            body += ["if v is _MISSING:", "    raise Unsure", *check]
        else:
            # Defaults are not validated; pydantic's ``info.data`` still holds them.
            missing = [f"seen[{name!r}] = None"] if keep_seen else ["pass"]
            body += ["if v is _MISSING:", *(f"    {line}" for line in missing), "else:"]
            body += [f"    {line}" for line in check]
    allowed = src.name(frozenset(keys))
    header = ["if type(v) is not dict or not v.keys() <= " + allowed + ":", "    raise Unsure"]
    function: Validate = src.function(model.__name__, [*header, *body, "return out"])
    return function


def compile_model(model: type[BaseModel]) -> Validate | None:
    """The fast check of ``model``'s data, or None if the model uses a construct it does not
    know (then that model is validated by pydantic alone)."""
    try:
        return _compile(model, _Source())
    except _Unsupported:
        return None


#: The fast check per event name, for the models it supports.
FAST: Final[dict[str, Validate]] = {
    event: check
    for event, model in models.MODELS.items()
    if (check := compile_model(model)) is not None
}
