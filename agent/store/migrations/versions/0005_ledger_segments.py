"""Ledger archival: compressed segments of ledger entries past retention, and which
segments hold which decision's entries

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import json
import zlib
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ledger_segments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("first_seq", sa.BigInteger(), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("entries_count", sa.Integer(), nullable=False),
        sa.Column("first_at", _TIME, nullable=False),
        sa.Column("last_at", _TIME, nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("codec", sa.String(length=16), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("raw_bytes", sa.Integer(), nullable=False),
        sa.Column("created_at", _TIME, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ledger_segments") as batch_op:
        batch_op.create_index("ux_ledger_segments_first_seq", ["first_seq"], unique=True)
    op.create_table(
        "ledger_segment_decisions",
        sa.Column("decision_id", sa.String(length=64), nullable=False),
        sa.Column("segment_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["segment_id"], ["ledger_segments.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("decision_id", "segment_id"),
    )


def downgrade() -> None:
    # Archived entries go back into the ledger table first: dropping the segments must
    # not drop part of the chain. Frozen copy of the segment format (zlib of UTF-8 JSON
    # lines; each entry's prev_hash is the hash before it): a migration must not change
    # when the application code does.
    segments = sa.table("ledger_segments", sa.column("first_seq", sa.BigInteger()),
                        sa.column("prev_hash"), sa.column("codec"),
                        sa.column("body", sa.LargeBinary()))
    ledger = sa.table("ledger", sa.column("seq", sa.BigInteger()), sa.column("at", _TIME),
                      sa.column("actor"), sa.column("event"), sa.column("decision_id"),
                      sa.column("plan_hash"), sa.column("body", sa.JSON()),
                      sa.column("prev_hash"), sa.column("hash"))
    bind = op.get_bind()
    for first_seq, prev, codec, body in bind.execute(
            sa.select(segments.c.first_seq, segments.c.prev_hash, segments.c.codec,
                      segments.c.body).order_by(segments.c.first_seq)).all():
        if codec != "zlib":
            raise RuntimeError(f"ledger segment at entry {first_seq}: unknown codec {codec!r}")
        rows = []
        for line in zlib.decompress(body).decode("utf-8").split("\n"):
            if not line:
                continue
            entry = json.loads(line)
            rows.append({"seq": entry["seq"], "at": datetime.fromisoformat(entry["at"]),
                         "actor": entry["actor"], "event": entry["event"],
                         "decision_id": entry["decision_id"], "plan_hash": entry["plan_hash"],
                         "body": entry["body"], "prev_hash": prev, "hash": entry["hash"]})
            prev = entry["hash"]
        if rows:
            op.bulk_insert(ledger, rows)
    op.drop_table("ledger_segment_decisions")
    with op.batch_alter_table("ledger_segments") as batch_op:
        batch_op.drop_index("ux_ledger_segments_first_seq")
    op.drop_table("ledger_segments")
