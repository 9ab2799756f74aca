"""The free-phrasing recogniser on its own (agent/chat/_intents.py), against a
vocabulary double: entity ids are generated (random shapes, seeded), so what a question
is about can only come from the vocabulary, never from a list of example ids; phrasings
are paraphrases, several without any keyword of the recogniser."""

from __future__ import annotations

import random
import string
from datetime import UTC, datetime, timedelta

import pytest

from decisionops.agent.chat._intents import DEFAULT_HOLD, recognise
from decisionops.agent.errors import InvalidInputError

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


class Vocab:
    """What a store would have: functions, playbooks by kind, entities, decisions,
    active holds."""

    functions = frozenset({"sales", "finance", "supply_chain", "maintenance"})
    playbooks = {"churn-retention": "churn", "asset-failure": "failure",
                 "dunning": "late_payment"}

    def __init__(self, entities: set[str], decisions: tuple[str, ...] = (),
                 holds: dict[int, str] | None = None) -> None:
        self._entities = entities
        self._decisions = decisions
        self._holds = holds or {}

    def entities(self, candidates: set[str]) -> list[str]:
        return sorted(self._entities & candidates)

    def decisions(self, token: str) -> list[str]:
        return [d for d in self._decisions if d.startswith(token.lower())][:2]

    def hold_target(self, hold_id: int) -> str | None:
        return self._holds.get(hold_id)

    def held(self) -> set[str]:
        return set(self._holds.values()) - self.functions - set(self.playbooks)


def _entity(seed: int) -> str:
    """An entity id of a random shape: ACME-042, c_17, Cust.9931, X9…"""
    rng = random.Random(seed)
    head = "".join(rng.choices(string.ascii_letters, k=rng.randint(1, 5)))
    head = rng.choice([head.upper(), head.lower(), head.title()])
    sep = rng.choice(["-", "_", ".", ""])
    return f"{head}{sep}{rng.randint(1, 99_999):0{rng.randint(1, 5)}d}"


ENTITIES = [_entity(seed) for seed in range(6)]


@pytest.mark.parametrize("entity", ENTITIES)
@pytest.mark.parametrize("template", [
    "{e}", "news on {e}?", "update re {e}", "anything new about {e}",
    "what's going on with {e}?", "status of account {e}", "and {e}, where are we?"])
def test_an_entity_alone_or_with_any_words_is_its_status(entity: str, template: str) -> None:
    intent = recognise(template.format(e=entity), Vocab({entity}), NOW)
    assert intent is not None and (intent.name, intent.entity) == ("status", entity)


@pytest.mark.parametrize("entity", ENTITIES[:3])
@pytest.mark.parametrize("template", [
    "why not {e}", "why no action for {e}", "how come {e} got nothing",
    "why didn't we act on {e}", "reason for {e} being skipped?"])
def test_why_questions(entity: str, template: str) -> None:
    intent = recognise(template.format(e=entity), Vocab({entity}), NOW)
    assert intent is not None and (intent.name, intent.entity) == ("why", entity)


@pytest.mark.parametrize("template", ["why {e}?", "why did we act on {e}?", "status of {e}",
                                      "hold {e} for 2 days"])
def test_a_composite_entity_id_is_one_entity(template: str) -> None:
    # Found in a trial: "why did we act on SKU-11253@DC-HAMBURG?" looked up SKU-11253.
    entity = f"{ENTITIES[0]}@{ENTITIES[1]}"
    intent = recognise(template.format(e=entity), Vocab({entity, ENTITIES[0]}), NOW)
    assert intent is not None and (intent.entity or intent.target) == entity


def test_an_entity_is_found_whatever_case_it_is_typed_in() -> None:
    intent = recognise("status of acme-042", Vocab({"ACME-042"}), NOW)
    assert intent is not None and intent.entity == "ACME-042"


@pytest.mark.parametrize(("text", "function"), [
    ("what's supply chain waiting for", "supply_chain"),
    ("Finance: anything for me?", "finance"),
    ("what does maintenance have on its plate", "maintenance"),
    ("pending for sales", "sales")])
def test_what_waits_on_a_function(text: str, function: str) -> None:
    intent = recognise(text, Vocab(set()), NOW)
    assert intent is not None and (intent.name, intent.function) == ("pending", function)


def test_decisions_by_id_or_unique_prefix_and_an_ambiguous_prefix_is_an_error() -> None:
    vocab = Vocab(set(), decisions=("dec_ab12cd34", "dec_ab12ff00", "dec_9f00aa11"))
    intent = recognise("why was dec_9f00 rejected?", vocab, NOW)
    assert intent is not None and (intent.name, intent.decision) == ("why", "dec_9f00aa11")
    intent = recognise("audit trail of DEC_9F00AA11", vocab, NOW)
    assert intent is not None and (intent.name, intent.decision) == ("ledger", "dec_9f00aa11")
    with pytest.raises(InvalidInputError) as err:
        recognise("what about dec_ab12", vocab, NOW)
    assert err.value.field == "decision_id"


@pytest.mark.parametrize("entity", ENTITIES[:3])
def test_orders_to_hold_and_release(entity: str) -> None:
    vocab = Vocab({entity})
    plain = recognise(f"hold {entity}", vocab, NOW)
    assert plain is not None and (plain.name, plain.target) == ("hold", entity)
    assert plain.until == NOW + DEFAULT_HOLD and plain.notes  # the default is said
    weeks = recognise(f"please freeze {entity} for 2 weeks because audit", vocab, NOW)
    assert weeks is not None and weeks.until == NOW + timedelta(days=14)
    assert weeks.reason == "audit"
    dated = recognise(f"could you put {entity} on hold until 2026-12-24", vocab, NOW)
    assert dated is not None and dated.until == datetime(2026, 12, 24, tzinfo=UTC)
    for text in (f"release {entity}", f"unpause {entity} now", f"take {entity} off hold",
                 f"stop holding {entity}", f"please end the hold on {entity}",
                 f"cancel the freeze of {entity}"):
        intent = recognise(text, vocab, NOW)
        assert intent is not None and (intent.name, intent.target) == ("release", entity), text


@pytest.mark.parametrize("text", [
    "hold on, what's the status of {e}?", "why did we stop {e}?", "is {e} on hold",
    "what if we pause {e}?", "who put {e} on hold"])
def test_a_question_is_never_an_order(text: str) -> None:
    entity = ENTITIES[0]
    intent = recognise(text.format(e=entity), Vocab({entity}), NOW)
    assert intent is not None and intent.name in ("status", "why"), intent


def test_a_kind_names_its_playbook_and_a_hold_number_its_target() -> None:
    vocab = Vocab(set(), holds={7: "asset-failure"})
    intent = recognise("pause every late payment action for a day", vocab, NOW)
    assert intent is not None and (intent.target, intent.until) == ("dunning",
                                                                    NOW + timedelta(days=1))
    intent = recognise("lift hold #7", vocab, NOW)  # that hold, not every one on its target
    assert intent is not None and (intent.name, intent.target, intent.hold_id) == (
        "release", "#7", 7)
    with pytest.raises(InvalidInputError) as err:
        recognise("release hold 8", vocab, NOW)
    assert err.value.field == "hold_id"


@pytest.mark.parametrize("text", ["hello there", "what's the weather like", "thanks!",
                                  "how do I write a playbook"])
def test_what_is_not_understood_is_none(text: str) -> None:
    assert recognise(text, Vocab(set(ENTITIES)), NOW) is None
