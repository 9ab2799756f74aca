"""The ops chat without an LLM, in free phrasing: a small intent recogniser.

A question is read for what it names — checked against what the store actually has —
and for a few keywords that tell the intents apart:

- names: entity ids that predictions are about, decision ids (or a unique prefix),
  business functions, playbooks and prediction kinds, hold numbers (``#3``, ``hold 3``);
- intents: ``status`` of an entity, ``why`` (not) acted on an entity or a decision,
  ``pending`` approvals (of a function, of an entity), ``metrics``, ``ledger`` of a
  decision, and for operators ``hold`` / ``release`` (only as an imperative: "hold …",
  "please pause …", "put … on hold"; a question never changes anything).

The answer comes from the same chat tools the LLM uses (``_tools``; their permission
rules hold) and is worded by ``_answers``. What is not recognised gets ``questions()``:
the list of what can be asked. Fixed commands (``_commands``) are tried before this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from decisionops.agent.chat._answers import (
    say_explain,
    say_hold,
    say_ledger,
    say_metrics,
    say_pending,
    say_release,
    say_why,
)
from decisionops.agent.chat._commands import HELP, parse_when
from decisionops.agent.chat._tools import ChatTools
from decisionops.agent.errors import InvalidInputError, NotFoundError

__all__ = ["DEFAULT_HOLD", "Intent", "StoreVocabulary", "Vocabulary", "answer", "questions",
           "recognise"]

DEFAULT_HOLD = timedelta(hours=24)
"""How long a hold asked for without a time lasts (the reply says so)."""

IntentName = Literal["status", "why", "pending", "metrics", "ledger", "hold", "release"]

# Keywords only tell intents apart; what a question is about comes from the store.
_WHY = {"why", "reason", "reasons", "explain", "cause", "because", "come"}
_PENDING = {"pending", "waiting", "wait", "waits", "awaiting", "queue", "queued", "approval",
            "approvals", "approve", "outstanding", "open", "backlog", "inbox", "todo",
            "blocked", "sign", "signoff", "needs", "need"}
_METRICS = {"metrics", "numbers", "stats", "statistics", "counts", "count", "summary",
            "overview", "totals", "many", "doing", "busy", "working", "happening"}
_LEDGER = {"ledger", "audit", "history", "trail", "log", "events"}
_HOLD_VERBS = {"hold", "pause", "freeze", "suspend", "block", "stop", "halt", "embargo"}
_RELEASE_VERBS = {"release", "unhold", "unpause", "resume", "unfreeze", "unblock", "lift",
                  "continue", "restart", "unsuspend"}
_POLITE = {"please", "pls", "kindly", "can", "could", "would", "will", "you", "we", "i",
           "lets", "let", "us", "need", "want", "to", "go", "ahead", "and", "now", "just",
           "ok", "okay", "so", "hey", "hi"}
_QUESTION = {"why", "what", "whats", "is", "are", "was", "were", "how", "when", "which",
             "who", "show", "list", "tell", "did", "does", "do", "has", "have", "any"}

_INTERROGATIVE = {"what", "whats", "why", "how", "which", "who", "whom", "whose", "when",
                  "where", "wheres", "status", "whether"}
_TOKEN = re.compile(r"[#\w][\w.:/#@-]*\w|\w")
_HOLD_NUMBER = re.compile(r"(?:\bholds?\s*(?:number|no\.?|id)?\s*#?|#|\bh-?)(\d{1,9})\b",
                          re.IGNORECASE)
_DECISION = re.compile(r"^dec_[0-9a-f]{4,}$", re.IGNORECASE)
_UNTIL = re.compile(r"\buntil\s+(\S+)", re.IGNORECASE)
_FOR = re.compile(r"\bfor\s+(?:the\s+next\s+)?(\d{1,4}|an?|one)\s*(h|hours?|d|days?|w|weeks?)\b",
                  re.IGNORECASE)
_BECAUSE = re.compile(r"\b(?:because|reason:?)\s+(.{3,})$", re.IGNORECASE)


class Vocabulary(Protocol):
    """What the store has, to resolve names in a question."""

    functions: frozenset[str]
    playbooks: dict[str, str]
    """playbook name -> the kind it answers."""

    def entities(self, candidates: set[str]) -> list[str]: ...

    def decisions(self, token: str) -> list[str]: ...

    def hold_target(self, hold_id: int) -> str | None: ...

    def held(self) -> set[str]:
        """Entities under an active hold (some have no prediction yet)."""
        ...


class StoreVocabulary:
    """``Vocabulary`` over a runtime's store, policies and playbooks."""

    def __init__(self, runtime: Any) -> None:
        self._rt = runtime
        self.functions = frozenset(runtime.policies.functions)
        self.playbooks = {name: p.kind for name, p in runtime.playbooks.playbooks.items()}

    def entities(self, candidates: set[str]) -> list[str]:
        return self._rt.store.predictions.entities_among(candidates)  # type: ignore[no-any-return]

    def decisions(self, token: str) -> list[str]:
        return self._rt.store.decisions.ids_starting(token.lower())  # type: ignore[no-any-return]

    def hold_target(self, hold_id: int) -> str | None:
        return next((h.target for h in self._rt.store.holds.list() if h.id == hold_id), None)

    def held(self) -> set[str]:
        return {h.target for h in self._rt.store.holds.list() if h.target_type == "entity"}


