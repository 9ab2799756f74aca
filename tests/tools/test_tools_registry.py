"""The registry's catalogue: specs, schemas without the key, OpenAI names, LangChain use."""

from __future__ import annotations

import pytest
from langchain_core.messages import ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from decisionops.agent.errors import ConfigError, NotFoundError
from decisionops.agent.models import Risk
from decisionops.agent.ports import ToolPort, ToolReceipt
from decisionops.tools import crm
from decisionops.tools.enterprise import Enterprise
from decisionops.tools.registry import ToolRegistry
from tests.tools.tools_cases import READS, VALID

CATALOGUE = {
    # name: (function, risk, side_effects, compensating tool)
    "crm.get_account": ("sales", Risk.LOW, False, None),
    "crm.preview_offer": ("sales", Risk.LOW, False, None),
    "finance.preview_credit": ("finance", Risk.LOW, False, None),
    "erp.preview_transfer": ("supply_chain", Risk.LOW, False, None),
    "operations.preview_downtime": ("operations", Risk.LOW, False, None),
    "crm.create_retention_offer": ("sales", Risk.MEDIUM, True, "crm.withdraw_offer"),
    "crm.withdraw_offer": ("sales", Risk.LOW, True, None),
    "crm.create_task": ("sales", Risk.LOW, True, "crm.cancel_task"),
    "crm.cancel_task": ("sales", Risk.LOW, True, None),
    "support.open_ticket": ("support", Risk.LOW, True, "support.close_ticket"),
    "support.close_ticket": ("support", Risk.LOW, True, None),
    "finance.issue_credit": ("finance", Risk.MEDIUM, True, "finance.void_credit"),
    "finance.void_credit": ("finance", Risk.LOW, True, None),
    "erp.get_inventory": ("supply_chain", Risk.LOW, False, None),
    "erp.get_stock": ("supply_chain", Risk.LOW, False, None),
    "erp.create_stock_transfer": ("supply_chain", Risk.MEDIUM, True, "erp.cancel_stock_transfer"),
    "erp.cancel_stock_transfer": ("supply_chain", Risk.LOW, True, None),
    "erp.create_purchase_order": ("supply_chain", Risk.MEDIUM, True, "erp.cancel_purchase_order"),
    "erp.cancel_purchase_order": ("supply_chain", Risk.LOW, True, None),
    "maintenance.get_asset": ("maintenance", Risk.LOW, False, None),
    "maintenance.create_work_order": ("maintenance", Risk.MEDIUM, True,
                                      "maintenance.cancel_work_order"),
    "maintenance.cancel_work_order": ("maintenance", Risk.LOW, True, None),
    "operations.schedule_downtime": ("operations", Risk.MEDIUM, True, "operations.cancel_downtime"),
    "operations.cancel_downtime": ("operations", Risk.LOW, True, None),
    "notify.send": ("operations", Risk.LOW, True, None),
}


def test_catalogue(registry: ToolRegistry) -> None:
    assert isinstance(registry, ToolPort)
    found = {s.name: (s.function, s.risk, s.side_effects,
                      s.compensation.tool if s.compensation else None) for s in registry.specs()}
    assert found == CATALOGUE
    assert [s.name for s in registry.specs()] == sorted(CATALOGUE)


def test_port_contract_call_then_recall(registry: ToolRegistry) -> None:
    """``ToolPort``'s contract: one effect per key, and the tool's record of it on recall
    (the executor's reconciliation after a call that failed once it committed)."""
    assert callable(getattr(ToolPort, "recall", None)) and isinstance(registry, ToolPort)
    port: ToolPort = registry
    name = "crm.create_task"
    assert port.recall(name, idempotency_key="k") is None  # no call: no effect
    first = port.call(name, VALID[name], idempotency_key="k")
    replayed = port.call(name, VALID[name], idempotency_key="k")
    recalled = port.recall(name, idempotency_key="k")
    assert not first.replayed and replayed.replayed
    assert recalled == replayed == first.model_copy(update={"replayed": True})
    read = "crm.get_account"
    port.call(read, READS[read], idempotency_key="r")
    assert port.recall(read, idempotency_key="r") is None  # a read leaves no record
    with pytest.raises(NotFoundError):
        port.recall("crm.refund", idempotency_key="k")


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_schemas_are_strict_and_never_show_the_key(registry: ToolRegistry, name: str) -> None:
    spec = registry.spec(name)
    assert spec.parameters["type"] == "object"
    assert spec.parameters["additionalProperties"] is False
    assert "idempotency_key" not in spec.parameters["properties"]
    assert spec.description

    tool = registry.tool(name)
    assert tool.metadata == {
        "function": spec.function, "risk": spec.risk.value, "side_effects": spec.side_effects,
        "compensation": spec.compensation.model_dump() if spec.compensation else None,
        "targets": list(spec.targets), "qualifiers": list(spec.qualifiers),
        "lookups": [lookup.model_dump() for lookup in spec.lookups],
        "preview": spec.preview.model_dump() if spec.preview else None}
    model_schema = tool.tool_call_schema.model_json_schema()  # what a model is shown
    assert set(model_schema["properties"]) == set(spec.parameters["properties"])
    assert "idempotency_key" in tool.args_schema.model_fields  # injected at call time
    assert "idempotency_key" not in convert_to_openai_tool(tool)["function"]["parameters"][
        "properties"]


