"""Any langchain-core tool as one of ours: its JSON schema is the spec's, validated the
same way, governed by the same allow-lists and limits; a declared ``idempotency_key``
parameter gets the executor's key. Entry points of the ``decisionops.tools`` group."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from langchain_core.tools import BaseToolkit, StructuredTool, tool
from pydantic import BaseModel, Field

from decisionops.agent.errors import ConfigError, ToolArgumentsError, ToolCallError
from decisionops.agent.guard import check_step
from decisionops.agent.models import Risk, Step
from decisionops.agent.policy import Policies
from decisionops.tools._foreign import ForeignTool
from decisionops.tools._plugins import entry_point_tools
from decisionops.tools.registry import ToolRegistry

CALLS: list[dict[str, Any]] = []


class RefundArgs(BaseModel):
    order_id: str = Field(min_length=3, description="The order to refund.")
    amount: float = Field(gt=0)
    idempotency_key: str


def _refund(order_id: str, amount: float, idempotency_key: str) -> dict[str, Any]:
    CALLS.append({"order_id": order_id, "amount": amount, "key": idempotency_key})
    return {"refund_id": f"R-{idempotency_key[-4:]}", "amount": amount}


def refund_tool() -> StructuredTool:
    return StructuredTool.from_function(
        _refund, name="shop.refund", description="Refund an order.", args_schema=RefundArgs,
        metadata={"function": "finance", "risk": "high", "targets": ["order_id"]})


@tool("shop.lookup")
def lookup(order_id: str) -> str:
    """Look an order up."""
    return f"order {order_id} is paid"


lookup.metadata = {"function": "finance", "side_effects": False, "risk": "low"}


POLICIES = Policies.model_validate({"functions": {
    "finance": {"approvers": ["dana@finance"], "tools": ["shop.refund"],
                "limits": {"shop.refund": {"amount": {"max": 50}}}},
    "sales": {"approvers": ["raj@sales"], "tools": ["shop.lookup"]}}})


@pytest.fixture(autouse=True)
def _clear() -> None:
    CALLS.clear()


def registry() -> ToolRegistry:
    return ToolRegistry([ForeignTool(refund_tool(), source="test"),
                         ForeignTool(lookup, source="test")])


def test_schema_and_governance_come_from_the_tool() -> None:
    reg = registry()
    spec = reg.spec("shop.refund")
    assert spec.function == "finance" and spec.risk == Risk.HIGH and spec.side_effects
    assert spec.targets == ("order_id",)
    assert set(spec.parameters["properties"]) == {"order_id", "amount"}  # no key
    assert spec.parameters["required"] == ["order_id", "amount"]
    read = reg.spec("shop.lookup")
    assert not read.side_effects and read.risk == Risk.LOW
    assert reg.source_of("shop.refund") == "test"


def test_validation_names_the_field_and_refuses_unknown_fields() -> None:
    reg = registry()
    with pytest.raises(ToolArgumentsError) as missing:
        reg.validate("shop.refund", {"amount": 3})
    assert missing.value.field == "order_id"
    with pytest.raises(ToolArgumentsError) as wrong:
        reg.validate("shop.refund", {"order_id": "O-1", "amount": "lots"})
    assert wrong.value.field == "amount"
    with pytest.raises(ToolArgumentsError) as extra:
        reg.validate("shop.refund", {"order_id": "O-1", "amount": 3, "note": "x"})
    assert extra.value.field == "note"
    with pytest.raises(ToolArgumentsError) as key:  # the key is the executor's, not a model's
        reg.validate("shop.refund", {"order_id": "O-1", "amount": 3, "idempotency_key": "k"})
    assert key.value.field == "idempotency_key"


def test_the_guard_governs_foreign_tools_with_allow_lists_and_limits() -> None:
    reg = registry()
    step = Step(id="s1", function="finance", tool="shop.refund",
                arguments={"order_id": "O-1", "amount": 80})
    _, problems = check_step(step, reg, POLICIES)
    assert problems == ["steps.s1.arguments.amount: 80 exceeds the maximum 50"] or (
        len(problems) == 1 and "amount" in problems[0])
    _, problems = check_step(step.model_copy(update={"arguments": {"order_id": "O-1",
                                                                     "amount": 20}}),
                              reg, POLICIES)
    assert problems == []
    _, problems = check_step(Step(id="s2", function="finance", tool="shop.lookup",
                                  arguments={"order_id": "O-1"}), reg, POLICIES)
    assert "not allowed for finance" in problems[0]


def test_a_declared_key_is_filled_and_the_result_is_the_receipt() -> None:
    reg = registry()
    receipt = reg.call("shop.refund", {"order_id": "O-1", "amount": 20}, idempotency_key="idem-1234")
    assert CALLS == [{"order_id": "O-1", "amount": 20, "key": "idem-1234"}]
    assert receipt.result == {"refund_id": "R-1234", "amount": 20}
    assert receipt.idempotency_key == "idem-1234" and not receipt.replayed
    read = reg.call("shop.lookup", {"order_id": "O-9"}, idempotency_key="idem-1")
    assert read.result == {"content": "order O-9 is paid"}  # no key parameter: none passed
    assert reg.recall("shop.lookup", idempotency_key="idem-1") is None
    with pytest.raises(ToolCallError):  # a foreign tool keeps no record to ask
        reg.recall("shop.refund", idempotency_key="idem-1234")


def test_failures_are_classified() -> None:
    def down(order_id: str) -> str:
        raise ConnectionRefusedError("no route")

    def broken(order_id: str) -> str:
        raise ValueError("bug")

    reg = ToolRegistry([ForeignTool(StructuredTool.from_function(down, name="a.down",
                                                                 description="d"),
                                    source="t", defaults={"function": "sales"}),
                        ForeignTool(StructuredTool.from_function(broken, name="a.broken",
                                                                 description="b"),
                                    source="t", defaults={"function": "sales"})])
    with pytest.raises(ToolCallError) as retry:
        reg.call("a.down", {"order_id": "x"}, idempotency_key="k")
    assert retry.value.retryable
    with pytest.raises(ToolCallError) as final:
        reg.call("a.broken", {"order_id": "x"}, idempotency_key="k")
    assert not final.value.retryable


def test_a_keyless_tool_that_may_have_acted_is_not_retried() -> None:
    # No idempotency_key parameter: a retry after a timeout or a reset (the call may have
    # reached the tool and acted) could act twice; only a call that never left is retried.
    acted: list[str] = []

    def slow(order_id: str) -> str:
        acted.append(order_id)
        raise TimeoutError("read timed out")

    def refused(order_id: str) -> str:
        raise ConnectionRefusedError("no route")

    def peek(order_id: str) -> str:
        raise TimeoutError("read timed out")

    reg = ToolRegistry([
        ForeignTool(StructuredTool.from_function(slow, name="a.slow", description="s"),
                    source="t", defaults={"function": "sales"}),
        ForeignTool(StructuredTool.from_function(refused, name="a.refused", description="r"),
                    source="t", defaults={"function": "sales"}),
        ForeignTool(StructuredTool.from_function(peek, name="a.peek", description="p"),
                    source="t", defaults={"function": "sales", "side_effects": False})])
    with pytest.raises(ToolCallError) as unknown:
        reg.call("a.slow", {"order_id": "x"}, idempotency_key="k")
    assert not unknown.value.retryable and acted == ["x"]
    with pytest.raises(ToolCallError) as never_sent:
        reg.call("a.refused", {"order_id": "x"}, idempotency_key="k")
    assert never_sent.value.retryable
    with pytest.raises(ToolCallError) as read:
        reg.call("a.peek", {"order_id": "x"}, idempotency_key="k")
    assert read.value.retryable  # a read repeats nothing


async def _only_async(order_id: str) -> dict[str, str]:
    return {"order_id": order_id, "via": "async"}


def test_async_only_tools_are_called() -> None:
    reg = ToolRegistry([ForeignTool(StructuredTool.from_function(
        coroutine=_only_async, name="shop.async_read", description="a"),
        source="t", defaults={"function": "sales"})])
    assert reg.call("shop.async_read", {"order_id": "O"}, idempotency_key="k").result == {
        "order_id": "O", "via": "async"}


@pytest.mark.parametrize(("name", "metadata", "key"), [
    ("Shop.Refund", {"function": "finance"}, "name"),
    ("refund", {"function": "finance"}, "name"),
    ("shop.refund", {}, "function"),
    ("shop.refund", {"function": "finance", "risk": "extreme"}, None),
    ("shop.refund", {"function": "finance", "targets": ["nope"]}, None),
])
def test_bad_tools_are_refused_naming_the_problem(name: str, metadata: dict[str, Any],
                                                  key: str | None) -> None:
    bad = StructuredTool.from_function(_refund, name=name, description="r",
                                       args_schema=RefundArgs, metadata=metadata)
    with pytest.raises(ConfigError) as exc:
        ForeignTool(bad, source="entry_point:shop")
    assert name in exc.value.message and "entry_point:shop" in exc.value.message
    if key:
        assert exc.value.details.get("field") == key or key in exc.value.message


# ----------------------------------------------------------------- entry points

def _install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, source: str,
             entry_points: str) -> None:
    """A distribution installed into a folder on ``sys.path``: its code and dist-info."""
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    info = tmp_path / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    monkeypatch.syspath_prepend(str(tmp_path))


PLUGIN = """
from langchain_core.tools import BaseToolkit, StructuredTool, tool