@dataclass
class Intent:
    name: IntentName
    entity: str | None = None
    decision: str | None = None
    function: str | None = None
    target: str | None = None
    """What a hold or release is about (entity, function or playbook)."""
    hold_id: int | None = None
    until: datetime | None = None
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    """Said before the answer (a default taken, a scope widened)."""


@dataclass
class _Names:
    words: list[str]
    entities: list[str]
    decisions: list[str]
    functions: list[str]
    playbooks: list[str]
    kinds: list[str]
    hold_id: int | None
    unknown_ids: list[str]
    held: list[str]
    """Held entities the text names (an entity may be held before any prediction)."""


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower().replace("'", "").replace("\u2019", ""))


def _names(text: str, vocab: Vocabulary) -> _Names:
    tokens = [t.strip(".:/#-") for t in _TOKEN.findall(text)]
    tokens = [t for t in tokens if t]
    lowered = " " + " ".join(_words(text)) + " "
    candidates = {v for t in tokens for v in (t, t.upper(), t.lower())}
    entities = vocab.entities(candidates)
    decisions: list[str] = []
    for token in tokens:
        if _DECISION.match(token):
            found = vocab.decisions(token)
            if len(found) == 1:
                decisions.append(found[0])
            elif len(found) > 1:
                raise InvalidInputError(f"{token!r} starts several decision ids; give more of "
                                        "it", field="decision_id")

    def named(name: str) -> bool:
        spoken = " " + " ".join(_words(name.replace("_", " ").replace("-", " "))) + " "
        return spoken in lowered or (spoken.rstrip() + "s ") in lowered

    hold = _HOLD_NUMBER.search(text)
    held = sorted(vocab.held() & candidates)
    found_lower = {e.lower() for e in entities + decisions + held}
    unknown = [t for t in tokens if re.search(r"\d", t) and re.search(r"[a-z]", t, re.I)
               and t.lower() not in found_lower and not _HOLD_NUMBER.fullmatch(t)
               and not re.fullmatch(r"\d+[hdw]|\d+(st|nd|rd|th)", t, re.I)]
    return _Names(words=_words(text), entities=entities, decisions=decisions,
                  functions=sorted(f for f in vocab.functions if named(f)),
                  playbooks=sorted(p for p in vocab.playbooks if named(p)),
                  kinds=sorted({k for k in vocab.playbooks.values() if named(k)}),
                  hold_id=int(hold.group(1)) if hold else None, unknown_ids=unknown,
                  held=held)


def _imperative(words: list[str]) -> str | None:
    """The verb a command-like sentence starts with (after politeness), else None."""
    for word in words:
        if word in _POLITE:
            continue
        if word in _QUESTION:
            return None
        return word
    return None


