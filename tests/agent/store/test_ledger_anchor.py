"""Anchors: a point of the chain kept outside the store catches what the chain alone
cannot, a tail cut off or a chain rewritten and re-hashed by someone who can write the
database (head row included)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from decisionops.agent.errors import InvalidInputError, LedgerCorrupt, RuntimeFailure
from decisionops.agent.models import utcnow
from decisionops.agent.store import Event, Store
from decisionops.agent.store import _tables as t
from decisionops.agent.store._anchor import ANCHOR_FORMAT, Anchor, load_anchor, post_anchor, write_anchor
from decisionops.agent.store.ledger import GENESIS, anchor, entry_hash, verify
from tests.cli.conftest import Cli


def _url(request: pytest.FixtureRequest, tmp_path: Path, name: str = "ledger") -> str:
    return (request.getfixturevalue("pg_url") if request.param == "postgres"
            else f"sqlite:///{tmp_path / f'{name}.sqlite'}")


def _append(store: Store, n: int, decision_id: str | None = "dec_1") -> None:
    with store.transaction() as conn:
        store.db.record(conn, [Event(actor="tester", event="test.event", decision_id=decision_id,
                                  body={"n": i, "text": "ünïcode"}) for i in range(n)])


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """An empty ledger."""
    store = Store.open(_url(request, tmp_path))
    yield store
    store.close()


def _truncate_and_rewrite_head(store: Store, keep: int) -> None:
    """Cut the chain after entry ``keep`` and make the head row agree."""
    with store.transaction() as conn:
        conn.execute(delete(t.ledger).where(t.ledger.c.seq > keep))
        last = conn.scalar(select(t.ledger.c.hash).where(t.ledger.c.seq == keep))
        conn.execute(update(t.ledger_head).values(seq=keep, hash=last))


def _rewrite(store: Store, seq: int, **changes: Any) -> None:
    """Change entry ``seq`` and re-hash every entry after it and the head row: all it
    takes is write access to the database and this repository's ``entry_hash``."""
    with store.transaction() as conn:
        rows = conn.execute(select(t.ledger).where(t.ledger.c.seq >= seq)
                            .order_by(t.ledger.c.seq)).all()
        prev = rows[0].prev_hash
        for row in rows:
            values = {**row._mapping, **(changes if row.seq == seq else {})}
            event = Event(actor=values["actor"], event=values["event"],
                          decision_id=values["decision_id"], plan_hash=values["plan_hash"],
                          body=values["body"])
            digest = entry_hash(prev, row.seq, row.at, event)
            conn.execute(update(t.ledger).where(t.ledger.c.seq == row.seq).values(
                **(changes if row.seq == seq else {}), prev_hash=prev, hash=digest))
            prev = digest
        conn.execute(update(t.ledger_head).values(hash=prev))


def _archive(store: Store, max_entries: int) -> None:
    assert store.ledger.archive(utcnow() + timedelta(seconds=1),
                                max_entries=max_entries)["segments"] == 1


# ---------------------------------------------------------------------- what anchors catch


def test_truncated_tail_with_a_rewritten_head_row_needs_an_anchor(store: Store) -> None:
    _append(store, 10)
    before = anchor(store.engine)
    assert (before.seq, before.format) == (10, ANCHOR_FORMAT)
    _truncate_and_rewrite_head(store, 8)

    # The limit of the chain on its own: what is left is a consistent, shorter chain.
    assert verify(store.engine).ok
    report = verify(store.engine, anchors=[before])
    assert not report.ok
    assert report.first_bad_seq == 9
    assert report.problem.startswith("the chain ends at entry 8 but ")
    assert f"names entry 10 (hash {before.hash[:16]}" in report.problem
    assert "entries were removed" in report.problem


