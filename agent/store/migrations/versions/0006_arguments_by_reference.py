"""Step and execution arguments by reference: ``plan_steps.arguments`` and
``executions.arguments`` may be NULL, meaning "the plan version's own arguments for this
step" (read back from ``plans.body``). Existing rows keep their copies.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_TABLES = ("plan_steps", "executions")


def upgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column("arguments", existing_type=sa.JSON(), nullable=True)


def downgrade() -> None:
    bind = op.get_bind()
    plans = sa.table("plans", sa.column("decision_id", sa.String), sa.column("version", sa.Integer),
                     sa.column("body", sa.JSON))
    for table, version in (("plan_steps", "plan_version"), ("executions", "plan_version")):
        rows = sa.table(table, sa.column("decision_id", sa.String),
                        sa.column(version, sa.Integer), sa.column("step_id", sa.String),
                        sa.column("arguments", sa.JSON))
        missing = bind.execute(sa.select(rows.c.decision_id, rows.c[version], rows.c.step_id)
                               .where(rows.c.arguments.is_(None))).all()
        for decision_id, plan_version, step_id in missing:
            body = bind.execute(sa.select(plans.c.body).where(
                plans.c.decision_id == decision_id, plans.c.version == plan_version)).scalar()
            arguments = next((s["arguments"] for s in (body or {}).get("steps", [])
                              if s["id"] == step_id), {})
            bind.execute(sa.update(rows).where(
                rows.c.decision_id == decision_id, rows.c[version] == plan_version,
                rows.c.step_id == step_id, rows.c.arguments.is_(None))
                .values(arguments=arguments))
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column("arguments", existing_type=sa.JSON(), nullable=False)
