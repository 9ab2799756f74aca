"""Shared CLI plumbing: the runtime from settings, output in tables or JSON, and how a
refusal is said: ``error: …`` on stderr, or, when the command line asked for ``--json``,
the HTTP API's error body (``{"error": {"code", "message", "field"?, …}}``) on stdout;
and its exit code (0 success, 1 failure, 2 bad usage or bad input).

Text is text: ``console`` and ``err_console`` print with Rich markup (and emoji codes) off,
so what the data or the user says (ids, reasons, arguments, table cells, refusals quoting
input) is shown as written, brackets and all. The CLI's own styling goes through
``say``/``styled``: a template whose ``{}`` fields are filled with escaped values, the one
place markup is on."""

from __future__ import annotations

import json
import logging
import os
import re
import string
import sys
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table
from rich.text import Text

from decisionops.agent.errors import (
    DecisionOpsError,
    error_body,
    error_fields,
    pydantic_message,
    status_for,
)
from decisionops.agent.settings import Settings, config_path

T = TypeVar("T")

__all__ = [
    "JSON_ERRORS",
    "OPTIONS_GIVEN",
    "Column",
    "console",
    "err_console",
    "exit_for",
    "fail",
    "limited",
    "log_to_stderr",
    "print_fitted",
    "print_json",
    "print_table",
    "runtime",
    "say",
    "say_more",
    "settings",
    "styled",
]

# Markup and emoji codes (``:x:``) off: a value printed is the value.
console = Console(markup=False, emoji=False)
err_console = Console(stderr=True, markup=False, emoji=False)


class _Escaping(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        return escape(super().format_field(value, format_spec))


_ESCAPING = _Escaping()


def styled(template: str, /, *values: Any) -> Text:
    """The CLI's own markup ``template`` (``"[bold]{}[/] · {:,} rows"``) with ``values``
    in its ``{}`` fields, each escaped: a value is never markup."""
    return Text.from_markup(_ESCAPING.format(template, *values), emoji=False)


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR}
_LEVEL_STYLE = {"warning": "yellow", "error": "red", "critical": "red"}


class _SayHandler(logging.Handler):
    """The product's log records as the CLI says its own warnings: ``warning: …`` on
    stderr, the message as text (never markup)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level = record.levelname.lower()
            style = _LEVEL_STYLE.get(level, "dim")
            say(f"[{style}]{{}}:[/] {{}}", level, self.format(record), err=True,
                highlight=False, soft_wrap=True)
        except Exception:  # logging must never break the command
            self.handleError(record)


def log_to_stderr(env: Mapping[str, str] = os.environ) -> None:
    """Show what the ``decisionops`` loggers record at ``DECISIONOPS_LOG_LEVEL`` (debug,
    info, warning: the default, error) and above; other libraries' logs are theirs."""
    logger = logging.getLogger("decisionops")
    handler = next((h for h in logger.handlers if isinstance(h, _SayHandler)), None)
    if handler is None:
        handler = _SayHandler()
        logger.addHandler(handler)
    name = env.get("DECISIONOPS_LOG_LEVEL", "warning")
    level = _LEVELS.get(name.strip().lower())
    handler.setLevel(level or logging.WARNING)
    if level is not None and level < logging.WARNING:
        logger.setLevel(level)  # below the default: the loggers must pass it on
    if level is None:
        logger.warning("DECISIONOPS_LOG_LEVEL: %r is not one of %s; showing warnings and "
                       "errors", name, ", ".join(_LEVELS))


def say(template: str, /, *values: Any, err: bool = False, **options: Any) -> None:
    """Print ``styled(template, *values)`` to stdout (``err``: stderr); ``options`` as for
    ``Console.print`` (``highlight=False``, ``soft_wrap=True``, ``style=…``)."""
    out = err_console if err else console
    out.print(_ESCAPING.format(template, *values), markup=True, **options)

_OPTION_FIRST = re.compile(r"(--[a-z][a-z0-9-]*)(?:[: ]|$)")
JSON_ERRORS: ContextVar[bool] = ContextVar("decisionops_json_errors", default=False)
"""The command line asked for ``--json``: refusals are JSON on stdout (set by ``main``)."""
OPTIONS_GIVEN: ContextVar[frozenset[str]] = ContextVar("decisionops_options_given",
                                                       default=frozenset())
"""The options on the command line (``--role``…, set by ``main``): a refusal whose field
is one of their values names the option (``role`` → ``--role``)."""


def _as_option(message: str, field: str | None) -> tuple[str, str | None]:
    """``field`` as the option given for it, and the message saying so (a service names
    the value, ``role: 'x' is not one of …``; the command line knows it as ``--role``)."""
    option = f"--{field.replace('_', '-')}" if field else None
    if option is None or option not in OPTIONS_GIVEN.get():
        return message, field
    if message.startswith(f"{field}: "):
        message = option + message[len(field):]
    return message, option