def test_rewritten_and_rehashed_chain_is_caught_by_an_anchor(store: Store) -> None:
    _append(store, 3)
    early = anchor(store.engine)
    _append(store, 7)
    late = anchor(store.engine)
    _rewrite(store, 5, actor="mallory")

    assert verify(store.engine).ok  # re-hashed: the chain alone holds
    report = verify(store.engine, anchors=[late, early])
    assert not report.ok and report.first_bad_seq is None
    assert "entry 10 has hash" in report.problem and late.hash[:16] in report.problem
    assert "rewritten between entries 4 and 10" in report.problem
    report = verify(store.engine, anchors=[late])
    assert "rewritten at or before entry 10" in report.problem
    # What the earlier anchor names is untouched.
    assert verify(store.engine, anchors=[early]).ok


def test_truncated_and_regrown_chain_is_caught_as_rewritten(store: Store) -> None:
    _append(store, 6)
    before = anchor(store.engine)
    _truncate_and_rewrite_head(store, 4)
    _append(store, 5)
    report = verify(store.engine, anchors=[before])
    assert not report.ok and "entry 6 has hash" in report.problem
    assert "rewritten" in report.problem


def test_anchors_at_several_points_hold_on_an_untouched_chain_also_once_archived(
        store: Store) -> None:
    anchors = []
    for n in (3, 4, 3):
        _append(store, n, decision_id=f"dec_{n}")
        anchors.append(anchor(store.engine))
    assert [a.seq for a in anchors] == [3, 7, 10]
    _append(store, 2, decision_id=None)
    report = verify(store.engine, anchors=anchors)
    assert (report.ok, report.anchors, report.entries) == (True, 3, 12), report

    _archive(store, max_entries=4)  # entries 1 to 4: the first anchored entry inside
    _archive(store, max_entries=5)  # 5 to 9
    report = verify(store.engine, anchors=anchors)
    assert (report.ok, report.anchors, report.archived) == (True, 3, 9), report
    _truncate_and_rewrite_head(store, 11)
    report = verify(store.engine, anchors=anchors)
    assert report.ok and report.anchors == 3  # what they name is all still there


def test_anchor_of_another_ledger_does_not_hold(store: Store, tmp_path: Path) -> None:
    _append(store, 5)
    other = Store.open(f"sqlite:///{tmp_path / 'other.sqlite'}")
    try:
        _append(other, 5, decision_id="dec_other")
        theirs = anchor(other.engine)
    finally:
        other.close()
    report = verify(store.engine, anchors=[theirs])
    assert not report.ok and "another ledger" in report.problem


# ---------------------------------------------------------------------- taking anchors


def test_anchor_is_the_head_the_chain_verifies_to(store: Store) -> None:
    empty = anchor(store.engine)
    assert (empty.seq, empty.hash, empty.at, empty.chain) == (0, GENESIS, None, GENESIS)
    _append(store, 4)
    assert verify(store.engine, anchors=[empty]).ok  # the empty chain is a prefix of any

    taken = anchor(store.engine)
    entries = store.ledger.entries()
    assert (taken.seq, taken.hash, taken.at) == (4, entries[-1].hash, entries[-1].at)
    assert taken.chain == entries[0].hash
    assert abs(taken.exported_at - utcnow()) < timedelta(minutes=1)


def test_no_anchor_is_taken_of_a_chain_that_does_not_verify(store: Store) -> None:
    _append(store, 4)
    with store.transaction() as conn:  # the head row claims more than the chain holds
        conn.execute(update(t.ledger_head).values(seq=6))
    with pytest.raises(LedgerCorrupt, match="ledger not anchored: the chain ends at entry 4"):
        anchor(store.engine)
    with store.transaction() as conn:
        conn.execute(update(t.ledger_head).values(seq=4))
        conn.execute(update(t.ledger).where(t.ledger.c.seq == 2).values(actor="mallory"))
    with pytest.raises(LedgerCorrupt, match="entry 2") as caught:
        anchor(store.engine)
    assert caught.value.seq == 2


