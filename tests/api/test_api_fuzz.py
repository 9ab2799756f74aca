"""Property-based fuzz of the OpenAPI spec (catalog B1): Schemathesis generates requests
for every operation (valid and invalid bodies, odd parameters and headers) and sends
them to the app in process (ASGI, the app's lifespan running), authenticated as a role
that reaches each route. No response may be a 5xx or carry a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from tests.api.conftest import Service, serve

EXAMPLES = 20


@pytest.fixture(scope="module")
def fuzz_svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with serve(Path(tmp_path_factory.mktemp("fuzz")) / "home") as service:
        yield service


def _user(path: str, method: str) -> str:
    if path.startswith(("/v1/predictions", "/v1/outcomes")):
        return "feeder"
    if path.startswith("/v1/approvals/") and method == "POST":
        return "dana"
    return "olga"


def test_no_server_errors(fuzz_svc: Service) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_svc.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    seen: dict[str, int] = {}

    for operation in operations:
        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            response = case.call(headers=fuzz_svc.auth(_user(case.path, case.method.upper())))
            key = f"{case.method.upper()} {case.path}"
            seen[key] = seen.get(key, 0) + 1
            assert response.status_code < 500, (key, response.text[:500])
            assert "Traceback" not in response.text

        run()
    assert len(seen) == len(operations)
    assert sum(seen.values()) >= len(operations) * 5
