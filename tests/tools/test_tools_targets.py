"""Targets: the arguments that name what a call acts on, declared by every tool.

An approval binds them (the approval service refuses an edit that changes one), so each
must be a real parameter, every tool with effects must have one, and every argument
that names an entity or record must be one.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from decisionops.agent.errors import ConfigError, ToolCallError
from decisionops.agent.models import Risk
from decisionops.agent.ports import ToolSpec
from decisionops.tools._base import EntityId, ToolArgs, ToolDefinition, build_tool, looked_up_by
from decisionops.tools.enterprise import Enterprise
from decisionops.tools.registry import ToolRegistry

TARGETS = {
    "crm.get_account": ("account_id",),
    "crm.preview_offer": ("account_id",),
    "finance.preview_credit": ("account_id", "currency"),
    "erp.preview_transfer": ("sku", "from_site", "to_site"),
    "operations.preview_downtime": ("asset_id",),
    "crm.create_retention_offer": ("account_id",),
    "crm.withdraw_offer": ("offer_id",),
    "crm.create_task": ("account_id",),
    "crm.cancel_task": ("task_id",),
    "support.open_ticket": ("account_id",),
    "support.close_ticket": ("ticket_id",),
    "finance.issue_credit": ("account_id", "currency"),
    "finance.void_credit": ("credit_id",),
    "erp.get_inventory": ("sku",),
    "erp.get_stock": ("sku", "site"),
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


# --------------------------------------------------------------------------- lookups

LOOKUPS = {
    "crm.create_retention_offer": ("crm.get_account", {"account_id": "account_id"}),
    "crm.create_task": ("crm.get_account", {"account_id": "account_id"}),
    "support.open_ticket": ("crm.get_account", {"account_id": "account_id"}),
    "finance.issue_credit": ("crm.get_account", {"account_id": "account_id"}),
    "maintenance.create_work_order": ("maintenance.get_asset", {"asset_id": "asset_id"}),
    "operations.schedule_downtime": ("maintenance.get_asset", {"asset_id": "asset_id"}),
    "erp.create_purchase_order": ("erp.get_inventory", {"sku": "sku"}),
    "erp.create_stock_transfer": [("erp.get_inventory", {"sku": "sku"}),
                                  ("erp.get_stock", {"sku": "sku", "site": "from_site"})],
}


def test_tools_that_act_on_an_entity_declare_how_to_look_it_up(registry: ToolRegistry
                                                                 ) -> None:
    declared = {spec.name: [(lk.tool, lk.arguments) for lk in spec.lookups]
                for spec in registry.specs() if spec.lookups}
    assert declared == {name: lookup if isinstance(lookup, list) else [lookup]
                        for name, lookup in LOOKUPS.items()}
    for name in LOOKUPS:
        for lookup in registry.spec(name).lookups:
            assert not registry.spec(lookup.tool).side_effects
            # The lookup reads a target of the call: the entity the approval binds.
            assert set(lookup.arguments.values()) <= set(registry.spec(name).targets)


def test_a_lookup_finds_a_known_entity_and_names_an_unknown_one(registry: ToolRegistry
                                                                ) -> None:
    spec = registry.spec("crm.create_task")
    (lookup,) = spec.lookups
    known = lookup.arguments_for({"account_id": "ACC-10004", "subject": "s"})
    assert registry.call(lookup.tool, known, idempotency_key="k").result["account_id"] == \
        "ACC-10004"
    with pytest.raises(ToolCallError, match="unknown account 'ACC-404'") as err:
        registry.call(lookup.tool, lookup.arguments_for({"account_id": "ACC-404"}),
                      idempotency_key="k")
    assert err.value.retryable is False
    assert lookup.arguments_for({"subject": "no account"}) is None


def test_a_lookup_must_read_a_field_and_be_a_registered_read(registry: ToolRegistry,
                                                             enterprise: Enterprise) -> None:
    with pytest.raises(ValueError, match=r"lookup crm\.get_account reads 'acount_id'"):
        ToolDefinition("demo.act", "Act.", _Args, "sales", Risk.LOW, effect=_effect,
                       targets=("account_id",),
                       lookups=(looked_up_by("crm.get_account", account_id="acount_id"),))
    writes = ToolDefinition("demo.act", "Act.", _Args, "sales", Risk.LOW, effect=_effect,
                            targets=("account_id",),
                            lookups=(looked_up_by("crm.create_task", account_id="account_id"),))
    tools = [*registry.langchain_tools(), build_tool(enterprise, writes)]
    with pytest.raises(ConfigError, match="not a registered read-only tool"):
        ToolRegistry(tools)
