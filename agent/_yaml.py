"""Loading YAML configuration files into pydantic models with errors that name the
file, the object and the field."""

from __future__ import annotations

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
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "(top level)"
            problems.append(f"{field}: {pydantic_message(err)}")
        raise ConfigError(f"{path}: {name}: " + "; ".join(problems),
                          file=str(path), name=name, problems=problems) from exc
