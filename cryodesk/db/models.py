"""Peewee models.  All bound to :data:`db`, a :class:`peewee.DatabaseProxy`.

Schema changes go through :mod:`cryodesk.db.migrations`: add the column here
*and* a migration step there, and bump ``SCHEMA_VERSION``.
"""

from __future__ import annotations

import datetime as _dt
import json

import peewee as pw

db = pw.DatabaseProxy()

JOB_STATUSES = (
    "building",
    "queued",
    "launched",
    "started",
    "running",
    "waiting",
    "completed",
    "killed",
    "failed",
)
#: statuses in which a job's process may be alive
ACTIVE_STATUSES = ("queued", "launched", "started", "running", "waiting")


def utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)


class JSONField(pw.TextField):
    """JSON stored as text: portable across SQLite and PostgreSQL."""

    def db_value(self, value):
        return None if value is None else json.dumps(value, sort_keys=True)

    def python_value(self, value):
        return None if value is None else json.loads(value)


class BaseModel(pw.Model):
    class Meta:
        database = db
        legacy_table_names = False


class Meta(BaseModel):
    """Key/value facts about the database itself (``schema_version``)."""

    key = pw.CharField(primary_key=True, max_length=64)
    value = pw.TextField()


class Project(BaseModel):
    number = pw.IntegerField(unique=True)
    title = pw.TextField()
    directory = pw.TextField(unique=True)
    created_at = pw.DateTimeField(default=utcnow)
    next_job_number = pw.IntegerField(default=1)
    next_workspace_number = pw.IntegerField(default=1)
    next_session_number = pw.IntegerField(default=1)
    # v2
    settings = JSONField(default=dict)
    # v3: size accounting of the whole project directory (refreshed on request)
    size_bytes = pw.BigIntegerField(null=True)  # None = never scanned
    size_jobs_bytes = pw.BigIntegerField(default=0)
    size_sessions_bytes = pw.BigIntegerField(default=0)
    size_other_bytes = pw.BigIntegerField(default=0)
    size_linked_bytes = pw.BigIntegerField(default=0)  # symlinked/imported data, not part of the project
    size_refreshed_at = pw.DateTimeField(null=True)
    jobs_changed_at = pw.DateTimeField(null=True)  # bumped when any job's data changes
    # v4: lifecycle.  The project's own id (also in its project.json: attach recognises a project it
    # knows by it; None for a project made before v4 until its first write adopts it), and archiving
    uuid = pw.CharField(max_length=32, null=True, unique=True)
    archived_at = pw.DateTimeField(null=True)  # None: writable; else read-only since then
    # v5 (issue 16, other programs' projects): "cryodesk", "relion" (read-write) or "cryosparc" (read-only)
    kind = pw.CharField(max_length=16, default="cryodesk")

    @property
    def uid(self) -> str:
        return f"P{self.number}"


class Workspace(BaseModel):
    project = pw.ForeignKeyField(Project, backref="workspaces", on_delete="CASCADE")
    number = pw.IntegerField()
    title = pw.TextField()
    created_at = pw.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("project", "number"), True),)

    @property
    def uid(self) -> str:
        return f"W{self.number}"


class Job(BaseModel):
    project = pw.ForeignKeyField(Project, backref="jobs", on_delete="CASCADE")
    number = pw.IntegerField()
    type = pw.CharField(max_length=64)
    title = pw.TextField(default="")
    status = pw.CharField(max_length=16, default="building", index=True)
    params = JSONField(default=dict)
    size_bytes = pw.BigIntegerField(default=0)
    created_at = pw.DateTimeField(default=utcnow)
    queued_at = pw.DateTimeField(null=True)
    started_at = pw.DateTimeField(null=True)
    completed_at = pw.DateTimeField(null=True)
    is_final = pw.BooleanField(default=False, index=True)
    is_ancestor_of_final = pw.BooleanField(default=False)
    # v2
    error = pw.TextField(null=True)
    status_history = JSONField(default=list)
    # v3: per-job overrides of project settings (e.g. delete_intermediate); user choices only
    settings = JSONField(default=dict)
    # v4: who runs it (runtime records, written by core.lifecycle only)
    owner_host = pw.CharField(max_length=255, null=True)
    owner_pid = pw.IntegerField(null=True)
    owner_boot = pw.CharField(max_length=64, null=True)  # /proc boot id: a reboot kills every owner
    owner_start = pw.CharField(max_length=32, null=True)  # process start ticks: guards against pid reuse
    owner_engine = pw.CharField(max_length=32, null=True, index=True)  # the engine instance's token
    heartbeat_at = pw.DateTimeField(null=True)
    kill_requested_at = pw.DateTimeField(null=True)
    # v5 (lanes): where it was sent to run (None: this app's engine or any worker) and the cluster's job id
    lane = pw.CharField(max_length=64, null=True, index=True)
    cluster_job_id = pw.CharField(max_length=64, null=True)
    # v5 (other programs' projects): the job's directory in another program's project ("Class2D/job008"); None: J<n>
    path = pw.TextField(null=True)

    class Meta:
        # v6: the ancestor-of-final flags read (core/finals) from a covering index, never the rows
        indexes = ((("project", "number"), True), (("project", "is_ancestor_of_final", "id"), False))

    @property
    def uid(self) -> str:
        return f"J{self.number}"

    @property
    def directory(self) -> str:
        return self.path or f"J{self.number}"


