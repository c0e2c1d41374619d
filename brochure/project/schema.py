"""One small schema used for the brand config, the documents config and front matter.

Every problem is collected with its file, key and line; unknown keys become
warnings. The caller raises once with all of them (mkdocs does the same).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from brochure.base.errors import Problem

Check = Callable[[Any], str | None]

_TYPE_NAMES = {
    str: "text",
    int: "a whole number",
    float: "a number",
    bool: "true or false",
    dt.date: "a date like 2026-03-01",
    list: "a list",
    dict: "a table",
}


@dataclass(frozen=True)
class Field:
    """What one key accepts: its type, whether it is required, an extra check."""

    type: type
    required: bool = False
    default: Any = None
    check: Check | None = None
    example: str = ""
    items: Any = None  # for lists: the type of each item
    fields: Mapping[str, Field] | None = None  # for tables: their own keys
    help: str = ""


@dataclass
class Result:
    """Validated values plus every error and warning found on the way."""

    values: dict[str, Any]
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def _type_ok(value: Any, wanted: type) -> bool:
    if wanted is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if wanted is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if wanted is dt.date:
        return isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    return isinstance(value, wanted)


#: Characters no handout can hold: control characters (but tab and line breaks),
#: lone surrogates (which no file can encode) and the two non-characters.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_UNPRINTABLE_FIX = "delete it and retype the text around it; escapes like \\uD800 or \\u0007 are not allowed"


def unprintable(value: Any) -> str | None:  # noqa: ANN401 - any parsed value
    """The first character in ``value`` (text, or text inside lists and tables) that cannot be printed,
    as 'U+D800'; None when there is none."""
    if isinstance(value, str):
        found = _UNPRINTABLE.search(value)
        return f"U+{ord(found.group()):04X}" if found else None
    if isinstance(value, Mapping):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        return None
    return next((code for item in items if (code := unprintable(item))), None)


def shown(text: str) -> str:
    """``text`` safe to print in a message: unprintable characters as \\uXXXX escapes."""
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def validate(
    data: Mapping[str, Any],
    fields: Mapping[str, Field],
    file: Path | str,
    lines: Mapping[str, int] | None = None,
    *,
    prefix: str = "",
    kind: str = "key",
    line_if_unknown: int | None = None,
) -> Result:
    """Check ``data`` against ``fields``; return the values with defaults filled in."""
    lines = lines or {}
    result = Result(values={})

    def line_of(key: str) -> int | None:
        return lines.get(prefix + key, line_if_unknown)

    for key in data:
        if key not in fields and (code := unprintable(key)):
            result.errors.append(
                Problem(
                    file,
                    line_of(key),
                    f"{kind} key '{prefix}{shown(key)}' holds a character that cannot be printed ({code})",
                    _UNPRINTABLE_FIX,
                )
            )
        elif key not in fields:
            known = ", ".join(sorted(fields))
            result.warnings.append(
                Problem(
                    file,
                    line_of(key),
                    f"unknown {kind} '{prefix}{key}' is ignored",
                    f"known keys here: {known}",
                )
            )
    for key, spec in fields.items():
        name = prefix + key
        if key not in data or data[key] is None:
            if spec.required:
                example = spec.example or f"{key} = ..."
                result.errors.append(
                    Problem(
                        file,
                        lines.get(name, line_if_unknown),
                        f"{kind} '{name}' is required",
                        f"add '{example}'",
                    )
                )
            if spec.fields is not None:
                sub = validate({}, spec.fields, file, lines, prefix=name + ".", kind=kind)
                result.errors += sub.errors
                result.values[key] = sub.values
            else:
                result.values[key] = spec.default
            continue
        value = data[key]
        # Until the value proves good, later code sees the default, never a gap.
        result.values[key] = spec.default
        if code := unprintable(value):
            result.errors.append(
                Problem(
                    file,
                    line_of(key),
                    f"{kind} '{name}' holds a character that cannot be printed ({code})",
                    _UNPRINTABLE_FIX,
                )
            )
            continue
        if not _type_ok(value, spec.type):
            example = f" like '{spec.example}'" if spec.example else ""
            result.errors.append(
                Problem(
                    file,
                    line_of(key),
                    f"{kind} '{name}' must be {_TYPE_NAMES[spec.type]}, not {_describe(value)}",
                    f"write it{example}" if example else f"give {_TYPE_NAMES[spec.type]}",
                )
            )
            continue
        if spec.fields is not None:
            sub = validate(
                value,
                spec.fields,
                file,
                lines,
                prefix=name + ".",
                kind=kind,
                line_if_unknown=line_of(key),
            )
            result.errors += sub.errors
            result.warnings += sub.warnings
            result.values[key] = sub.values
            continue
        if spec.items is not None:
            bad = [v for v in value if not _type_ok(v, spec.items)]
            if bad:
                result.errors.append(
                    Problem(
                        file,
                        line_of(key),
                        f"{kind} '{name}' must be a list of "
                        f"{_TYPE_NAMES[spec.items]}, but holds {_describe(bad[0])}",
                        f"write it like '{spec.example}'" if spec.example else None,
                    )
                )
                continue
        if spec.check is not None:
            message = spec.check(value)
            if message:
                hint = f"write it like '{spec.example}'" if spec.example else None
                result.errors.append(Problem(file, line_of(key), f"{kind} '{name}' {message}", hint))
                continue
        result.values[key] = value
    return result


def _describe(value: Any) -> str:
    for wanted, name in _TYPE_NAMES.items():
        if _type_ok(value, wanted):
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            return f"{name} {shown}" if wanted in (str, int, bool) else name
    return type(value).__name__


# -- checks shared by several schemas ------------------------------------------

_HEX = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


def is_colour(value: str) -> str | None:
    """A brand colour: '#rgb' or '#rrggbb' (what print needs, and what contrast checks read)."""
    return None if _HEX.fullmatch(value) else f"is not a colour: {value!r}"


def one_of(*choices: str) -> Check:
    """The value must be one of ``choices``."""

    def check(value: Any) -> str | None:
        if value in choices:
            return None
        return f"must be one of {', '.join(choices)}, not {value!r}"

    return check


def not_blank(value: str) -> str | None:
    """Text that is not empty."""
    return "must not be empty" if not value.strip() else None


_LANG = re.compile(r"[a-zA-Z]{2,3}(?:-[a-zA-Z0-9]{2,8})*")


def is_web_address(value: str) -> str | None:
    """A full http(s) address with no spaces: what a QR code or a link can point at."""
    if re.fullmatch(r"https?://[^\s<>\"]+\.[^\s<>\"]+", value):
        return None
    return f"is not a web address starting with https://: {value!r}"


def is_lang(value: str) -> str | None:
    """A BCP 47 language tag such as 'en' or 'es-MX'."""
    return None if _LANG.fullmatch(value) else f"is not a language tag: {value!r}"


def positive(value: int) -> str | None:
    """A whole number of at least 1."""
    return None if value >= 1 else f"must be 1 or more, not {value}"


# -- where keys stand in a TOML file --------------------------------------------

_TOML_TABLE = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")
_TOML_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")


def toml_key_lines(text: str) -> dict[str, int]:
    """Map each dotted key in a TOML text to the line it is set on.

    tomllib gives no positions; this scan is enough for messages. Arrays of
    tables ([[x]]) are numbered x.0, x.1, ...
    """
    lines: dict[str, int] = {}
    table = ""
    counts: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if m := _TOML_TABLE.match(line):
            name = m.group(1).replace('"', "").replace("'", "")
            if line.lstrip().startswith("[["):
                index = counts.get(name, 0)
                counts[name] = index + 1
                name = f"{name}.{index}"
            table = name
            lines.setdefault(table, number)
        elif m := _TOML_KEY.match(line):
            key = m.group(1).replace('"', "").replace("'", "")
            lines.setdefault(f"{table}.{key}" if table else key, number)
    return lines
