"""Alembic migrations of the kounen database (configured from code: see bot.store.alembic_config)."""