def test_anchor_since_walks_on_from_a_trusted_anchor(store: Store) -> None:
    _append(store, 5)
    first = anchor(store.engine)
    assert anchor(store.engine, since=first).model_dump(exclude={"exported_at"}) == \
        first.model_dump(exclude={"exported_at"})
    _append(store, 3)
    _archive(store, max_entries=6)  # the anchored entry is in a segment now
    later = anchor(store.engine, since=first)
    full = anchor(store.engine)
    assert later.model_dump(exclude={"exported_at"}) == full.model_dump(exclude={"exported_at"})
    assert later.seq == 8


def test_anchor_since_refuses_a_chain_that_no_longer_holds_it(store: Store) -> None:
    _append(store, 6)
    first = anchor(store.engine)
    _rewrite(store, 3, actor="mallory")
    with pytest.raises(LedgerCorrupt, match="rewritten at or before entry 6"):
        anchor(store.engine, since=first)
    _truncate_and_rewrite_head(store, 4)
    with pytest.raises(LedgerCorrupt, match="does not reach entry 6"):
        anchor(store.engine, since=first)


# ---------------------------------------------------------------------- the document


def _anchor_doc(**changes: Any) -> dict[str, Any]:
    doc = {"format": ANCHOR_FORMAT, "seq": 3, "hash": "a" * 64,
           "at": "2026-01-02T03:04:05.000006+00:00", "chain": "b" * 64,
           "exported_at": "2026-01-02T03:05:00+00:00"}
    return {k: v for k, v in {**doc, **changes}.items() if v is not ...}


def test_anchor_file_round_trip(tmp_path: Path) -> None:
    anchor_ = Anchor.model_validate(_anchor_doc())
    path = write_anchor(anchor_, tmp_path / "a.json")
    assert json.loads(path.read_text()) == anchor_.model_dump(mode="json")
    assert list(json.loads(path.read_text())) == ["format", "seq", "hash", "at", "chain",
                                                 "exported_at"]
    loaded = load_anchor(path)
    assert loaded.model_dump() == anchor_.model_dump()
    assert loaded.label == f"anchor {path}"


@pytest.mark.parametrize(("text", "field", "message"), [
    ("not json", None, "not JSON"),
    ("[1, 2]", None, "a JSON object"),
    (json.dumps(_anchor_doc(hash="xyz")), "hash", "64 lowercase hex digits"),
    (json.dumps(_anchor_doc(seq=-1)), "seq", "greater than or equal to 0"),
    (json.dumps(_anchor_doc(seq=...)), "seq", "required"),
    (json.dumps(_anchor_doc(format="decisionops-ledger-anchor/2")), "format",
     "unknown anchor format"),
    (json.dumps(_anchor_doc(extra=1)), "extra", "not permitted"),
    (json.dumps(_anchor_doc(at="2026-01-02T03:04:05")), "at", "timezone"),
    (json.dumps(_anchor_doc(at=None)), "at", "required for entry 3"),
    (json.dumps(_anchor_doc(seq=0)), "hash", "the empty chain"),
    (json.dumps(_anchor_doc(seq=1)), "chain", "entry 1's own hash"),
])
def test_a_bad_anchor_file_is_refused_naming_the_file_and_field(
        tmp_path: Path, text: str, field: str | None, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InvalidInputError) as caught:
        load_anchor(path)
    assert str(path) in str(caught.value)
    assert caught.value.field == field
    assert message in str(caught.value)


def test_a_missing_anchor_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="cannot be read"):
        load_anchor(tmp_path / "nope.json")


# ---------------------------------------------------------------------- posting


class _Receiver:
    """A local HTTP server that keeps what is posted and answers ``status``."""

    def __init__(self, status: int = 201) -> None:
        self.status = status
        self.received: list[tuple[str, str, bytes]] = []
        self.authorization: list[str | None] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((self.path, self.headers["Content-Type"], body))
                receiver.authorization.append(self.headers.get("Authorization"))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    with _Receiver() as server:
        yield server