def fail(message: str, code: int = 2, *, status: int | None = None, field: str | None = None,
         **extra: Any) -> typer.Exit:
    """Say a refusal (see the module docstring) and return the exit to raise. ``status``:
    the HTTP status whose ``code`` names it (default: 422 for exit code 2, else 500);
    ``field``: the option or value at fault (default: the option a message starts with,
    as in ``--status: 'maybe' is not one of …``)."""
    message, field = _as_option(message, field)
    if JSON_ERRORS.get():
        named = _OPTION_FIRST.match(message)
        field = field or (named.group(1) if named else None)
        # One line: a command that prints JSON lines (run --json, its workers' output
        # through the supervisor) stays one JSON document per line.
        body = error_body(status or (422 if code == 2 else 500), message, field=field, **extra)
        sys.stdout.write(json.dumps(body, default=_default, ensure_ascii=False) + "\n")
    else:
        say("[bold red]error:[/] {}", message, err=True, highlight=False)
    return typer.Exit(code)


def settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        top = str(err["loc"][0]) if err["loc"] else ""
        where = (f"DECISIONOPS_{top.upper()}, or {top} in decisionops.toml" if top
                 else "DECISIONOPS_* or decisionops.toml")
        raise fail(f"settings: {field}: {pydantic_message(err)} (from {where})",
                   field=field, location="settings") from exc
    except tomllib.TOMLDecodeError as exc:
        raise fail(f"{config_path()}: not valid TOML: {exc}", field="decisionops.toml",
                   location="settings") from None
    except SettingsError as exc:  # an environment value that is not the JSON it must be
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        raise fail(f"settings: {exc}{cause} (from DECISIONOPS_*)", location="settings") from exc


@contextmanager
def runtime(actor: str | None = None, *, in_force: bool = True, **overrides: Any
            ) -> Iterator[Any]:
    """The runtime of a command. ``in_force``: with a functions file that does not load,
    the policies last in force in the data folder apply, as in a running server (the
    loop's commands pass False: they refuse to start on it)."""
    from decisionops.agent.runtime import Runtime  # the composition root; imported lazily for --help speed

    with Runtime(settings(**overrides), actor=actor, in_force=in_force) as rt:
        yield rt


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, default=_default, indent=2, ensure_ascii=False) + "\n")


def limited(rows: Sequence[T], limit: int) -> tuple[list[T], bool]:
    """A listing's rows fetched with ``limit + 1``: the first ``limit``, and whether there
    were more (every ``--limit`` listing is fetched so, and says so with ``say_more``)."""
    return list(rows[:limit]), len(rows) > limit


def say_more(limit: int, maximum: int, *, as_json: bool) -> None:
    """Under a listing cut at ``--limit``: that there are more, and how to see them (on
    stderr under ``--json``, whose stdout stays one JSON document)."""
    if limit < maximum:
        say("[dim]the first {:,} shown; there are more (--limit up to {:,})[/]", limit, maximum,
            err=as_json, highlight=False)
    else:
        say("[dim]the first {:,} shown; there are more (narrow the listing with its "
            "filters)[/]", limit, err=as_json, highlight=False)


def print_table(title: str, columns: Sequence[str | Column], rows: Sequence[Sequence[Any]],
                empty: str = "nothing to show", *, compact: bool = False) -> None:
    """A table of ``rows``; a column given by name folds long values onto more lines, a
    ``Column`` says itself (``no_wrap`` for ids, ``overflow="ellipsis"`` for free text).
    ``compact``: a rule under the header only, two spaces between columns."""
    if not rows:
        say("[dim]{}[/]", empty)
        return
    table = (Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False,
                   collapse_padding=True) if compact
             else Table(title=title, title_justify="left"))
    for column in columns:
        if isinstance(column, Column):  # a fresh copy: the table fills in its cells
            table.columns.append(replace(column, _index=len(table.columns), _cells=[]))
        else:
            table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    console.print(table)


def print_fitted(title: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]], *,
                 drop: Sequence[str] = (), empty: str = "nothing to show") -> None:
    """A compact table whose values are never folded: each column as wide as its widest
    cell; while that is wider than the terminal, the columns named in ``drop`` are left
    out, in that order; a last column with ``overflow="ellipsis"`` (free text) gets what
    the others leave, at least 12, cut with …. --json is where every field stays."""
    cells = [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(str(c.header)), *(len(r[i]) for r in cells), 1) if cells else 1
              for i, c in enumerate(columns)]
    free = columns[-1].overflow == "ellipsis"
    keep = list(range(len(columns)))

    def width(indexes: list[int]) -> int:
        return sum(12 if free and i == len(columns) - 1 else widths[i]
                   for i in indexes) + 2 * len(indexes) + 1

    for name in drop:
        if width(keep) <= console.width:
            break
        keep = [i for i in keep if columns[i].header != name]
    shown = [replace(columns[i], min_width=None if free and i == len(columns) - 1 else widths[i],
                     no_wrap=True) for i in keep]
    if free and keep[-1] == len(columns) - 1:
        shown[-1] = replace(shown[-1], max_width=max(12, console.width - width(keep[:-1]) - 2))
    print_table(title, shown, [[r[i] for i in keep] for r in cells], empty, compact=True)


def exit_for(exc: DecisionOpsError) -> typer.Exit:
    return fail(exc.message, exc.exit_code, status=status_for(exc), **error_fields(exc))
