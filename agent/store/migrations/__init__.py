"""Alembic migrations of the DecisionOps store."""
