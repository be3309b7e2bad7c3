"""Persistence: the Repository/UnitOfWork port (`store.port`), its SQLAlchemy adapter and in-memory fake, the
schema (`store.tables`) and its migrations (`store.migrate`)."""
