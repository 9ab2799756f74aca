"""``decisionops ingest`` of a model server's response sent twice (the README's MLflow
example): the second time every row is already stored, with no word of other content;
a response that does say something else under the same ids is still said."""

from __future__ import annotations

import json

from tests.cli.conftest import Cli

CUSTOMERS = "customer_id,tenure,arr\nACC-10004,3,40000\nACC-10006,30,900\n"
RESPONSE = {"predictions": [[0.09, 0.91], [0.8, 0.2]]}
JOIN = ("--inputs", "customers.csv", "--entity-column", "customer_id", "--value-column", "arr",
        "--kind", "churn", "--model", "churn-sk", "--entity-type", "account")



def test_the_same_response_sent_again_is_already_stored_and_nothing_else(cli: Cli) -> None:
    (cli.cwd / "customers.csv").write_text(CUSTOMERS)
    (cli.cwd / "response.json").write_text(json.dumps(RESPONSE))
    assert cli.json("ingest", "response.json", *JOIN)["ingested"] == 2
    again = cli("ingest", "response.json", *JOIN)
    assert "2 already stored" in again.stdout
    assert "other content" not in again.stderr + again.stdout
    report = cli.json("ingest", "response.json", *JOIN)
    assert (report["already_stored"], report["already_stored_changed"]) == (2, 0)


def test_a_response_that_says_something_else_under_the_same_ids_is_said(cli: Cli) -> None:
    """A KServe V2 response id names its predictions: a second response under it with
    another score is a change the stored predictions do not take."""
    def v2(scores: list[float]) -> str:
        return json.dumps({"model_name": "churn-gbm", "id": "r-1", "outputs": [
            {"name": "p", "shape": [2], "datatype": "FP32", "data": scores}]})

    (cli.cwd / "customers.csv").write_text(CUSTOMERS)
    (cli.cwd / "infer.json").write_text(v2([0.9, 0.3]))
    join = ("--inputs", "customers.csv", "--entity-column", "customer_id", "--kind", "churn",
            "--entity-type", "account")
    assert cli.json("ingest", "infer.json", *join)["ingested"] == 2
    assert cli.json("ingest", "infer.json", *join)["already_stored_changed"] == 0
    (cli.cwd / "infer.json").write_text(v2([0.9, 0.5]))
    report = cli.json("ingest", "infer.json", *join)
    assert (report["already_stored"], report["already_stored_changed"]) == (2, 1)