class JobWorkspace(BaseModel):
    """A job is *linked* into one or more workspaces; links copy nothing."""

    job = pw.ForeignKeyField(Job, backref="links", on_delete="CASCADE")
    workspace = pw.ForeignKeyField(Workspace, backref="links", on_delete="CASCADE")

    class Meta:
        indexes = ((("job", "workspace"), True),)


class Connection(BaseModel):
    """Edge of the job DAG: ``child``'s input ``slot`` reads ``parent``'s ``output``."""

    project = pw.ForeignKeyField(Project, on_delete="CASCADE")
    child = pw.ForeignKeyField(Job, backref="input_connections", on_delete="CASCADE", index=True)
    slot = pw.CharField(max_length=64)
    parent = pw.ForeignKeyField(Job, backref="output_connections", on_delete="CASCADE", index=True)
    output = pw.CharField(max_length=64)
    #: None = the parent's latest version of that output
    version = pw.IntegerField(null=True)
    position = pw.IntegerField(default=0)

    class Meta:
        # covering indexes: graph walks in either direction never touch the table (v3)
        indexes = ((("child", "parent"), False), (("parent", "child"), False))


class OutputFile(BaseModel):
    """A file of a job's output group, with its version (iteration)."""

    job = pw.ForeignKeyField(Job, backref="output_files", on_delete="CASCADE", index=True)
    group = pw.CharField(max_length=64)
    kind = pw.CharField(max_length=32)
    version = pw.IntegerField(default=0)
    path = pw.TextField()  # relative to the project directory
    size_bytes = pw.BigIntegerField(default=0)


class Session(BaseModel):
    """A live (streaming) session ``S<n>``; cleanup reports sessions but never touches them."""

    project = pw.ForeignKeyField(Project, backref="sessions", on_delete="CASCADE")
    number = pw.IntegerField()
    title = pw.TextField(default="")
    status = pw.CharField(max_length=16, default="paused")
    size_bytes = pw.BigIntegerField(default=0)
    created_at = pw.DateTimeField(default=utcnow)
    # v5 (live sessions): watched glob, stage parameters, thresholds, lane (core.sessions owns them)
    params = JSONField(default=dict)
    lane = pw.CharField(max_length=64, default="local")
    error = pw.TextField(null=True)
    # v5 (a session's restore on a SLURM lane): lane, cluster job id, state, kill request (core.sessions.lane_run)
    lane_run = JSONField(null=True)

    class Meta:
        indexes = ((("project", "number"), True),)

    @property
    def uid(self) -> str:
        return f"S{self.number}"

    @property
    def directory(self) -> str:
        return f"S{self.number}"


class Worker(BaseModel):
    """A machine that runs jobs, with its SSD particle-cache configuration (v3)."""

    name = pw.CharField(max_length=255, unique=True)
    hostname = pw.CharField(max_length=255)
    ssd_path = pw.TextField(null=True)
    ssd_quota_mb = pw.BigIntegerField(null=True)  # None = no quota beyond the disk
    ssd_reserve_mb = pw.BigIntegerField(default=0)  # the guide: a path alone means no quota and no reserve
    no_ssd = pw.BooleanField(default=False)
    settings = JSONField(default=dict)
    created_at = pw.DateTimeField(default=utcnow)


