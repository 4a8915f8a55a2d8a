"""The SQLite database: items, events, vectors, settings, ingest and incremental encoding."""
