"""Write the reference world into an enterprise database.

``INSERT OR IGNORE`` row by row: seeding twice changes nothing, and seeding a database
the demo already acted on keeps its state (reserved stock, open orders).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Connection, Table

from decisionops.tools.enterprise import schema
from decisionops.tools.enterprise._catalog import CURRENCY, World

__all__ = ["seed_world"]


def _insert(conn: Connection, table: Table, rows: Iterable[Mapping[str, Any]]) -> int:
    rows = list(rows)
    if not rows:
        return 0
    return conn.execute(table.insert().prefix_with("OR IGNORE"), rows).rowcount


def seed_world(conn: Connection, world: World) -> dict[str, int]:
    """Insert missing master data; return the number of rows inserted per table."""
    inserted = {
        "accounts": _insert(conn, schema.accounts, (
            {"account_id": a.account_id, "name": a.name, "region": a.region,
             "segment": a.segment, "plan": a.plan, "arr": a.arr, "currency": CURRENCY,
             "account_manager": a.account_manager, "tenure_months": a.tenure_months,
             "notes": a.notes}
            for a in world.accounts)),
        "sites": _insert(conn, schema.sites, (
            {"site_id": s.site_id, "kind": s.kind, "region": s.region, "city": s.city}
            for s in world.sites)),
        "skus": _insert(conn, schema.skus, (
            {"sku": s.sku, "name": s.name, "category": s.category, "unit_cost": s.unit_cost,
             "unit_price": s.unit_price, "currency": CURRENCY, "supplier": s.supplier,
             "lead_time_days": s.lead_time_days}
            for s in world.skus)),
    }
    inserted["inventory"] = _insert(conn, schema.inventory, (
        {"sku": s.sku, "site": s.site, "on_hand": s.on_hand, "reserved": 0}
        for s in world.inventory))
    inserted["assets"] = _insert(conn, schema.assets, (
        {"asset_id": a.asset_id, "name": a.name, "site": a.site, "asset_class": a.asset_class,
         "criticality": a.criticality, "spare_part_sku": a.spare_part_sku,
         "downtime_cost_per_hour": a.downtime_cost_per_hour, "installed_year": a.installed_year}
        for a in world.assets))
    inserted["technicians"] = _insert(conn, schema.technicians, (
        {"technician_id": t.technician_id, "name": t.name, "email": t.email, "site": t.site,
         "skills": json.dumps(list(t.skills))}
        for t in world.technicians))
    return inserted
