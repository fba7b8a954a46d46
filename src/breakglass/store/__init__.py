"""Storage: SQLAlchemy 2 tables and repositories, Alembic migrations; SQLite or PostgreSQL."""