def test_post_sends_the_anchor_as_json(receiver: _Receiver) -> None:
    anchor_ = Anchor.model_validate(_anchor_doc())
    assert post_anchor(anchor_, f"{receiver.url}/anchors?ledger=prod") == 201
    [(path, content_type, body)] = receiver.received
    assert path == "/anchors?ledger=prod" and content_type == "application/json"
    assert json.loads(body) == anchor_.model_dump(mode="json")


def test_post_fails_when_the_receiver_does_not_take_it(receiver: _Receiver) -> None:
    receiver.status = 500
    anchor_ = Anchor.model_validate(_anchor_doc())
    secret_url = receiver.url.replace("http://", "http://user:s3cret@") + "/a?token=s3cret"
    with pytest.raises(RuntimeFailure, match=r"answered 500") as caught:
        post_anchor(anchor_, secret_url)
    assert caught.value.retryable
    assert "s3cret" not in str(caught.value) and "/a" in str(caught.value)
    receiver.status = 400
    with pytest.raises(RuntimeFailure, match=r"answered 400") as caught:
        post_anchor(anchor_, receiver.url)
    assert not caught.value.retryable


def test_post_fails_when_nothing_answers() -> None:
    with _Receiver() as gone:
        url = gone.url
    with pytest.raises(RuntimeFailure, match=r"anchor not posted to http://127\.0\.0\.1") as caught:
        post_anchor(Anchor.model_validate(_anchor_doc()), url, timeout=2)
    assert caught.value.retryable


def test_post_refuses_a_url_that_is_not_http(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="http:// or https://"):
        post_anchor(Anchor.model_validate(_anchor_doc()), "ftp://127.0.0.1/x")


# ---------------------------------------------------------------------- CLI


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def _ingest(cli: Cli, n: int) -> None:
    from tests.cli.test_cross_process import HEADER

    row = '{id},churn-gbm,churn,account,ACC-1000{n},0.2,100,"{{}}",2026-11-20T08:00:00Z\n'
    path = cli.cwd / "low.csv"
    path.write_text(HEADER + "".join(row.format(id=f"p-{i}", n=i) for i in range(n)))
    cli("ingest", str(path))


def _truncate_by_hand(cli: Cli, keep: int) -> None:
    """What someone with the database file in hand can do: no code of ours involved."""
    import sqlite3

    with sqlite3.connect(cli.cwd / "home" / "decisionops.sqlite") as conn:
        conn.execute("delete from ledger where seq > ?", (keep,))
        conn.execute("update ledger_head set seq = ?, hash = (select hash from ledger "
                     "where seq = ?)", (keep, keep))


@pytest.mark.slow
def test_cli_anchor_then_verify_with_it(cli: Cli) -> None:
    _ingest(cli, 3)  # one ledger entry for the batch
    cli("run", "--once")  # and one for the rule that drops the three
    out = cli("ledger", "anchor", "--out", "a.json")
    anchor_ = load_anchor(cli.cwd / "a.json")
    assert anchor_.seq >= 2
    text = " ".join(out.stdout.split())
    assert f"ledger anchor: entry {anchor_.seq}, hash {anchor_.hash}" in text
    assert "written to a.json" in text
    report = cli.json("ledger", "verify", "--anchor", "a.json")
    assert (report["ok"], report["anchors"]) == (True, 1)
    assert "1 anchor(s) hold" in cli("ledger", "verify", "--anchor", "a.json").stdout

    _truncate_by_hand(cli, anchor_.seq - 1)
    assert cli.json("ledger", "verify")["ok"] is True  # the limit of the chain alone
    failed = cli("ledger", "verify", "--anchor", "a.json", code=1)
    problem = " ".join(failed.stderr.split())
    assert f"ledger does not verify at entry {anchor_.seq}:" in problem
    assert f"names entry {anchor_.seq}" in problem and "entries were removed" in problem
    assert "a.json" in problem


