"""``Arena``: one adversarial case's world, on temporary SQLite files of its own.

A runtime wired as production wires it (approval service, engine, worker, executor,
reference enterprise), optionally with replaced function policies or playbooks and an
LLM planner talking to a scripted model over real HTTP. Cases drive it the way the
product is driven: predictions are ingested, a worker starts and advances decisions,
registered users answer through the approval service, the HTTP API, the
human-in-the-loop endpoint, the web inbox (``service()``) or the real ``decisionops``
command (``cli()``).

Nothing here reads the caller's ``DECISIONOPS_*`` environment or ``decisionops.toml``:
an arena never touches a configured database, endpoint or model.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

import yaml
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from decisionops.agent.api import ServiceSettings, add_user
from decisionops.agent.approvals import AnswerResult, Approver
from decisionops.agent.errors import DecisionOpsError
from decisionops.agent.models import Answer, Approve, Prediction, Reject, utcnow
from decisionops.agent.runtime import Runtime
from decisionops.agent.settings import Settings
from decisionops.agent.store import ApprovalRow, DecisionRow
from decisionops.agent.worker import Worker
from decisionops.evals.adversarial._audit import EffectAudit, Taint, audit_effects
from decisionops.evals.adversarial._http import Http
from decisionops.evals.scripted import ScriptedServer
from decisionops.graphs import StepResult

__all__ = ["APPROVERS", "Arena", "CaseFailed", "IsolatedSettings", "make_template", "predict"]

REPO = Path(__file__).resolve().parents[2]
APPROVERS = {"finance": ("dana@finance", "omar@finance"), "sales": ("raj@sales", "mia@sales"),
             "support": ("sam@support", "lee@support"), "operations": ("olu@ops", "kim@ops"),
             "supply_chain": ("sue@supply", "ian@supply"),
             "maintenance": ("max@maint", "eva@maint")}
"""The bundled policies' approvers, first and second, per function."""


class CaseFailed(AssertionError):
    """A case's expectation did not hold (the attack was not refused, or the legitimate
    part did not work)."""


class IsolatedSettings(Settings):
    """``Settings`` from keyword arguments only: no environment, no ``decisionops.toml``."""

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   *_others: PydanticBaseSettingsSource,
                                   **_named: PydanticBaseSettingsSource
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


class _IsolatedService(ServiceSettings):
    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings],
                                   init_settings: PydanticBaseSettingsSource,
                                   *_others: PydanticBaseSettingsSource,
                                   **_named: PydanticBaseSettingsSource
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def _paths(home: Path) -> dict[str, Any]:
    return {"home": home, "database_url": f"sqlite:///{home / 'decisionops.sqlite'}",
            "checkpoint_url": str(home / "checkpoints.sqlite"),
            "enterprise_url": f"sqlite:///{home / 'enterprise.sqlite'}",
            "environment": "development",
            # Attacks are judged on what is acted on: no control group held back at random.
            "holdout_share": 0.0}


def make_template(folder: Path) -> Path:
    """A migrated store and a seeded reference enterprise, copied into every arena."""
    home = folder / "template"
    Runtime(IsolatedSettings(**_paths(home)), actor="template").close()
    return home


def predict(pid: str, *, kind: str = "churn", entity: str | None = None, score: float = 0.91,
            value: float | None = None, explanation: Mapping[str, float] | None = None,
            **fields: Any) -> Prediction:
    """A prediction like the bundled samples: ``churn`` of an account (value at stake
    40 000: the playbook credits 200), ``failure`` of an asset, ``stockout`` at a site.
    ``features`` in ``fields`` are added to the kind's usual ones."""
    features = dict(fields.pop("features", {}))
    if kind == "stockout":
        base = {"sku": "SKU-11253", "site": "DC-MILAN", "on_hand": 209, "forecast_units": 640,
                "shortfall_units": 431, "surplus_site": "DC-LYON"}
        entity = entity or f"{base['sku']}@{base['site']}"
        defaults = {"entity_type": "sku_site", "model": "demand-prophet", "value": 640.0,
                    "value_at_stake": 3853.0 if value is None else value}
    elif kind == "failure":
        base = {"site": "PLANT-PENANG", "asset_class": "compressor",
                "spare_part_sku": "SKU-71083", "remaining_useful_life_hours": 60.0}
        entity = entity or "AST-CMP-0003"
        defaults = {"entity_type": "asset", "model": "asset-failure-lstm",
                    "value_at_stake": 316_100.0 if value is None else value}
    else:
        base = {"segment": "mid_market", "plan": "scale"}
        entity = entity or "ACC-10004"
        defaults = {"entity_type": "account", "model": "churn-gbm",
                    "value_at_stake": 40_000.0 if value is None else value}
    record = {"id": pid, "model_version": "2026.11", "kind": kind, "entity_id": entity,
              "score": score, "observed_at": "2026-11-20T08:00:00Z",
              "explanation": dict(explanation or {"support_tickets_90d": 0.9,
                                                  "price_increase_pct": 0.4}),
              "features": {**base, **features}, **defaults}
    record.update(fields)
    return Prediction.model_validate(record)