def _open(account: str, summary: str, idempotency_key: str) -> dict:
    return {"case": account + ":" + idempotency_key}

open_case = StructuredTool.from_function(_open, name="desk.open_case", description="Open a case.",
    metadata={"function": "support", "risk": "low", "targets": ["account"]})

@tool("desk.find_case")
def find_case(account: str) -> str:
    \"\"\"Find a case.\"\"\"
    return "none"

find_case.metadata = {"function": "support", "side_effects": False}

class Desk(BaseToolkit):
    def get_tools(self):
        return [open_case, find_case]

def toolkit():
    return Desk()

single = find_case
"""


def test_entry_points_give_tools_and_toolkits(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _install(tmp_path, monkeypatch, "acme_desk", PLUGIN, """
        [decisionops.tools]
        desk = acme_desk:toolkit
        """)
    found = entry_point_tools()
    mine = {t.name: t for t in found if t.source == "entry_point:desk"}
    assert set(mine) == {"desk.open_case", "desk.find_case"}
    reg = ToolRegistry(found)
    assert reg.spec("desk.open_case").targets == ("account",)
    receipt = reg.call("desk.open_case", {"account": "A-1", "summary": "s"},
                       idempotency_key="idem-9")
    assert receipt.result == {"case": "A-1:idem-9"}


def test_a_broken_entry_point_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _install(tmp_path, monkeypatch, "acme_bad", "value = 42\n", """
        [decisionops.tools]
        bad = acme_bad:value
        missing = acme_bad:nothing
        """)
    with pytest.raises(ConfigError) as exc:
        entry_point_tools()
    assert "'bad'" in exc.value.message and "acme_bad:value" in exc.value.message


class _Kit(BaseToolkit):
    def get_tools(self) -> list[Any]:
        return [lookup]


def test_toolkit_objects_are_accepted_directly() -> None:
    from importlib.metadata import EntryPoint

    point = EntryPoint(name="kit", value=f"{__name__}:_Kit", group="decisionops.tools")
    assert [t.name for t in entry_point_tools([point])] == ["shop.lookup"]


@pytest.mark.parametrize(("metadata", "says"), [
    ({"function": "risk", "targets": ["nope"]}, "metadata: cards.x: target 'nope' is not a parameter"),
    ({"function": "risk", "risk": "huge"}, "metadata: 'huge' is not a valid Risk"),
])
def test_bad_plugin_metadata_is_said_in_our_words(metadata: dict, says: str) -> None:
    # Found in a black-box trial: "1 validation error for ToolSpec … [type=value_error,
    # input_value={…}] For further information visit https://errors.pydantic.dev/…".
    from langchain_core.tools import StructuredTool

    from decisionops.agent.errors import ConfigError
    from decisionops.tools._foreign import ForeignTool

    def _x(card_id: str, idempotency_key: str) -> dict:
        return {}

    tool = StructuredTool.from_function(_x, name="cards.x", description="x", metadata=metadata)
    with pytest.raises(ConfigError) as refused:
        ForeignTool(tool, source="entry_point:cards")
    assert refused.value.message == f"tool 'cards.x' (entry_point:cards): {says}"
    assert "pydantic" not in refused.value.message
