"""The container deployment, checked statically (this suite runs where no Docker
daemon is): the Dockerfile builds a slim image that runs as a non-root user with a
health check; docker-compose.yml runs PostgreSQL, a migration step, two workers
(``decisionops run``) and ``decisionops serve``, each with a health check, wired by
environment variables that ``.env.example`` documents and the settings know."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from decisionops.agent.api import ServiceSettings
from decisionops.agent.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _env_example() -> dict[str, str]:
    """Variables set, and optional ones shown commented out (``# NAME=value``)."""
    pairs = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.match(r"^(?:# )?([A-Z][A-Z0-9_]*)=(.*)$", line.strip())
        if match:
            pairs[match[1]] = match[2].strip()
    return pairs


def _instructions() -> list[tuple[str, str]]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            word, _, rest = line.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_dockerfile_is_slim_multistage_and_runs_as_a_non_root_user() -> None:
    steps = _instructions()
    froms = [rest for word, rest in steps if word == "FROM"]
    assert len(froms) >= 2 and all(re.match(r"python:3\.11(\.\d+)?-slim", f) for f in froms)
    final = steps[max(i for i, (word, _) in enumerate(steps) if word == "FROM"):]
    users = [rest for word, rest in final if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert any(word == "HEALTHCHECK" and "/healthz" in rest for word, rest in final)
    assert ("ENTRYPOINT", '["decisionops"]') in final
    for word, rest in steps:
        if word == "RUN" and "pip install" in rest:
            assert "--no-cache-dir" in rest, rest
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "tests"} <= set(ignored)


def test_compose_runs_postgres_two_workers_and_serve_with_health_checks(
        compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "migrate", "worker", "serve"} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    worker, serve = services["worker"], services["serve"]
    assert worker["command"][0] == "run" and worker["deploy"]["replicas"] == 2
    assert serve["command"][:1] == ["serve"] and "--no-worker" in serve["command"]
    assert "0.0.0.0" in serve["command"]
    assert "/readyz" in " ".join(serve["healthcheck"]["test"])
    assert "healthcheck" in worker
    for name in ("worker", "serve"):
        needs = services[name]["depends_on"]
        assert needs["postgres"]["condition"] == "service_healthy"
        assert needs["migrate"]["condition"] == "service_completed_successfully"
        assert services[name].get("user") in (None, "decisionops")
    assert services["migrate"]["command"][:2] == ["db", "upgrade"] or \
        "db upgrade" in " ".join(services["migrate"]["command"])


def test_every_variable_compose_reads_is_documented(compose: dict[str, Any]) -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    documented = _env_example()
    assert used and used <= set(documented), used - set(documented)
    environment = compose["x-decisionops"]["environment"]
    assert "@postgres:5432/" in environment["DECISIONOPS_DATABASE_URL"]
    assert environment["DECISIONOPS_ENVIRONMENT"] == "production"


def test_every_decisionops_container_shares_one_reference_enterprise(
        compose: dict[str, Any]) -> None:
    """The reference enterprise runs on SQLite: one file on a volume every DecisionOps
    container mounts (a PostgreSQL URL gave each process an enterprise of its own)."""
    url = compose["x-decisionops"]["environment"]["DECISIONOPS_ENTERPRISE_URL"]
    assert url.startswith("sqlite:////")
    folder = str(Path(url.removeprefix("sqlite:///")).parent)
    mounts = compose["x-decisionops"]["volumes"]
    assert any(m.split(":")[1] == folder and m.split(":")[0] in compose["volumes"]
               for m in mounts), mounts
    for name in ("migrate", "worker", "serve"):  # the anchor's volumes, not their own
        assert "volumes" not in compose["services"][name] or \
            compose["services"][name]["volumes"] == mounts


def test_every_decisionops_variable_in_the_example_is_a_setting() -> None:
    known = {f"DECISIONOPS_{name.upper()}" for name in
             [*Settings.model_fields, *ServiceSettings.model_fields]}
    names = [k for k in _env_example() if k.startswith("DECISIONOPS_")]
    assert names and set(names) <= known, set(names) - known
    # Documented with a comment, and no real secret in the example.
    text = (ROOT / ".env.example").read_text()
    assert "sk-" not in text
    assert _env_example()["POSTGRES_PASSWORD"] == ""  # filled in by the user, never shipped


@pytest.mark.slow
@pytest.mark.postgres
def test_the_compose_commands_run_the_demo_on_postgresql(
        compose: dict[str, Any], pg_url: str, tmp_path: Path) -> None:
    """What compose runs, without Docker: the migrate service's command, then ``demo``
    as the README says to run it inside the deployment, with the compose wiring
    (production, PostgreSQL for the store and the checkpointer, the reference enterprise
    on one SQLite file)."""
    import os
    import subprocess
    import sys


    enterprise = f"sqlite:///{tmp_path / 'shared' / 'enterprise.sqlite'}"
    wiring = compose["x-decisionops"]["environment"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DECISIONOPS_")}
    env.update({"DECISIONOPS_ENVIRONMENT": wiring["DECISIONOPS_ENVIRONMENT"],
                "DECISIONOPS_DATABASE_URL": pg_url, "DECISIONOPS_ENTERPRISE_URL": enterprise,
                "DECISIONOPS_HOME": str(tmp_path / "home"),
                "DECISIONOPS_SESSION_SECRET": "test-session-secret",
                "DECISIONOPS_FORBID_REAL_LLM": "1",
                "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    [script] = compose["services"]["migrate"]["command"]
    migrate = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True,
                             timeout=120, cwd=tmp_path)
    assert migrate.returncode == 0, migrate.stderr
    demo = subprocess.run(["decisionops", "demo"], capture_output=True, text=True,
                          env={**env, "DECISIONOPS_CLI_ANSWERS": "true", "COLUMNS": "200"},
                          timeout=300, cwd=tmp_path)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr
    assert re.search(r"ledger: \d+ entries, verifies", demo.stdout)
    assert (tmp_path / "shared" / "enterprise.sqlite").exists()  # the one the URL names