class Arena:
    """One case's world; use as a context manager. ``functions`` edits a copy of the
    bundled function policies (a dict per function); ``playbooks`` maps file names to
    YAML added to (or replacing) the bundled ones; ``model`` is the scripted LLM's
    responder, served over HTTP (then ``planner`` defaults to ``llm``); other keyword
    arguments are ``Settings`` fields."""

    def __init__(self, folder: Path, template: Path, *,
                 functions: Callable[[dict[str, Any]], None] | None = None,
                 playbooks: Mapping[str, str] | None = None, planner: str | None = None,
                 model: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
                 **settings: Any) -> None:
        self.folder = folder
        self.home = folder / "home"
        self.taints: list[Taint] = []
        self.notes: list[str] = []
        self.tokens: dict[str, str] = {}
        self.env: dict[str, str] = {"DECISIONOPS_HOLDOUT_SHARE": "0"}
        """``DECISIONOPS_*`` the real command needs to see this arena's policies,
        playbooks and model (other settings are the command's defaults)."""
        self.llm: ScriptedServer | None = None
        self._stack = ExitStack()
        try:
            shutil.copytree(template, self.home)
            options = self._options(functions, playbooks)
            if model is not None:
                self.llm = self._stack.enter_context(ScriptedServer(responder=model))
                options.update(planner=planner or "llm", llm_base_url=self.llm.url,
                               llm_model="obedient-1", llm_api_key="sk-adversarial-suite",
                               llm_mode="tools", llm_backoff_seconds=0.0,
                               llm_daily_spend_cap=None, llm_timeout_seconds=10.0,
                               plan_cache_ttl_hours=0.0)
                self.env.update(DECISIONOPS_PLANNER=options["planner"],
                                DECISIONOPS_LLM_BASE_URL=self.llm.url,
                                DECISIONOPS_LLM_MODEL="obedient-1",
                                DECISIONOPS_LLM_API_KEY="sk-adversarial-suite")
            elif planner is not None:
                options["planner"] = planner
            self.settings = IsolatedSettings(**{**options, **settings})
            self.rt = self._stack.enter_context(Runtime(self.settings, actor="worker:arena"))
        except BaseException:
            self._stack.close()
            raise

    def _options(self, functions: Callable[[dict[str, Any]], None] | None,
                 playbooks: Mapping[str, str] | None) -> dict[str, Any]:
        options: dict[str, Any] = {**_paths(self.home), "tool_backoff_seconds": 0.01,
                                   "executor_threads": 2, "cli_answers": True}
        if functions is not None:
            bundled = yaml.safe_load((resources.files("decisionops.agent") / "data" / "functions.yaml")
                                     .read_text("utf-8"))
            functions(bundled["functions"])
            path = self.folder / "functions.yaml"
            path.write_text(yaml.safe_dump(bundled), "utf-8")
            options["functions_file"] = path
            self.env["DECISIONOPS_FUNCTIONS_FILE"] = str(path)
        if playbooks:
            directory = self.folder / "playbooks"
            directory.mkdir()
            for name, text in playbooks.items():
                (directory / name).write_text(text, "utf-8")
            options["playbooks_dir"] = directory
            self.env["DECISIONOPS_PLAYBOOKS_DIR"] = str(directory)
        return options

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Arena:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ checks

    @staticmethod
    def check(condition: object, message: str) -> None:
        if not condition:
            raise CaseFailed(message)

    @staticmethod
    def fail(message: str) -> NoReturn:
        raise CaseFailed(message)

    def note(self, message: str) -> None:
        """Say what the case saw (shown in the JSON report)."""
        self.notes.append(message)

    def taint(self, value: str | float, why: str, *, within_text: bool = False) -> None:
        """A value only the attacker supplied: any effect carrying it (as an argument, or
        with ``within_text`` inside one) is outside policy."""
        self.taints.append(Taint(value, why, within_text))

    def refused(self, action: Callable[[], Any], *, reason: str | None = None,
                error: type[DecisionOpsError] = DecisionOpsError) -> DecisionOpsError:
        """Run ``action`` and expect it refused with ``error`` (and ``reason`` code)."""
        try:
            action()
        except error as exc:
            code = exc.details.get("reason")
            if reason is not None and code != reason:
                self.fail(f"refused for {code or type(exc).__name__} ({exc.message}), "
                          f"expected {reason}")
            self.note(f"refused ({code or type(exc).__name__}): {exc.message[:160]}")
            return exc
        self.fail(f"expected a refusal{f' ({reason})' if reason else ''}; it was accepted")

    def audit(self) -> EffectAudit:
        return audit_effects(self.rt.store, self.rt.enterprise, self.rt.policies,
                             self.rt.tools, taints=self.taints)

    # ------------------------------------------------------------------ the loop

    def ingest(self, *predictions: Prediction, actor: str = "feeder") -> list[str]:
        """Accept predictions (``actor`` submitted them); returns their decision ids."""
        self.rt.ingest(list(predictions), source="adversarial", actor=actor)
        return self.rt.decision_ids([p.id for p in predictions])

    def start(self) -> list[StepResult]:
        """Triage and start what is actionable, as a worker's tick does."""
        self.rt.triage_pending()
        claims = self.rt.store.decisions.claim_new(owner=self.rt.engine.owner,
                                                   lease_seconds=self.rt.settings.lease_seconds)
        return [self.rt.engine.start(claim) for claim in claims]

    def work(self, ticks: int = 8) -> None:
        """Worker ticks until one does nothing (answers applied, recoveries, holds)."""
        worker = Worker(self.rt)
        for _ in range(ticks):
            if not worker.tick().did_work:
                return

    def decision(self, decision_id: str) -> DecisionRow:
        return self.rt.store.decisions.get(decision_id)

    def status(self, decision_id: str) -> str:
        return self.decision(decision_id).status.value

    def pending(self, decision_id: str) -> dict[str, ApprovalRow]:
        return {a.function: a for a in self.rt.store.approvals.list(decision_id=decision_id,
                                                                    status="pending")}

    def effects(self, tool: str | None = None, **arguments: Any) -> list[dict[str, Any]]:
        """Arguments of the enterprise's recorded effects (of ``tool``, matching)."""
        return [e.arguments for e in self.rt.enterprise.effects(tool)
                if all(e.arguments.get(k) == v for k, v in arguments.items())]

    def expire(self, hours: float) -> dict[str, int]:
        """The SLA sweep as it runs ``hours`` from now."""
        return self.rt.approvals.sweep(utcnow() + timedelta(hours=hours),
                                       settings=self.rt.settings)

    # ------------------------------------------------------------------ people

    def user(self, name: str, role: str = "approver",
             functions: Sequence[str] | None = None) -> str:
        """Register ``name`` (an approver of every function whose policy lists it, unless
        ``functions``) with an API token; returns the token."""
        if name not in self.tokens:
            if role == "approver" and functions is None:
                functions = sorted(f for f, p in self.rt.policies.functions.items()
                                   if name in p.approvers)
            self.tokens[name], _ = add_user(self.rt, name, role=role, functions=functions or (),
                                            actor="arena")
        return self.tokens[name]

    def approver(self, name: str, channel: str = "api") -> Approver:
        self.user(name)
        row = self.rt.store.users.get(name)
        assert row is not None
        return Approver(name=row["name"], role=row["role"], functions=tuple(row["functions"]),
                        channel=channel)  # type: ignore[arg-type]

    def answer(self, approval: ApprovalRow | str, reply: Answer, *, by: str,
               channel: str = "api", plan_hash: str | None = None,
               apply: bool = True) -> AnswerResult:
        """Answer as the registered user ``by``; with ``apply`` a worker applies it."""
        approval_id = approval if isinstance(approval, str) else approval.id
        result = self.rt.approvals.answer(approval_id, reply, by=self.approver(by, channel),
                                          plan_hash=plan_hash)
        if apply and result.status != "proposed":
            Worker(self.rt).apply(result.decision_id)
        return result

    def approve_all(self, decision_id: str, *, reject: Sequence[str] = (),
                    reason: str = "not what the playbook does") -> None:
        """Answer every pending request of the decision as the function's first approver:
        approve, or reject the functions named; then let a worker apply."""
        for _ in range(4):
            waiting = self.pending(decision_id)
            if not waiting:
                break
            for function, row in waiting.items():
                reply = Reject(reason=reason) if function in reject else Approve()
                self.answer(row, reply, by=APPROVERS[function][0], apply=False)
            self.work()

    # ------------------------------------------------------------------ channels

    @contextmanager
    def service(self) -> Iterator[Http]:
        """The HTTP service (API, HITL, web inbox, chat) on this arena's files, in
        process; its worker is off: ``work()`` applies what it records."""
        from fastapi.testclient import TestClient

        from decisionops.agent.api import create_app

        settings = self.settings
        app = create_app(settings, service=_IsolatedService(
            worker_interval_seconds=0, session_secret="adversarial-session-secret-0123"),
            runtime_factory=lambda: Runtime(settings, actor="api:arena"))
        with TestClient(app, raise_server_exceptions=False) as client:
            yield Http(client, self)

    def cli(self, *args: str, env: Mapping[str, str] | None = None
            ) -> subprocess.CompletedProcess[str]:
        """The real ``decisionops`` command on this arena's files (a subprocess)."""
        clean = {k: v for k, v in os.environ.items()
                 if not k.startswith("DECISIONOPS_") or k == "DECISIONOPS_FORBID_REAL_LLM"}
        clean.update({"DECISIONOPS_HOME": str(self.home), "PYTHONPATH": str(REPO),
                      "DECISIONOPS_TOOL_BACKOFF_SECONDS": "0.01", "NO_COLOR": "1",
                      "COLUMNS": "200", **self.env, **(env or {})})
        return subprocess.run([sys.executable, "-m", "decisionops.agent.cli", *args], cwd=self.folder,
                              env=clean, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
