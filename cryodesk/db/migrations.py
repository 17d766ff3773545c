"""Schema versions and the steps between them.

A fresh database gets the current schema at once.  An existing one records
its version in ``meta.schema_version`` and is brought forward one step at a
time inside a transaction, so a user database made by any earlier cryodesk
opens without loss.  To change the schema: add the field in ``models.py``,
write ``_to_vN`` below, register it in ``STEPS`` and bump ``SCHEMA_VERSION``.
"""

from __future__ import annotations

import json

from playhouse.migrate import PostgresqlMigrator, SqliteMigrator, migrate

from ..base.errors import CryodeskError
from .backend import is_sqlite
from .models import ALL_MODELS, AppliedItem, Change, Exposure, Job, Lane, Meta, Project, ProjectOp, Session, Worker

SCHEMA_VERSION = 6


def _to_v2(migrator):
    # v2: project settings (cleanup defaults, cache defaults), job error text
    # and status history (shown by the inspector).
    return [
        migrator.add_column("project", "settings", Project.settings),
        migrator.add_column("job", "error", Job.error),
        migrator.add_column("job", "status_history", Job.status_history),
    ]


def _to_v3(migrator):
    # v3: project size accounting, per-job setting overrides, workers (SSD cache).
    # Sizes start unknown (NULL): the services compute them on first use.
    Worker.create_table()
    return [
        migrator.add_column("project", "size_bytes", Project.size_bytes),
        migrator.add_column("project", "size_jobs_bytes", Project.size_jobs_bytes),
        migrator.add_column("project", "size_sessions_bytes", Project.size_sessions_bytes),
        migrator.add_column("project", "size_other_bytes", Project.size_other_bytes),
        migrator.add_column("project", "size_linked_bytes", Project.size_linked_bytes),
        migrator.add_column("project", "size_refreshed_at", Project.size_refreshed_at),
        migrator.add_column("project", "jobs_changed_at", Project.jobs_changed_at),
        migrator.add_column("job", "settings", Job.settings),
        migrator.add_index("connection", ("child_id", "parent_id"), False),
        migrator.add_index("connection", ("parent_id", "child_id"), False),
    ]


_RUNTIME_COLUMNS = ("owner_host", "owner_pid", "owner_boot", "owner_start", "owner_engine",
                    "heartbeat_at", "kill_requested_at")


def _to_v4(migrator):
    # v4: runtime records move out of Job.settings into columns (a user's edit of a
    # setting no longer races an engine's claim), the change log, and applied journal items;
    # project lifecycle: the project's own id, archiving, the journal of moves and deletes.
    Change.create_table()
    AppliedItem.create_table()
    ProjectOp.create_table()
    # (owner_engine is an indexed field and uuid a unique one: add_column makes their indexes)
    return ([migrator.add_column("job", name, getattr(Job, name)) for name in _RUNTIME_COLUMNS]
            + [migrator.add_column("project", "uuid", Project.uuid),
               migrator.add_column("project", "archived_at", Project.archived_at)])


def _to_v5(migrator):
    # v5: lanes (a job's lane and cluster job id), live sessions (their parameters, lane and
    # error; exposures), other programs' projects (a project's kind, a job's own directory).
    # Tolerant of a database that already has some of them (made by a development build).
    database = migrator.database
    Lane.create_table(safe=True)
    Exposure.create_table(safe=True)
    wanted = [("job", Job, ("lane", "cluster_job_id", "path")),
              ("session", Session, ("params", "lane", "error", "lane_run")), ("project", Project, ("kind",))]
    ops = []
    for table, model, names in wanted:
        have = {c.name for c in database.get_columns(table)}
        ops += [migrator.add_column(table, n, getattr(model, n)) for n in names if n not in have]
    return ops


def _to_v6(migrator):
    # v6: a covering index for the jobs flagged ancestor of final (core.finals reads them on every mark or
    # unmark: on 100,000 jobs 44 ms through the table, 22 ms from the index).  Tolerant of a database that
    # has it already.
    have = {tuple(i.columns) for i in migrator.database.get_indexes("job")}
    columns = ("project_id", "is_ancestor_of_final", "id")
    return [] if columns in have else [migrator.add_index("job", columns, False)]


