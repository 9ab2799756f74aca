"""Service layer: users, API tokens, webhook deliveries, chat conversations and
messages, operator holds, four-eyes edit proposals

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table('users',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('functions', sa.JSON(), nullable=False),
    sa.Column('created_at', _TIME, nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('disabled_at', _TIME, nullable=True),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('api_tokens',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('user_name', sa.String(length=100), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', _TIME, nullable=False),
    sa.Column('expires_at', _TIME, nullable=True),
    sa.Column('revoked_at', _TIME, nullable=True),
    sa.ForeignKeyConstraint(['user_name'], ['users.name']),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_index('ix_api_tokens_user', 'api_tokens', ['user_name'], unique=False)
    op.create_table('webhook_deliveries',
    sa.Column('delivery_id', sa.String(length=200), nullable=False),
    sa.Column('body_sha256', sa.String(length=64), nullable=False),
    sa.Column('received_at', _TIME, nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=True),
    sa.Column('response', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('delivery_id')
    )
    op.create_table('chat_conversations',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('user_name', sa.String(length=100), nullable=False),
    sa.Column('created_at', _TIME, nullable=False),
    sa.Column('updated_at', _TIME, nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_chat_conversations_user', 'chat_conversations',
                    ['user_name', 'updated_at'], unique=False)
    op.create_table('chat_messages',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('conversation_id', sa.String(length=40), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('content', sa.Text(), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=True),
    sa.Column('at', _TIME, nullable=False),
    sa.ForeignKeyConstraint(['conversation_id'], ['chat_conversations.id']),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_chat_messages_conversation', 'chat_messages',
                    ['conversation_id', 'id'], unique=False)
    op.create_table('holds',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('target_type', sa.String(length=16), nullable=False),
    sa.Column('target', sa.String(length=200), nullable=False),
    sa.Column('until', _TIME, nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', _TIME, nullable=False),
    sa.Column('released_at', _TIME, nullable=True),
    sa.Column('released_by', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_holds_target', 'holds', ['target_type', 'target'], unique=False)
    op.create_table('edit_proposals',
    sa.Column('approval_id', sa.String(length=64), nullable=False),
    sa.Column('plan_hash', sa.String(length=64), nullable=False),
    sa.Column('proposer', sa.String(length=200), nullable=False),
    sa.Column('arguments', sa.JSON(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('created_at', _TIME, nullable=False),
    sa.ForeignKeyConstraint(['approval_id'], ['approvals.id']),
    sa.PrimaryKeyConstraint('approval_id')
    )


def downgrade() -> None:
    op.drop_table('edit_proposals')
    op.drop_index('ix_holds_target', table_name='holds')
    op.drop_table('holds')
    op.drop_index('ix_chat_messages_conversation', table_name='chat_messages')
    op.drop_table('chat_messages')
    op.drop_index('ix_chat_conversations_user', table_name='chat_conversations')
    op.drop_table('chat_conversations')
    op.drop_table('webhook_deliveries')
    op.drop_index('ix_api_tokens_user', table_name='api_tokens')
    op.drop_table('api_tokens')
    op.drop_table('users')