class Change(BaseModel):
    """One published change (v4): what changed, in which project, for which jobs.

    Written by :mod:`cryodesk.core.events` inside the transaction of the change
    itself; windows of any process follow the log (``id`` grows) to update what
    they show.  Not a foreign key: the log outlives deleted projects and jobs.
    """

    id = pw.BigAutoField()
    project_id = pw.IntegerField(null=True)  # None: the list of projects itself
    kind = pw.CharField(max_length=16)
    jobs = JSONField(null=True)  # job numbers; None = many or all
    at = pw.DateTimeField(default=utcnow, index=True)


class AppliedItem(BaseModel):
    """A deletion-journal item that was decided (v4): applied, skipped by its recheck, or refused.

    Written in the same transaction as the item's database change, so a
    restart that replays the journal knows exactly which items are done,
    whatever their rechecks would say now.  Rows go when their journal is finished.
    """

    plan_id = pw.CharField(max_length=32)
    item = pw.IntegerField()
    outcome = pw.CharField(max_length=16)  # "applied" | "skipped" | "refused" | "gone"
    at = pw.DateTimeField(default=utcnow)

    class Meta:
        primary_key = pw.CompositeKey("plan_id", "item")


class ProjectOp(BaseModel):
    """A project move or delete in progress (v4): its journal, one row per project.

    Written before the operation touches anything and advanced one phase at a
    time (see :mod:`cryodesk.core.project_ops`), so a process killed at any
    point is finished or rolled back by the next one.  Not a foreign key: a
    delete's row outlives the project's.
    """

    project_id = pw.IntegerField(unique=True)
    kind = pw.CharField(max_length=16)  # "move" | "delete"
    phase = pw.CharField(max_length=16)
    source = pw.TextField()
    dest = pw.TextField()
    temp = pw.TextField(null=True)  # where a copy is built (a move across file systems)
    host = pw.CharField(max_length=255, default="")
    pid = pw.IntegerField(default=0)
    started_at = pw.DateTimeField(default=utcnow)
    detail = JSONField(default=dict)


# -- lanes (issue 18) --------------------------------------------------------------

class Lane(BaseModel):
    """Where jobs run (v5): ``local`` (the app's engine), ``worker`` (a ``cryodesk worker run --lane``
    process on another host sharing the database) or ``slurm`` (submitted to a cluster).

    ``config`` holds the kind's settings (for SLURM: script and command templates, prefix, variables);
    see :mod:`cryodesk.core.lanes`.
    """

    name = pw.CharField(max_length=64, unique=True)
    type = pw.CharField(max_length=16)
    config = JSONField(default=dict)
    created_at = pw.DateTimeField(default=utcnow)


# -- live sessions (issue 14) ------------------------------------------------------------------
class Exposure(BaseModel):
    """One movie of a live session (v5), imported by reference: the movie is never copied or deleted.

    ``stage`` is the next stage to run (found → motion → ctf → picking → extraction → ready),
    or failed (``failed_stage`` says where) or compacted.  ``outputs`` maps a kind
    (micrograph, thumbnail, ctf_spectrum, particles) to ``{"path", "bytes"}`` inside ``S<n>/``.
    """

    session = pw.ForeignKeyField(Session, backref="exposures", on_delete="CASCADE")
    number = pw.IntegerField()
    movie = pw.TextField()  # absolute path of the raw movie (a reference)
    movie_bytes = pw.BigIntegerField(default=0)
    stage = pw.CharField(max_length=16, default="found", index=True)
    failed_stage = pw.CharField(max_length=16, null=True)
    error = pw.TextField(null=True)
    outputs = JSONField(default=dict)
    results = JSONField(default=dict)  # psize, shape, shifts, ctf fit, particle count
    picks = JSONField(null=True)  # automatic picks [[x, y, score], ...] in micrograph pixels; None = not picked
    manual_picks = JSONField(default=list)  # the user's picks [[x, y], ...]
    manual_status = pw.CharField(max_length=8, null=True)  # None | "accept" | "reject" (overrides thresholds)
    found_at = pw.DateTimeField(default=utcnow)
    ready_at = pw.DateTimeField(null=True)

    class Meta:
        indexes = ((("session", "number"), True), (("session", "movie"), True))

    @property
    def uid(self) -> str:
        return f"E{self.number}"


ALL_MODELS = (Meta, Project, Workspace, Job, JobWorkspace, Connection, OutputFile, Session, Worker, Change,
              AppliedItem, ProjectOp, Lane, Exposure)