def _after_v4(database):
    """Move ``settings["run"]`` / ``settings["kill_requested"]`` into the v4 columns."""
    import datetime as dt

    rows = database.execute_sql("SELECT id, settings FROM job WHERE settings LIKE %s" % database.param,
                                ['%"run"%']).fetchall()
    rows += database.execute_sql("SELECT id, settings FROM job WHERE settings LIKE %s" % database.param,
                                 ['%"kill_requested"%']).fetchall()
    for job_id, text in {r[0]: r[1] for r in rows}.items():
        try:
            settings = json.loads(text or "{}")
        except ValueError:
            continue
        if not isinstance(settings, dict):
            continue
        run = settings.pop("run", None) or {}
        kill = settings.pop("kill_requested", None)
        values = {"settings": settings}
        if isinstance(run, dict):
            values.update(owner_host=run.get("host"), owner_pid=run.get("pid"), owner_boot=run.get("boot"),
                          owner_start=run.get("start"), owner_engine=run.get("engine"))
        if kill:
            try:
                values["kill_requested_at"] = dt.datetime.fromisoformat(str(kill))
            except ValueError:
                values["kill_requested_at"] = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        Job.update(**values).where(Job.id == job_id).execute()


STEPS = {2: _to_v2, 3: _to_v3, 4: _to_v4, 5: _to_v5, 6: _to_v6}
AFTER = {4: _after_v4}


def new_instance_id() -> str:
    """Give the database its instance id if it has none (v4: named by the project lock files it owns)."""
    import uuid

    Meta.insert(key="instance_id", value=uuid.uuid4().hex).on_conflict_ignore().execute()
    return Meta.get_by_id("instance_id").value


def _migrator(database):
    return SqliteMigrator(database) if is_sqlite(database) else PostgresqlMigrator(database)


def schema_version(database) -> int | None:
    """The schema version recorded in ``database`` (None for an empty database)."""
    if "meta" not in database.get_tables():
        return None
    row = Meta.get_or_none(Meta.key == "schema_version")
    return int(row.value) if row else None


def upgrade(database) -> int:
    """Create or migrate the schema; returns the version found before (0 = new)."""
    if not is_sqlite(database):
        return _upgrade(database)
    # SQLite rebuilds a table to add a NOT NULL column; with foreign keys on,
    # dropping the old table would cascade-delete every dependent row.  The
    # pragma only takes effect outside a transaction, so it wraps the upgrade,
    # and the result is checked before foreign keys come back on.
    database.execute_sql("PRAGMA foreign_keys = OFF")
    try:
        return _upgrade(database, check_foreign_keys=True)
    finally:
        database.execute_sql("PRAGMA foreign_keys = ON")


def _upgrade(database, check_foreign_keys: bool = False) -> int:
    with database.atomic():
        found = schema_version(database)
        if found is None:
            if "project" in database.get_tables():
                raise CryodeskError("database has cryodesk tables but no schema version; refusing to guess")
            database.create_tables(ALL_MODELS)
            Meta.create(key="schema_version", value=str(SCHEMA_VERSION))
            new_instance_id()
            return 0
        if found > SCHEMA_VERSION:
            raise CryodeskError(
                f"this database has schema version {found}, newer than this cryodesk "
                f"understands ({SCHEMA_VERSION}); upgrade cryodesk"
            )
        migrator = _migrator(database)
        for version in range(found + 1, SCHEMA_VERSION + 1):
            migrate(*STEPS[version](migrator))
            if version in AFTER:
                AFTER[version](database)
            # (an upsert both back ends have: PostgreSQL has no INSERT OR REPLACE)
            (Meta.insert(key="schema_version", value=str(version))
             .on_conflict(conflict_target=[Meta.key], update={Meta.value: str(version)}).execute())
        if found < SCHEMA_VERSION:
            new_instance_id()
        if check_foreign_keys and found < SCHEMA_VERSION:
            broken = database.execute_sql("PRAGMA foreign_key_check").fetchall()
            if broken:  # raising here rolls the whole upgrade back
                raise CryodeskError(f"schema upgrade would leave {len(broken)} dangling references; not applied")
        return found
