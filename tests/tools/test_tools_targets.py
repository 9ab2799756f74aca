"""Targets: the arguments that name what a call acts on, declared by every tool.

An approval binds them (the approval service refuses an edit that changes one), so each
must be a real parameter, every tool with effects must have one, and every argument
that names an entity or record must be one.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from agent.models import Risk
from agent.ports import ToolSpec
from tools._base import EntityId, ToolArgs, ToolDefinition
from tools.registry import ToolRegistry

TARGETS = {
    "crm.get_account": ("account_id",),
    "crm.create_retention_offer": ("account_id",),
    "crm.withdraw_offer": ("offer_id",),
    "crm.create_task": ("account_id",),
    "crm.cancel_task": ("task_id",),
    "support.open_ticket": ("account_id",),
    "support.close_ticket": ("ticket_id",),
    "finance.issue_credit": ("account_id", "currency"),
    "finance.void_credit": ("credit_id",),
    "erp.get_inventory": ("sku",),
    "erp.create_stock_transfer": ("sku", "from_site", "to_site"),
    "erp.cancel_stock_transfer": ("transfer_id",),
    "erp.create_purchase_order": ("sku", "site"),
    "erp.cancel_purchase_order": ("po_id",),
    "maintenance.get_asset": ("asset_id",),
    "maintenance.create_work_order": ("asset_id",),
    "maintenance.cancel_work_order": ("work_order_id",),
    "operations.schedule_downtime": ("asset_id",),
    "operations.cancel_downtime": ("downtime_id",),
    "notify.send": ("channel", "to"),
}

_ENTITY_ID_PATTERN = TypeAdapter(EntityId).json_schema()["pattern"]


def test_every_tool_declares_its_targets(registry: ToolRegistry) -> None:
    assert {spec.name: spec.targets for spec in registry.specs()} == TARGETS


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_targets_are_real_parameters(registry: ToolRegistry, name: str) -> None:
    spec = registry.spec(name)
    properties = spec.parameters["properties"]
    assert set(spec.targets) <= set(properties)
    assert len(set(spec.targets)) == len(spec.targets)
    if spec.side_effects:
        assert spec.targets, f"{name} changes something but names no target"
    # Every argument that holds an entity or record id is a target.
    ids = {field for field, schema in properties.items()
           if schema.get("pattern") == _ENTITY_ID_PATTERN}
    assert ids <= set(spec.targets)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_targets_stay_out_of_the_model_visible_schema(registry: ToolRegistry,
                                                      name: str) -> None:
    """The schema goes to LLM endpoints in strict mode: no custom keys in it."""
    tool = registry.tool(name)
    assert registry.spec(name).parameters == tool.arguments_model.model_json_schema()
    assert "targets" not in repr(tool.tool_call_schema.model_json_schema())
    assert tool.metadata is not None
    assert tuple(tool.metadata["targets"]) == TARGETS[name]


class _Args(ToolArgs):
    account_id: EntityId
    note: str


def _effect(_ctx: Any, _args: Any) -> dict[str, Any]:
    return {}


def test_a_definition_with_an_unknown_target_is_refused() -> None:
    with pytest.raises(ValueError, match=r"demo\.act.*'acount_id'"):
        ToolDefinition("demo.act", "Act.", _Args, "sales", Risk.LOW, effect=_effect,
                       targets=("acount_id",))
    defined = ToolDefinition("demo.act", "Act.", _Args, "sales", Risk.LOW, effect=_effect,
                             targets=("account_id",))
    assert defined.targets == ("account_id",)


def test_a_spec_whose_target_is_no_parameter_is_refused() -> None:
    fields: dict[str, Any] = dict(
        name="demo.act", function="sales", description="Act.", risk=Risk.LOW,
        side_effects=True, parameters=_Args.model_json_schema())
    assert ToolSpec(**fields, targets=("account_id",)).targets == ("account_id",)
    with pytest.raises(ValidationError, match="'amount' is not a parameter"):
        ToolSpec(**fields, targets=("account_id", "amount"))
