"""Loading YAML configuration files into pydantic models with errors that name the
file, the object and the field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from decisionops.agent.errors import ConfigError, pydantic_message

__all__ = ["load_yaml", "loads", "validate_config"]

M = TypeVar("M", bound=BaseModel)


class _Strict(yaml.SafeLoader):
    """Safe loading that refuses a key given twice in one mapping: YAML keeps the last,
    so a second ``amount:`` under ``limits`` or a second ``finance:`` block silently
    replaced the first (found in a black-box trial: a hard limit weakened that way)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice (first on line {seen[key]})",
                    key_node.start_mark)
            if isinstance(key, str | int | float | bool):
                seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def loads(text: str) -> Any:
    """YAML text, safely, refusing a key given twice (``yaml.YAMLError``)."""
    return yaml.load(text, Loader=_Strict)  # a SafeLoader: no arbitrary objects


def load_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        return loads(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc


def validate_config(model: type[M], data: Any, *, path: Path, name: str) -> M:
    """Validate ``data``; on failure raise ``ConfigError`` naming file, object and every field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems, fields = [], []
        for err in exc.errors():
            field = _path(data, err["loc"])
            message = pydantic_message(err)
            if not field:  # a check of the whole object names its field first
                named = _NAMED.match(message)
                field, message = (named.group(1), named.group(2)) if named else (
                    "(top level)", message)
            problems.append(f"{field}: {message}")
            fields.append(field)
        raise ConfigError(f"{path}: {name}: " + "; ".join(problems), field=fields[0],
                          file=str(path), name=name, problems=problems) from exc


def _path(data: Any, loc: tuple[Any, ...]) -> str:
    """``loc`` as a dotted path, an item of a list by its ``id`` where it has one
    (``steps.refund.risk``, as every other problem names a step, not ``steps.1.risk``)."""
    parts, here = [], data
    for part in loc:
        item = here[part] if isinstance(here, list) and isinstance(part, int) and \
            0 <= part < len(here) else None
        named = item.get("id") if isinstance(item, dict) else None
        parts.append(named if isinstance(named, str) and named else str(part))
        here = item if item is not None else (
            here.get(part) if isinstance(here, dict) else None)
    return ".".join(parts)


_NAMED = re.compile(r"^([A-Za-z_][\w-]*(?:\.[\w-]+)*): (.*)$", re.DOTALL)
"""A whole-object check's message that begins with the field it is about."""