def _mutation(text: str) -> Literal["hold", "release"] | None:
    """``hold`` or ``release`` when ``text`` is an order to; a question (an interrogative
    word anywhere outside the reason) never is: "hold on, what's up with C-17?" reads."""
    words = _words(_BECAUSE.sub("", text))
    if set(words) & _INTERROGATIVE:
        return None
    verb = _imperative(words)
    joined = " ".join(words)
    if verb in _RELEASE_VERBS or (verb in ("take", "put")
                                  and re.search(r"\boff (hold|pause|ice)\b", joined)):
        return "release"
    # "stop holding X", "end the hold on X", "cancel the pause": the hold is what ends.
    if verb in ("stop", "end", "cancel", "remove", "drop", "undo") and re.search(
            rf"\b{verb} (the )?(hold|holding|pause|pausing|freeze|freezing|block|blocking)\b",
            joined):
        return "release"
    if verb in _HOLD_VERBS or (verb == "put" and re.search(r"\bon (hold|pause|ice)\b", joined)):
        return "hold"
    return None


def _until(text: str, now: datetime) -> datetime | None:
    match = _FOR.search(text)
    if match:
        amount = 1 if match.group(1).lower() in ("a", "an", "one") else int(match.group(1))
        unit = match.group(2)[0].lower()
        return now + timedelta(hours=amount) if unit == "h" else \
            now + timedelta(days=amount * (7 if unit == "w" else 1))
    if re.search(r"\b(until|till|til)\s+tomorrow\b", text, re.IGNORECASE):
        return now + timedelta(days=1)
    match = _UNTIL.search(text)
    return parse_when(match.group(1).rstrip(".,;!?"), now) if match else None


def recognise(text: str, vocab: Vocabulary, now: datetime | None = None) -> Intent | None:
    """What ``text`` asks, resolved against ``vocab``; None when it is not understood.
    Raises ``InvalidInputError`` naming the field when a hold or release names nothing
    the store has (so nothing changes)."""
    now = now or datetime.now(UTC)
    names = _names(text, vocab)
    words = set(names.words)
    entity = next(iter(names.entities + names.held), None)
    decision = names.decisions[0] if names.decisions else None
    function = names.functions[0] if names.functions else None
    mutation = _mutation(text)
    if mutation == "release":
        if names.hold_id is not None and not (entity or function or names.playbooks):
            if vocab.hold_target(names.hold_id) is None:
                raise InvalidInputError(f"no active hold #{names.hold_id}", field="hold_id")
            # that one hold, not every hold on what it holds
            return Intent("release", hold_id=names.hold_id, target=f"#{names.hold_id}")
        return Intent("release", target=_target("release", names, vocab))
    if mutation == "hold":
        return _hold_intent(text, names, vocab, now)
    if decision:
        return Intent("ledger" if words & _LEDGER else "why", decision=decision)
    if words & _METRICS and not entity and not (words & _PENDING and function):
        return Intent("metrics")
    if names.unknown_ids and not (entity or function):
        raise InvalidInputError(f"{names.unknown_ids[0]!r} is neither an entity that "
                                "predictions are about nor a decision id", field="entity_id")
    if function or (words & _PENDING and not (words & _WHY)):
        return Intent("pending", function=function, entity=entity)
    if entity:
        return Intent("why" if words & _WHY else "status", entity=entity)
    return None


def _no_target(verb: str, names: _Names) -> str:
    unknown = f" ({names.unknown_ids[0]!r} is not one the store knows)" if names.unknown_ids \
        else ""
    return (f"{verb} what? Name an entity that predictions are about, a decision, a "
            f"function or a playbook{unknown}; nothing was changed")


def _target(verb: str, names: _Names, vocab: Vocabulary) -> str:
    """The one thing a hold or release is about: an entity, else a decision, else a
    function, else a playbook (named, or the only one answering a named kind)."""
    for found in (names.entities, names.decisions, names.held, names.functions,
                  names.playbooks):
        if found:
            return found[0]
    if names.kinds:
        kind = names.kinds[0]
        books = sorted(p for p, k in vocab.playbooks.items() if k == kind)
        if len(books) > 1:
            raise InvalidInputError(f"several playbooks answer {kind}: {', '.join(books)}; "
                                    "name one", field="target")
        return books[0]
    raise InvalidInputError(_no_target(verb, names), field="target")


