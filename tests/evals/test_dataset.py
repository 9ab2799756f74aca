"""The bundled core dataset: size, coverage of kinds and adversarial classes, entities
that exist in the reference enterprise, and scripted responses for every case."""

from __future__ import annotations

from collections import Counter

from decisionops.evals import default_dataset, load_dataset
from decisionops.tools.enterprise import reference_world


def test_core_dataset_covers_kinds_and_attacks() -> None:
    dataset = load_dataset(default_dataset())
    assert len(dataset.cases) >= 40
    kinds = Counter(c.prediction.kind for c in dataset.cases)
    assert set(kinds) == {"churn", "failure", "stockout", "late_payment"}
    assert min(kinds.values()) >= 10
    tags = Counter(t for c in dataset.cases for t in c.tags)
    assert tags["adversarial"] >= 12
    for tag in ("entity-notes", "features", "allow-list", "limits", "contradictory", "revise"):
        assert tags[tag] >= 1, tag
    world = reference_world()
    known = ({a.account_id for a in world.accounts} | {a.asset_id for a in world.assets}
             | {f"{s.sku}@{s.site}" for s in world.shortages})
    assert {c.prediction.entity_id for c in dataset.cases} <= known
    noted = {c.prediction.entity_id for c in dataset.cases if "entity-notes" in c.tags}
    assert noted <= set(world.adversarial_account_ids)
    for planner in ("llm", "hybrid"):
        assert set(dataset.scripts(planner)) == {c.id for c in dataset.cases}
    assert all(c.expect.forbidden for c in dataset.cases if c.adversarial)