@pytest.mark.slow
def test_cli_anchor_posts_it(cli: Cli) -> None:
    _ingest(cli, 1)
    with _Receiver() as receiver:
        printed = cli.json("ledger", "anchor", "--post", f"{receiver.url}/anchors")
        [(path, _, body)] = receiver.received
        assert path == "/anchors" and json.loads(body) == printed
        assert printed["format"] == ANCHOR_FORMAT
        out = cli("ledger", "anchor", "--post", f"{receiver.url}/anchors")
        assert f"posted to {receiver.url}/anchors: 201" in " ".join(out.stdout.split())

        receiver.status = 503
        failed = cli("ledger", "anchor", "--post", f"{receiver.url}/anchors", "--out", "a.json",
                     code=1)
        assert "--post: anchor not posted:" in failed.stderr and "answered 503" in failed.stderr
        assert "written to a.json" not in failed.stdout
        assert "the anchor was written to a.json" in " ".join(failed.stderr.split())


@pytest.mark.slow
def test_cli_refuses_bad_anchor_input_naming_the_option(cli: Cli) -> None:
    (cli.cwd / "bad.json").write_text(json.dumps(_anchor_doc(hash="xyz")))
    for args, message in [
        (("verify", "--anchor", "bad.json"),
         "--anchor: bad.json: hash: must be 64 lowercase hex digits"),
        (("verify", "--anchor", "missing.json"), "--anchor: missing.json: cannot be read"),
        (("anchor", "--post", "ftp://127.0.0.1/x"),
         "--post: must be an http:// or https:// URL"),
        (("anchor", "--out", "no/such/folder/a.json"),
         "--out: the folder no/such/folder does not exist"),
    ]:
        out = cli("ledger", *args, code=2)
        assert message in " ".join(out.stderr.split()) and "Traceback" not in out.stderr
    assert not (cli.cwd / "home").exists()  # refused before anything was opened

    for command, example in (("anchor", "decisionops ledger anchor --out"),
                             ("verify", "decisionops ledger verify --anchor")):
        help_text = " ".join(cli("ledger", command, "--help").stdout.split())
        assert f"Example: {example}" in help_text


def test_the_loop_posts_an_anchor_when_due_and_refuses_to_vouch_for_a_rewritten_chain(
        receiver: _Receiver, tmp_path: Path) -> None:
    from datetime import timedelta

    from decisionops.agent.housekeeping import default_housekeeping, post_ledger_anchor
    from decisionops.agent.models import utcnow
    from decisionops.agent.runtime import Runtime
    from decisionops.agent.settings import Settings

    settings = Settings(home=tmp_path / "home", ledger_anchor_url=f"{receiver.url}/a",
                        ledger_anchor_every_minutes=10, ledger_anchor_token="s3cret")
    assert post_ledger_anchor in default_housekeeping(settings)
    assert post_ledger_anchor not in default_housekeeping(Settings(home=tmp_path / "other"))
    with Runtime(settings, actor="test") as rt:
        _append(rt.store, 5)
        assert post_ledger_anchor(rt) == {"anchors_posted": 1, "anchor_failed": 0}
        [(_, _, body)] = receiver.received
        first = json.loads(body)
        assert first["seq"] == verify(rt.store.engine).entries
        assert receiver.authorization == ["Bearer s3cret"]
        assert post_ledger_anchor(rt) == {"anchors_posted": 0}  # not due yet
        _append(rt.store, 3)
        later = utcnow() + timedelta(minutes=11)
        assert post_ledger_anchor(rt, later)["anchors_posted"] == 1
        assert json.loads(receiver.received[-1][2])["seq"] == first["seq"] + 3
        _truncate_and_rewrite_head(rt.store, keep=first["seq"] - 1)
        assert post_ledger_anchor(rt, later + timedelta(minutes=11)) == {
            "anchors_posted": 0, "anchor_failed": 1}
        assert len(receiver.received) == 2
        state = rt.store.ops.source_state("ledger-anchor")
        assert "ledger not anchored" in state["last_error"]