def test_openai_names_map_both_ways(registry: ToolRegistry) -> None:
    assert registry.openai_name("finance.issue_credit") == "finance__issue_credit"
    assert registry.tool_name("finance__issue_credit") == "finance.issue_credit"
    entries = registry.openai_tools(["finance.issue_credit", "notify.send"])
    assert [e["function"]["name"] for e in entries] == ["finance__issue_credit", "notify__send"]
    assert entries[0]["function"]["parameters"] == registry.spec("finance.issue_credit").parameters
    assert len(registry.openai_tools()) == len(CATALOGUE)
    with pytest.raises(NotFoundError):
        registry.tool_name("finance__refund")
    with pytest.raises(NotFoundError):
        registry.openai_name("finance.refund")


def test_langchain_tool_call_returns_content_and_receipt(registry: ToolRegistry,
                                                         enterprise: Enterprise) -> None:
    """The LLM path: a model's tool call plus the executor's injected key."""
    tool = registry.tool("support.open_ticket")
    message = tool.invoke({"type": "tool_call", "id": "call_1", "name": tool.name,
                           "args": {**VALID["support.open_ticket"], "idempotency_key": "k"}})
    assert isinstance(message, ToolMessage)
    assert isinstance(message.artifact, ToolReceipt)
    assert message.artifact.result["ticket_id"] in message.content
    assert registry.call("support.open_ticket", VALID["support.open_ticket"],
                         idempotency_key="k").replayed
    assert len(enterprise.rows("tickets")) == 1


def test_langchain_tool_with_effects_requires_the_key(registry: ToolRegistry) -> None:
    with pytest.raises(ValueError, match="idempotency_key"):
        registry.tool("notify.send").invoke(VALID["notify.send"])
    read = registry.tool("crm.get_account").invoke(READS["crm.get_account"])
    assert read["account_id"] == "ACC-10004"


def test_langchain_tools_are_the_catalogue(registry: ToolRegistry) -> None:
    assert [t.name for t in registry.langchain_tools()] == sorted(CATALOGUE)


def test_a_tool_registered_twice_is_refused(enterprise: Enterprise) -> None:
    with pytest.raises(ConfigError, match="registered twice"):
        ToolRegistry([*crm.build_tools(enterprise), *crm.build_tools(enterprise)])


def test_a_tool_that_raises_says_why(enterprise: Enterprise) -> None:
    # Found in a black-box trial: a plugin's exception showed only its type, so its
    # author could not see why it failed.
    from langchain_core.tools import StructuredTool

    from decisionops.agent.errors import ToolCallError

    def _boom(card_id: str, idempotency_key: str) -> dict:
        raise RuntimeError("plugin exploded\n  on purpose")

    boom = StructuredTool.from_function(_boom, name="cards.boom", description="Boom",
                                        metadata={"function": "risk", "risk": "low"})
    from decisionops.tools._foreign import ForeignTool

    registry = ToolRegistry([ForeignTool(boom, source="entry_point:test")])
    with pytest.raises(ToolCallError) as failed:
        registry.call("cards.boom", {"card_id": "C-1"}, idempotency_key="k-1")
    assert failed.value.message == ("cards.boom failed unexpectedly (RuntimeError: plugin "
                                    "exploded on purpose)")
    assert not failed.value.retryable
