"""The reference world: deterministic master data shared by the seed and the samples.

Pure data, no database. ``reference_world()`` builds the same accounts, sites, SKUs,
inventory, assets, technicians and stock shortages on every call, in every process,
from fixed seeds (string seeds hash with SHA-512, independent of ``PYTHONHASHSEED``).
``tools.enterprise._seed`` writes it into the enterprise; ``tools.enterprise.samples``
draws the sample predictions from it, so every sample entity exists once seeded.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from decisionops.tools.enterprise import _names as names

__all__ = [
    "ASSET_CLASSES",
    "CURRENCY",
    "Account",
    "Asset",
    "Shortage",
    "Site",
    "Sku",
    "Stock",
    "Technician",
    "World",
    "reference_world",
]

WORLD_SEED = 20261120
CURRENCY = "EUR"
ASSET_CLASSES = ("pump", "compressor", "conveyor", "turbine")
_CLASS_CODE = {"pump": "PMP", "compressor": "CMP", "conveyor": "CNV", "turbine": "TRB"}
_UNCOVERED = ("PLANT-PENANG", "turbine")
"""No technician at this site has this skill: work orders there stay unassigned."""


@dataclass(frozen=True)
class Account:
    account_id: str
    name: str
    region: str
    segment: str
    plan: str
    arr: float
    account_manager: str
    tenure_months: int
    notes: str
    adversarial: bool = False
    """The notes carry prompt-injection text (for adversarial tests)."""


@dataclass(frozen=True)
class Site:
    site_id: str
    kind: str
    region: str
    city: str


@dataclass(frozen=True)
class Sku:
    sku: str
    name: str
    category: str
    unit_cost: float
    unit_price: float
    supplier: str
    lead_time_days: int
    asset_class: str | None = None
    """For spare parts: the asset class they fit."""


@dataclass(frozen=True)
class Stock:
    sku: str
    site: str
    on_hand: int


@dataclass(frozen=True)
class Asset:
    asset_id: str
    name: str
    site: str
    asset_class: str
    criticality: str
    spare_part_sku: str
    downtime_cost_per_hour: float
    installed_year: int


@dataclass(frozen=True)
class Technician:
    technician_id: str
    name: str
    email: str
    site: str
    skills: tuple[str, ...]


@dataclass(frozen=True)
class Shortage:
    """A (sku, site) that will run short, and the site holding surplus stock for it."""

    sku: str
    site: str
    on_hand: int
    forecast_units: int
    surplus_site: str
    surplus_on_hand: int

    @property
    def shortfall_units(self) -> int:
        return self.forecast_units - self.on_hand

    @property
    def transferable(self) -> bool:
        """Whether the surplus site can cover the whole shortfall."""
        return self.surplus_on_hand >= self.shortfall_units


@dataclass(frozen=True)
class World:
    accounts: tuple[Account, ...]
    sites: tuple[Site, ...]
    skus: tuple[Sku, ...]
    inventory: tuple[Stock, ...]
    assets: tuple[Asset, ...]
    technicians: tuple[Technician, ...]
    shortages: tuple[Shortage, ...]

    @property
    def adversarial_account_ids(self) -> tuple[str, ...]:
        return tuple(a.account_id for a in self.accounts if a.adversarial)


def reference_world() -> World:
    sites = tuple(Site(*row) for row in names.SITES)
    skus = _skus(random.Random(f"{WORLD_SEED}:skus"))
    shortages, inventory = _inventory(random.Random(f"{WORLD_SEED}:inventory"), skus, sites)
    return World(
        accounts=_accounts(random.Random(f"{WORLD_SEED}:accounts")),
        sites=sites,
        skus=skus,
        inventory=inventory,
        assets=_assets(random.Random(f"{WORLD_SEED}:assets"), skus, sites),
        technicians=_technicians(random.Random(f"{WORLD_SEED}:technicians"), sites),
        shortages=shortages,
    )


# --------------------------------------------------------------------------- accounts

_ARR_RANGE = {"smb": (8_000, 40_000), "mid_market": (40_000, 250_000),
              "enterprise": (250_000, 2_400_000)}
_PLANS = {"smb": ("essentials", "growth"), "mid_market": ("growth", "scale"),
          "enterprise": ("scale", "enterprise")}


def _accounts(rng: random.Random, count: int = 240) -> tuple[Account, ...]:
    out: list[Account] = []
    used: set[str] = set()
    adversarial = set(rng.sample(range(count), len(names.INJECTION_NOTES)))
    injections = iter(names.INJECTION_NOTES)
    for index in range(count):
        region = rng.choices(("EU", "NA", "APAC"), weights=(45, 35, 20))[0]
        segment = rng.choices(("smb", "mid_market", "enterprise"), weights=(45, 35, 20))[0]
        while True:
            name = (f"{rng.choice(names.COMPANY_STEMS)} {rng.choice(names.COMPANY_SECTORS)} "
                    f"{rng.choice(names.LEGAL_FORMS[region])}")
            if name not in used:
                used.add(name)
                break
        low, high = _ARR_RANGE[segment]
        arr = round(low * (high / low) ** rng.random(), -2)
        notes = next(injections) if index in adversarial else rng.choice(names.ACCOUNT_NOTES)
        out.append(Account(
            account_id=f"ACC-{10001 + index}",
            name=name,
            region=region,
            segment=segment,
            plan=rng.choice(_PLANS[segment]),
            arr=float(arr),
            account_manager=f"{rng.choice(names.ACCOUNT_MANAGERS[region])}@northwind.example",
            tenure_months=rng.randint(2, 96),
            notes=notes,
            adversarial=index in adversarial,
        ))
    return tuple(out)


# --------------------------------------------------------------------------- SKUs, inventory


def _skus(rng: random.Random) -> tuple[Sku, ...]:
    numbers = rng.sample(range(10_000, 70_000), len(names.PRODUCTS))
    numbers[0] = 88412  # the id the documentation uses as an example
    out = []
    for number, (product, low, high) in zip(numbers, names.PRODUCTS, strict=True):
        cost = round(rng.uniform(low, high), 2)
        out.append(Sku(
            sku=f"SKU-{number}", name=product, category="finished_good", unit_cost=cost,
            unit_price=round(cost * rng.uniform(1.3, 2.1), 2),
            supplier=rng.choice(names.SUPPLIERS), lead_time_days=rng.randint(5, 42),
        ))
    spare_numbers = iter(rng.sample(range(70_000, 80_000), 3 * len(ASSET_CLASSES)))
    for asset_class in ASSET_CLASSES:
        for part, low, high in names.SPARE_PARTS[asset_class]:
            cost = round(rng.uniform(low, high), 2)
            out.append(Sku(
                sku=f"SKU-{next(spare_numbers)}", name=part, category="spare_part",
                unit_cost=cost, unit_price=round(cost * 1.25, 2),
                supplier=names.SPARE_SUPPLIERS[asset_class], lead_time_days=rng.randint(10, 60),
                asset_class=asset_class,
            ))
    return tuple(out)


def _inventory(rng: random.Random, skus: tuple[Sku, ...], sites: tuple[Site, ...],
               shortages_wanted: int = 94) -> tuple[tuple[Shortage, ...], tuple[Stock, ...]]:
    dcs = [s for s in sites if s.kind == "dc"]
    goods = [s for s in skus if s.category == "finished_good"]
    stock: dict[tuple[str, str], int] = {
        (sku.sku, dc.site_id): int(round(rng.uniform(300, 4000), -1)) for sku in goods for dc in dcs
    }
    pairs = list(stock)
    rng.shuffle(pairs)
    used: set[tuple[str, str]] = set()
    shortages: list[Shortage] = []
    region = {s.site_id: s.region for s in sites}
    for sku, site in pairs:
        if len(shortages) == shortages_wanted:
            break
        if (sku, site) in used:
            continue
        free = [dc.site_id for dc in dcs if dc.site_id != site and (sku, dc.site_id) not in used]
        near = [s for s in free if region[s] == region[site]]
        if not free:
            continue
        surplus = rng.choice(near or free)
        forecast = int(round(rng.uniform(300, 3000), -1))
        ratio = rng.uniform(0.05, 0.5) if rng.random() < 0.5 else rng.uniform(0.55, 0.92)
        on_hand = int(forecast * ratio)
        shortfall = forecast - on_hand
        if rng.random() < 0.85:
            surplus_on_hand = int(shortfall * rng.uniform(1.6, 3.5)) + rng.randint(100, 600)
        else:  # realistically short at the surplus site too: the transfer fails
            surplus_on_hand = int(shortfall * rng.uniform(0.25, 0.8))
        stock[(sku, site)] = on_hand
        stock[(sku, surplus)] = surplus_on_hand
        used.update({(sku, site), (sku, surplus)})
        shortages.append(Shortage(sku, site, on_hand, forecast, surplus, surplus_on_hand))
    for spare in (s for s in skus if s.category == "spare_part"):
        for site in sites:
            if site.kind == "plant":
                stock[(spare.sku, site.site_id)] = rng.randint(0, 6)
        for reg in ("EU", "NA", "APAC"):
            for dc in rng.sample([d for d in dcs if d.region == reg], 2):
                stock[(spare.sku, dc.site_id)] = rng.randint(4, 40)
    inventory = tuple(Stock(sku, site, qty) for (sku, site), qty in sorted(stock.items()))
    return tuple(shortages), inventory


# --------------------------------------------------------------------------- assets, technicians

_CRITICALITY = {"low": 0.5, "medium": 1.0, "high": 1.8, "critical": 3.0}


def _assets(rng: random.Random, skus: tuple[Sku, ...], sites: tuple[Site, ...],
            per_plant: int = 28) -> tuple[Asset, ...]:
    plants = [s for s in sites if s.kind == "plant"]
    numbers = {c: iter(rng.sample(range(1, 100), 60)) for c in ASSET_CLASSES}
    spares = {c: [s.sku for s in skus if s.asset_class == c] for c in ASSET_CLASSES}
    out: list[Asset] = []
    for plant in plants:
        classes = list(ASSET_CLASSES)  # every plant has at least one asset of each class
        classes += rng.choices(ASSET_CLASSES, weights=(35, 25, 25, 15), k=per_plant - 4)
        for asset_class in classes:
            number = next(numbers[asset_class])
            criticality = rng.choices(tuple(_CRITICALITY), weights=(20, 40, 30, 10))[0]
            low, high = names.DOWNTIME_COST[asset_class]
            cost = rng.uniform(low, high) * _CRITICALITY[criticality]
            out.append(Asset(
                asset_id=f"AST-{_CLASS_CODE[asset_class]}-{number:04d}",
                name=f"{rng.choice(names.ASSET_KINDS[asset_class])} "
                     f"{_CLASS_CODE[asset_class][0]}-{number:02d}",
                site=plant.site_id,
                asset_class=asset_class,
                criticality=criticality,
                spare_part_sku=rng.choice(spares[asset_class]),
                downtime_cost_per_hour=float(round(cost, -1)),
                installed_year=rng.randint(1998, 2022),
            ))
    return tuple(sorted(out, key=lambda a: a.asset_id))


def _technicians(rng: random.Random, sites: tuple[Site, ...]) -> tuple[Technician, ...]:
    people = list(names.TECHNICIANS)
    rng.shuffle(people)
    staff = iter(people)
    out: list[Technician] = []
    for plant in (s for s in sites if s.kind == "plant"):
        covered = [c for c in ASSET_CLASSES if (plant.site_id, c) != _UNCOVERED]
        crews = [[c] for c in covered]
        crews.append(rng.sample(covered, 2))  # a generalist
        for skills in crews:
            if len(skills) == 1 and rng.random() < 0.4:
                other = rng.choice([c for c in covered if c not in skills])
                skills = [*skills, other]
            name = next(staff)
            out.append(Technician(
                technician_id=f"TECH-{len(out) + 1:03d}",
                name=name,
                email=f"{name.lower().replace(' ', '.')}@northwind.example",
                site=plant.site_id,
                skills=tuple(sorted(skills)),
            ))
    return tuple(out)