def _hold_intent(text: str, names: _Names, vocab: Vocabulary, now: datetime) -> Intent:
    notes: list[str] = []
    if names.entities and names.kinds:
        notes.append(f"Holds are per entity, playbook or function: this holds every action "
                     f"on {names.entities[0]}, not only {', '.join(names.kinds)}.")
    target = _target("hold", names, vocab)
    until = _until(text, now)
    if until is None:
        until = now + DEFAULT_HOLD
        notes.append("No time given: held for 24 hours (say 'for 3 days' or 'until "
                     "2026-12-01' for another).")
    reason = _BECAUSE.search(text)
    return Intent("hold", target=target, until=until,
                  reason=reason.group(1).strip() if reason else "", notes=notes)


def answer(tools: ChatTools, vocab: Vocabulary, text: str) -> tuple[str, Any] | None:
    """Answer ``text`` through the chat tools; None when it is not understood."""
    intent = recognise(text, vocab)
    if intent is None:
        return None
    reply, data = _run(tools, intent)
    return "\n".join([*intent.notes, reply]), data


def _run(tools: ChatTools, intent: Intent) -> tuple[str, Any]:
    if intent.name == "pending":
        rows = tools.call("pending_approvals", {"function": intent.function,
                                                "entity_id": intent.entity})
        scope = " ".join(x for x in (intent.function, intent.entity) if x) or None
        return say_pending(rows, scope)
    if intent.name == "metrics":
        return say_metrics(tools.call("metrics", {}))
    if intent.name == "ledger":
        return say_ledger(tools.call("search_ledger", {"query": intent.decision, "limit": 20}))
    if intent.name == "hold":
        assert intent.until is not None
        return say_hold(tools.call("hold", {"target": intent.target,
                                            "until": intent.until.isoformat(),
                                            "reason": intent.reason}))
    if intent.name == "release":
        return say_release(tools.call("release", {"target": intent.target}))
    if intent.decision:
        return say_explain(tools.call("explain_decision", {"decision_id": intent.decision}))
    data = tools.call("why_entity", {"entity_id": intent.entity})
    text, _ = say_why(data)
    head = (f"Why (or why not) on {intent.entity}: each prediction, its triage verdict and "
            "reason, and the decision it led to." if intent.name == "why"
            else f"Status of {intent.entity}, newest prediction first:")
    latest = next((p["decision"] for p in data["predictions"] if p["decision"]), None)
    if latest:
        try:
            detail, decision = say_explain(tools.call("explain_decision",
                                                      {"decision_id": latest}))
        except NotFoundError:
            detail, decision = "", None  # not a decision this user may see
        if detail:
            text += f"\n\nLatest decision:\n{detail}"
            data = {**data, "latest_decision": decision}
    return f"{head}\n{text}", data


def questions(vocab: Vocabulary) -> str:
    """What can be asked without an LLM (the answer to anything not understood)."""
    functions = ", ".join(sorted(vocab.functions)) or "none configured"
    return ("I did not understand that. Without an LLM I can answer questions like:\n"
            "  status of an entity        \"what's going on with ACC-10004?\"\n"
            "  why we did or did not act  \"why didn't we act on ACC-10004?\", "
            "\"why was dec_3f2a rejected?\"\n"
            "  what waits on a function   \"what is finance waiting on?\"  "
            f"(functions: {functions})\n"
            "  pending approvals          \"anything pending?\"\n"
            "  counts                     \"how many decisions are there?\"\n"
            "  operators: hold / release  \"hold ACC-10004 for 2 days because review\", "
            "\"release hold #3\"\n"
            "Any other question needs an LLM (set DECISIONOPS_LLM_BASE_URL). The exact "
            "commands:\n" + HELP)
