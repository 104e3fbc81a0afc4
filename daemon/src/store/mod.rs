//! Storage: embedded SQLite by default, with schema migrations.
