"""Typed dataclass configs: YAML/JSON files, mappings and ``KEY=VALUE`` overrides checked against field types
(``run``: ExperimentConfig, ``ttc --set``: TTCConfig), and the config options of the commands (``--config``,
``--set``, ``--print-config``, ``--seed``).

A config is a dataclass whose annotations are the schema (``int``, ``float``, ``str``, ``bool``,
``X | None``, ``list[X]``, ``dict[str, X]``, ``Any`` and nested dataclasses). Every problem raises
:class:`ConfigError`, whose message is one line naming the field, and the file and line when the value
came from a file, so the command line prints it without a traceback.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import numbers
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Union

import yaml

_NONE = type(None)
#: YAML 1.1 (PyYAML) reads ``1e-3`` as a string: such strings are numbers where a number is expected.
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class ConfigError(ValueError):
    """A bad config file, key or value. The message is one line, meant for the user."""


class ConfigNotFoundError(ConfigError, FileNotFoundError):
    """A config file that does not exist (also a ``FileNotFoundError``)."""


class _Problem(Exception):
    """A mismatch at ``where`` (a dotted key), turned into a :class:`ConfigError` with its location."""

    def __init__(self, where: str, message: str):
        super().__init__(message)
        self.where, self.message = where, message


# ---------------------------------------------------------------------------------------------- types
def describe(hint: Any) -> str:
    """``int`` -> "an integer", ``list[float] | None`` -> "a list of numbers or null"."""
    if hint is Any:
        return "any value"
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        text = " or ".join(describe(a) for a in args if a is not _NONE)
        return f"{text} or null" if _NONE in args else text
    if origin is list:
        inner = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}.get(args[0], "values")
        return f"a list of {inner}"
    if origin is dict or dataclasses.is_dataclass(hint):
        return "a mapping"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """``value`` checked against ``hint``; numbers become the field's int or float, paths become strings."""
    if hint is Any:
        return value
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):
        if value is None and _NONE in args:
            return None
        for option in (a for a in args if a is not _NONE):
            try:
                return _coerce(value, option, where)
            except _Problem:
                continue
    elif dataclasses.is_dataclass(hint):
        if isinstance(value, hint):
            return value
        if isinstance(value, dict):
            return _build(hint, value, f"{where}.")
    elif origin is list:
        if isinstance(value, (list, tuple)):
            return [_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    elif origin is dict:
        if isinstance(value, dict):
            return {str(k): _coerce(v, args[1], f"{where}.{k}") for k, v in value.items()}
    elif hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return int(value)
    elif hint is float:
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
            return float(value)
    elif hint is str:
        if isinstance(value, (str, os.PathLike)):
            return os.fspath(value)
    else:
        return value
    raise _Problem(where, f"{where} must be {describe(hint)}, got {value!r}")


def _build(cls: type, data: Any, prefix: str = "") -> Any:
    if not isinstance(data, dict):
        raise _Problem(
            prefix.rstrip("."),
            f"{prefix.rstrip('.') or 'the config'} must be a mapping of keys to values, got {type(data).__name__}",
        )
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise _Problem(prefix + str(unknown[0]), unknown_keys(unknown, names, prefix))
    hints = typing.get_type_hints(cls)
    return cls(**{k: _coerce(v, hints[k], prefix + k) for k, v in data.items()})


def unknown_keys(unknown: list, valid: list[str], prefix: str = "") -> str:
    """ "unknown config keys: epochz (did you mean epochs?); valid keys: ..."."""
    hints = [
        f"{k} (did you mean {prefix}{m[0]}?)" if (m := difflib.get_close_matches(str(k), valid, 1)) else str(k)
        for k in unknown
    ]
    return (
        f"unknown config keys: {', '.join(prefix + h for h in hints)}; valid keys: "
        f"{', '.join(prefix + v for v in sorted(valid))}"
    )


def _located(problem: _Problem, source: str | None, lines: dict[str, int] | None) -> ConfigError:
    where, line = problem.where, None
    while lines and where and line is None:
        line = lines.get(where)
        where = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", where) if line is None else where
    location = f"{source}:{line}: " if source and line else f"{source}: " if source else ""
    return ConfigError(location + problem.message)


def from_mapping(cls: type, data: Any, source: str | None = None, lines: dict[str, int] | None = None) -> Any:
    """An instance of dataclass ``cls`` from ``data``; unknown keys and wrong types raise :class:`ConfigError`.

    ``source`` (a file name, or ``--set``) and ``lines`` (dotted key -> line, from :func:`read_file`) locate
    the problem in the message.
    """
    try:
        return _build(cls, data)
    except _Problem as problem:
        raise _located(problem, source, lines) from None


# ---------------------------------------------------------------------------------------------- files
def _key_lines(node: Any, path: str, out: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = f"{path}.{key.value}" if path else str(key.value)
            out[child] = key.start_mark.line + 1
            _key_lines(value, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            out[f"{path}[{i}]"] = item.start_mark.line + 1
            _key_lines(item, f"{path}[{i}]", out)


def read_file(path: str | Path) -> tuple[Any, dict[str, int]]:
    """``(data, lines)`` of a YAML or JSON file; ``lines`` maps dotted keys to 1-based lines (YAML only)."""
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read the config ({err.__class__.__name__}: {err})") from None
    if path.suffix == ".json":
        try:
            return json.loads(text), {}
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path}:{err.lineno}: invalid JSON: {err.msg}") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{path}{line}: invalid YAML: {problem}") from None
    lines: dict[str, int] = {}
    _key_lines(node, "", lines)
    return data, lines


# ---------------------------------------------------------------------------------------------- KEY=VALUE
def parse_value(text: str) -> Any:
    """A command-line value as YAML (``2``, ``true``, ``null``, ``[0, 1]``, ``{width: 16}``); ``1e-3`` is a number."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return float(value)
    return value


def _without_none(hint: Any) -> Any:
    """``X`` for ``X | None`` (``Optional[X]``), else ``hint`` unchanged."""
    if typing.get_origin(hint) in (Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not _NONE]
        if len(args) == 1:
            return args[0]
    return hint


def set_dotted(data: dict, cls: type, assignment: str) -> None:
    """Apply ``KEY=VALUE`` (``epochs=2``, ``network_optimizer.learning_rate=1e-3``) to ``data``, the dict
    form of dataclass ``cls``; the value is parsed and checked against the field's type."""
    key, sep, text = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set expects KEY=VALUE (e.g. epochs=2), got {assignment!r}")
    parts, hint, target = key.split("."), cls, data
    for i, part in enumerate(parts):
        parent = ".".join(parts[:i])
        hint = _without_none(hint)  # `finetune_optimizer.learning_rate` descends into `OptimizerConfig | None`
        if dataclasses.is_dataclass(hint):
            names = [f.name for f in dataclasses.fields(hint)]
            if part not in names:
                raise ConfigError(f"--set {key}: " + unknown_keys([part], names, f"{parent}." if parent else ""))
            hint = typing.get_type_hints(hint)[part]
        elif typing.get_origin(hint) is dict:
            hint = typing.get_args(hint)[1]
        else:
            raise ConfigError(f"--set {key}: {parent} is {describe(hint)}, not a mapping with key {part!r}")
        if i < len(parts) - 1:
            if not isinstance(target.get(part), dict):
                target[part] = {}
            target = target[part]
    value = parse_value(text)
    try:
        value = _coerce(value, hint, key)
    except _Problem as problem:
        try:  # `--set name=123`, `--set tasks=[3.8, 5.9]`: the scalars as written, where strings are expected
            value = _coerce(yaml.load(text, Loader=yaml.BaseLoader), hint, key)
        except (_Problem, yaml.YAMLError):
            value = problem
        if not isinstance(value, _Problem):
            target[parts[-1]] = value
            return
        if typing.get_origin(hint) is list and isinstance(value, (int, float, str)):
            raise ConfigError(f"--set {key}: {problem.message} (write a list as [a, b])") from None
        raise ConfigError(f"--set {key}: {problem.message}") from None
    target[parts[-1]] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


# ---------------------------------------------------------------------------------------------- options
# The config options of the commands (``run``, ``study``, ``pretrain``, ``ttc``): one definition each,
# the command's own words where what they reach differs.
def add_config_argument(parser, bundled: str, default: str | None = None) -> None:
    """``--config``: a YAML/JSON config file or the name of a bundled one (``bundled``: which, for the help)."""
    parser.add_argument(
        "--config",
        default=default,
        help=f"YAML/JSON config file, or a bundled name: {bundled}" + (f" (default {default})" if default else ""),
    )


def add_settings_argument(parser, help_text: str) -> None:
    """``--set KEY=VALUE ...`` (into ``args.settings``, applied with :func:`set_dotted`), with the
    command's own ``help_text``: the one definition ``run``, ``pretrain`` and ``ttc`` share."""
    parser.add_argument(
        "--set", dest="settings", metavar="KEY=VALUE", nargs="+", action="extend", default=[], help=help_text
    )


def add_print_config_argument(parser) -> None:
    """``--print-config``: print the resolved config as YAML and exit, before any work."""
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved config as YAML and exit: values checked, no data loaded, no run folder",
    )


def add_seed_argument(parser, drives: str, default: str = "the config's seed") -> None:
    """``--seed N``: the config's ``seed`` (None when not given); ``drives``: what it seeds, for the help."""
    parser.add_argument("--seed", type=int, help=f"seed of {drives} (default: {default})")
