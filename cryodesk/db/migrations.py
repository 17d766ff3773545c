"""Schema versions and the steps between them.

A fresh database gets the current schema at once.  An existing one records
its version in ``meta.schema_version`` and is brought forward one step at a
time inside a transaction, so a user database made by any earlier cryodesk
opens without loss.  To change the schema: add the field in ``models.py``,
write ``_to_vN`` below, register it in ``STEPS`` and bump ``SCHEMA_VERSION``.
"""

from __future__ import annotations

from playhouse.migrate import PostgresqlMigrator, SqliteMigrator, migrate

from ..core.errors import CryodeskError
from .models import ALL_MODELS, Job, Meta, Project

SCHEMA_VERSION = 2


def _to_v2(migrator):
    # v2: project settings (cleanup defaults, cache defaults), job error text
    # and status history (shown by the inspector).
    return [
        migrator.add_column("project", "settings", Project.settings),
        migrator.add_column("job", "error", Job.error),
        migrator.add_column("job", "status_history", Job.status_history),
    ]


STEPS = {2: _to_v2}


def _migrator(database):
    if database.__class__.__name__.startswith("Postgres"):
        return PostgresqlMigrator(database)
    return SqliteMigrator(database)


def schema_version(database) -> int | None:
    """The schema version recorded in ``database`` (None for an empty database)."""
    if "meta" not in database.get_tables():
        return None
    row = Meta.get_or_none(Meta.key == "schema_version")
    return int(row.value) if row else None


def upgrade(database) -> int:
    """Create or migrate the schema; returns the version found before (0 = new)."""
    with database.atomic():
        found = schema_version(database)
        if found is None:
            if "project" in database.get_tables():
                raise CryodeskError("database has cryodesk tables but no schema version; refusing to guess")
            database.create_tables(ALL_MODELS)
            Meta.create(key="schema_version", value=str(SCHEMA_VERSION))
            return 0
        if found > SCHEMA_VERSION:
            raise CryodeskError(
                f"this database has schema version {found}, newer than this cryodesk "
                f"understands ({SCHEMA_VERSION}); upgrade cryodesk"
            )
        migrator = _migrator(database)
        for version in range(found + 1, SCHEMA_VERSION + 1):
            migrate(*STEPS[version](migrator))
            Meta.replace(key="schema_version", value=str(version)).execute()
        return found
