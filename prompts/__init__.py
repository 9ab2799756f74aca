"""Prompt templates as files: versioned, loaded once, rendered strictly.

Each template is a Markdown file in this package with YAML front matter::

    ---
    version: 3
    description: what the prompt is for
    variables: [prediction, context]
    ---
    body, a Jinja2 template

``version`` is recorded with every plan drafted from the template
(``PlanningRecord.prompt_version``), so a changed prompt is visible in ``plan explain``
and invalidates the plan cache. Rendering is strict: the template runs in a Jinja2
sandbox with ``StrictUndefined``; the declared ``variables`` must be exactly the ones
the body uses; a missing or an unexpected variable is an error, never an empty string.

What does not live here: the values. Callers serialize untrusted data (predictions,
lookup results) themselves and pass strings; templates only place them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml
from jinja2 import StrictUndefined, TemplateError, meta
from jinja2.sandbox import SandboxedEnvironment

from decisionops.agent.errors import ConfigError

__all__ = ["Prompt", "load_prompt", "parse_prompt", "prompt_version"]

_FENCE = "---"


def _environment() -> SandboxedEnvironment:
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                keep_trailing_newline=False, trim_blocks=True,
                                lstrip_blocks=True)


@dataclass(frozen=True)
class Prompt:
    """One loaded template."""

    name: str
    version: str
    description: str
    variables: frozenset[str]
    body: str

    @property
    def label(self) -> str:
        """``name@version``, as recorded with plans."""
        return f"{self.name}@{self.version}"

    def render(self, **values: Any) -> str:
        """Render with exactly the declared variables (missing or extra ones fail)."""
        missing = sorted(self.variables - set(values))
        extra = sorted(set(values) - self.variables)
        if missing:
            raise ConfigError(f"prompts/{self.name}.md: missing variable(s) {', '.join(missing)}",
                              field=f"prompts.{self.name}.{missing[0]}")
        if extra:
            raise ConfigError(f"prompts/{self.name}.md: unexpected variable(s) {', '.join(extra)}",
                              field=f"prompts.{self.name}.{extra[0]}")
        try:
            return _compiled(self.name, self.body).render(**values).strip() + "\n"
        except TemplateError as exc:
            raise ConfigError(f"prompts/{self.name}.md: {exc}", field=f"prompts.{self.name}") from exc


@lru_cache(maxsize=64)
def _compiled(name: str, body: str) -> Any:
    return _environment().from_string(body)


def _split(name: str, text: str) -> tuple[dict[str, Any], str]:
    lines = text.splitlines()
    if not lines or lines[0].strip() != _FENCE:
        raise ConfigError(f"prompts/{name}.md: must start with YAML front matter ('---')",
                          field=f"prompts.{name}")
    try:
        end = next(i for i, line in enumerate(lines[1:], 1) if line.strip() == _FENCE)
    except StopIteration:
        raise ConfigError(f"prompts/{name}.md: front matter is not closed ('---')",
                          field=f"prompts.{name}") from None
    try:
        header = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"prompts/{name}.md: front matter is not valid YAML: {exc}",
                          field=f"prompts.{name}") from exc
    if not isinstance(header, dict):
        raise ConfigError(f"prompts/{name}.md: front matter must be a mapping",
                          field=f"prompts.{name}")
    return header, "\n".join(lines[end + 1:])


def parse_prompt(name: str, text: str) -> Prompt:
    """Parse and check one template's text (used by ``load_prompt`` and by tests)."""
    header, body = _split(name, text)
    version = header.get("version")
    if version is None or not str(version).strip():
        raise ConfigError(f"prompts/{name}.md: front matter needs a version",
                          field=f"prompts.{name}.version")
    declared = header.get("variables") or []
    if not isinstance(declared, list) or not all(isinstance(v, str) for v in declared):
        raise ConfigError(f"prompts/{name}.md: variables must be a list of names",
                          field=f"prompts.{name}.variables")
    try:
        used = meta.find_undeclared_variables(_environment().parse(body))
    except TemplateError as exc:
        raise ConfigError(f"prompts/{name}.md: {exc}", field=f"prompts.{name}") from exc
    undeclared = sorted(used - set(declared))
    unused = sorted(set(declared) - used)
    if undeclared or unused:
        raise ConfigError(f"prompts/{name}.md: variables do not match the body (used but not "
                          f"declared: {', '.join(undeclared) or '-'}; declared but unused: "
                          f"{', '.join(unused) or '-'})", field=f"prompts.{name}.variables")
    return Prompt(name=name, version=str(version).strip(),
                  description=str(header.get("description", "")),
                  variables=frozenset(declared), body=body)


@lru_cache(maxsize=64)
def load_prompt(name: str) -> Prompt:
    """The bundled template ``prompts/<name>.md`` (cached per process)."""
    if not name.replace("_", "").isalnum():
        raise ConfigError(f"prompt name {name!r} is not a plain name", field="prompt")
    ref = resources.files(__name__) / f"{name}.md"
    if not ref.is_file():
        raise ConfigError(f"no prompt template prompts/{name}.md", field=f"prompts.{name}")
    return parse_prompt(name, ref.read_text(encoding="utf-8"))


def prompt_version(prompts: Iterable[Prompt] | Mapping[str, Prompt]) -> str:
    """The combined version of a set of templates: ``a@1+b@2`` (sorted by name)."""
    items = prompts.values() if isinstance(prompts, Mapping) else prompts
    return "+".join(sorted(p.label for p in items))
