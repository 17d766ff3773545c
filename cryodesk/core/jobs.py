"""Jobs: creation, lookup, description, parameters, status and outputs."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from ..base import hooks
from ..base.errors import CryodeskError, DataError, NotFound, Refused, UsageError
from ..db.models import Connection, Job, JobWorkspace, OutputFile, Project, Workspace, db, utcnow
from . import events, manifest, pending, registry
from .fsutil import require_project_dir
from .graph import would_create_cycle
from .guard import project_write
from .projects import get_project, get_workspace, list_workspaces
from .rules import why_not_set_params
from .uids import parse_uid


@dataclass
class InputSpec:
    slot: str
    parent: str  # "J3"
    output: str | None = None
    version: int | None = None


def get_job(project, uid: str | int | Job) -> Job:
    if isinstance(uid, Job):
        return uid
    project = get_project(project)
    number = parse_uid(uid, "J")
    job = Job.get_or_none((Job.project == project) & (Job.number == number))
    if job is None:
        raise NotFound(f"no job J{number} in {project.uid}")
    return job


def refresh(jobs_) -> list[Job]:
    """The current database state of ``jobs_`` (rules must never judge a stale object)."""
    ids = [j.id for j in jobs_]
    by_id = {j.id: j for j in Job.select().where(Job.id.in_(ids))} if ids else {}
    return [by_id[i] for i in ids if i in by_id]


def get_jobs(project, uids) -> list[Job]:
    project = get_project(project)
    return [get_job(project, u) for u in uids]


def job_dir(job: Job, project: Project | None = None) -> Path:
    return Path((project or job.project).directory) / job.directory


def _resolve_output(parent: Job, slot: registry.InputSlot, output: str | None) -> str:
    ptype = registry.get(parent.type)
    if output is not None:
        group = ptype.output_group(output)
        if slot.type != "any" and group.type != slot.type:
            raise UsageError(
                f"input {slot.name!r} takes {slot.type} data but {parent.uid}.{output} is {group.type}"
            )
        return output
    matches = [o.name for o in ptype.outputs if slot.type == "any" or o.type == slot.type]
    if len(matches) > 1 and slot.name in matches:
        return slot.name  # particles=J7 means J7's output named "particles", as users expect
    if len(matches) != 1:
        what = "no" if not matches else "several"
        raise UsageError(
            f"{parent.uid} ({parent.type}) has {what} outputs of type {slot.type} for input {slot.name!r}; "
            f"name one as {slot.name}={parent.uid}.OUTPUT"
        )
    return matches[0]


def _default_workspace(project: Project) -> Workspace:
    spaces = list_workspaces(project)
    if len(spaces) == 1:
        return spaces[0]
    if not spaces:
        raise UsageError(f"{project.uid} has no workspace; create one with 'cryodesk workspace create'")
    raise UsageError(f"{project.uid} has several workspaces; say which with --workspace")


def split_job_settings(jtype, values: dict) -> tuple[dict, dict]:
    """``values`` split into ``(params, settings)``: a name that is not a parameter of ``jtype`` but a
    setting with a job level of its own (``delete_intermediate``) is the job's setting, as the
    guide's per-job switch; ``cache_particles`` and the like are parameters (``job_param``)."""
    from ..base import settings

    declared = {p.name for p in jtype.params}
    params, own = {}, {}
    for key, value in values.items():
        s = settings.SETTINGS.get(key)
        if key not in declared and s is not None and "job" in s.levels and not s.job_param:
            own[key] = value
        else:
            params[key] = value
    return params, own


def create_job(project, type_name: str, workspace=None, inputs=(), params=None, title: str = "") -> Job:
    """Create job ``J<n>`` (status *building*) with its directory, linked into ``workspace``.

    ``inputs`` is a sequence of :class:`InputSpec`; ``params`` maps names to
    values (strings are converted to the declared type); a job-level setting
    among them (``delete_intermediate=false``) becomes the job's setting.
    """
    from ..base import settings

    project = get_project(project)
    if (project.kind or "cryodesk") != "cryodesk":  # (issue 16) RELION runs RELION's jobs; CryoSPARC is read-only
        raise UsageError(f"{project.uid} is a {project.kind} project: cryodesk does not create jobs in it "
                         "(restack or export its particles into a cryodesk project)")
    require_project_dir(project.directory)
    jtype = registry.get(type_name)
    given, own = split_job_settings(jtype, params or {})
    values = jtype.coerce_params(given)
    own = {k: settings.coerce(k, v, f"a new {jtype.name} job") for k, v in own.items()}
    ws = get_workspace(project, workspace) if workspace is not None else _default_workspace(project)
    resolved = []
    per_slot: dict[str, int] = defaultdict(int)
    for spec in inputs:
        slot = jtype.input_slot(spec.slot)
        parent = get_job(project, spec.parent)
        output = _resolve_output(parent, slot, spec.output)
        if spec.version is not None and spec.version < 0:
            raise UsageError(f"output versions start at 0, got {spec.version}")
        per_slot[slot.name] += 1
        if per_slot[slot.name] > 1 and not slot.multiple:
            raise UsageError(f"input {slot.name!r} of {jtype.name} takes one connection")
        resolved.append((slot.name, parent, output, spec.version, per_slot[slot.name] - 1))
    made: list[Path] = []
    try:
        return _create_locked(project, jtype, ws, resolved, values, own, title, made)
    except BaseException:
        for path in made:  # rolled back: the new directory goes too (only if empty; core.pending took job.json)
            try:
                path.rmdir()
            except OSError:
                pass
        raise


def _create_locked(project, jtype, ws, resolved, values, own, title, made: list) -> Job:
    with project_write(project, [parent.id for _, parent, _, _, _ in resolved]):
        for _, parent, _, _, _ in resolved:  # a parent deleted meanwhile: refuse, do not dangle
            if not Job.select().where(Job.id == parent.id).exists():
                raise NotFound(f"{parent.uid} was deleted meanwhile; nothing was created")
        # Bump the counter first: the write lock serialises concurrent creators.
        Project.update(next_job_number=Project.next_job_number + 1).where(Project.id == project.id).execute()
        number = Project.get_by_id(project.id).next_job_number - 1
        job = Job.create(project=project, number=number, type=jtype.name, title=title or jtype.title,
                         params=values, settings=own,
                         status_history=[{"status": "building", "at": utcnow().isoformat()}])
        JobWorkspace.create(job=job, workspace=ws)
        for slot, parent, output, version, pos in resolved:
            Connection.create(project=project, child=job, slot=slot, parent=parent, output=output,
                              version=version, position=pos)
        path = job_dir(job, project)
        if not path.exists():
            made.append(path)
        # recorded before the directory exists: a crash before the commit leaves nothing the next command
        # does not remove (core.pending: a job.json of a job that was never created, its empty directory)
        pending.done(pending.begin(Path(project.directory), [job.uid, pending.PROJECT]))
        _make_job_dir(path)
        # the counter is the project's own record too: a job deleted later never lends its uid again
        manifest.write_project(Project.get_by_id(project.id))
        manifest.write_job(job, Path(project.directory))
        events.record(project, "added", [job])
    return job


def _make_job_dir(path: Path) -> None:
    """Make a new job's directory; an empty one (a creation a crash interrupted) is adopted, never a full one."""
    try:
        path.mkdir(parents=False)
    except FileExistsError:
        if path.is_symlink() or not path.is_dir() or any(path.iterdir()):
            raise UsageError(f"{path} already exists and is not an empty directory (not made by cryodesk for "
                             "this job?); move it away, then create the job again") from None
    except OSError as exc:
        raise DataError(f"cannot make the job directory {path}: {exc.strerror or exc} (nothing was created)") from None


def connect(project, child, spec: InputSpec) -> Connection:
    """Add one input connection to a job that is still building."""
    project = get_project(project)
    child = get_job(project, child)
    reason = why_not_set_params(child)
    if reason:
        raise Refused(child.uid, f"cannot change inputs: {reason}")
    jtype = registry.get(child.type)
    slot = jtype.input_slot(spec.slot)
    parent = get_job(project, spec.parent)
    if would_create_cycle(child, parent):
        raise UsageError(f"connecting {parent.uid} into {child.uid} would create a cycle")
    output = _resolve_output(parent, slot, spec.output)
    with project_write(project, [child.id, parent.id]):
        child = Job.get_by_id(child.id)
        reason = why_not_set_params(child)
        if reason:
            raise Refused(child.uid, f"cannot change inputs: {reason}")
        if would_create_cycle(child, parent):  # again under the lock: two connects at once must not close a loop
            raise UsageError(f"connecting {parent.uid} into {child.uid} would create a cycle")
        existing = Connection.select().where((Connection.child == child) & (Connection.slot == slot.name)).count()
        if existing and not slot.multiple:
            raise UsageError(f"input {slot.name!r} of {child.uid} is already connected")
        conn = Connection.create(project=project, child=child, slot=slot.name, parent=parent,
                                 output=output, version=spec.version, position=existing)
        manifest.write_job(child, Path(project.directory))
        events.record(project, "links", [child])
    return conn


def set_params(project, job, values: dict) -> Job:
    """Change parameters of a building job; refused for final / ancestor-of-final jobs.

    (``cryodesk job set-param`` also takes job-level settings such as
    ``delete_intermediate``: :func:`cryodesk.core.settings_service.set_job_values`.)
    """
    project = get_project(project)
    job_id = get_job(project, job).id
    with project_write(project, [job_id]):
        # judged on the row as committed now: a mark-final of a child (which makes this job an
        # ancestor of final) waits for this transaction, or this one sees its result
        job = Job.get_by_id(job_id)
        reason = why_not_set_params(job)
        if reason:
            raise Refused(job.uid, f"cannot change parameters: {reason}")
        jtype = registry.get(job.type)
        new = dict(job.params)
        for key, value in values.items():
            new[key] = jtype.param(key).coerce(value)
        hooks.point("jobs.set_params.checked", job=job.uid)
        job.params = new
        job.save(only=[Job.params])
        manifest.write_job(job, Path(project.directory))
        events.record(project, "updated", [job])
    return job


def set_status(job: Job, status: str, error: str | None = None, write: bool = True) -> Job:
    """Move ``job`` to ``status``, stamping times and history (no rule checks: the caller owns them)."""
    now = utcnow()
    job.status = status
    history = list(job.status_history or [])
    history.append({"status": status, "at": now.isoformat()})
    job.status_history = history[-50:]
    if status == "queued":
        job.queued_at = now
    elif status == "running":
        job.started_at = now
    elif status in ("completed", "killed", "failed"):
        job.completed_at = now
    elif status == "building":
        job.queued_at = job.started_at = job.completed_at = None
    # an error describes the latest failure or kill; any other status clears it
    job.error = error if status in ("failed", "killed") else None
    # only the lifecycle fields: another process may be changing others; the manifest is written before
    # the commit, so a manifest that cannot be written leaves the status as it was (never half-applied)
    with db.atomic():
        job.save(only=[Job.status, Job.status_history, Job.queued_at, Job.started_at, Job.completed_at, Job.error])
        events.record(job.project_id, "updated", [job])
        if write:
            manifest.write_job(job)
    return job


def replace_outputs(job: Job, files) -> None:
    """Record ``files`` (``(group, OutputFileRef)`` pairs) as the job's outputs."""
    with db.atomic():
        OutputFile.delete().where(OutputFile.job == job).execute()
        # one INSERT per 500 rows, in order (the ids keep the order the manifest lists them in): an import
        # of a particle set registers a link per stack, thousands of rows
        rows = [(job.id, group, ref.kind, ref.version, ref.path, ref.size_bytes) for group, ref in files]
        fields = [OutputFile.job, OutputFile.group, OutputFile.kind, OutputFile.version, OutputFile.path,
                  OutputFile.size_bytes]
        convert = [f.db_value for f in fields]  # as peewee binds them (a numpy integer becomes an int)
        statements: dict[int, str] = {}
        for i in range(0, len(rows), 500):  # 6 x 500 bound values: under every SQLite's variable limit
            batch = rows[i:i + 500]
            # the statement of a batch of this size made once by peewee (its per-value SQL building is
            # most of the cost), the values converted by the fields as peewee converts them
            if len(batch) not in statements:
                statements[len(batch)] = OutputFile.insert_many(batch, fields=fields).sql()[0]
            db.execute_sql(statements[len(batch)], [conv(v) for row in batch for conv, v in zip(convert, row)])
        events.record(job.project_id, "updated", [job])


def describe_jobs(project, jobs: list[Job]) -> list[dict]:
    """Stable, JSON-ready descriptions of ``jobs`` (bulk queries: one per relation)."""
    project = get_project(project)
    ids = [j.id for j in jobs]
    # A few jobs (the inspector, `job show`): only their own edges and links, so a click
    # costs the same in a 50,000-job project as in a small one.  Many: the whole project.
    few = len(ids) <= 500
    parents: dict[int, set] = defaultdict(set)
    children: dict[int, set] = defaultdict(set)
    inputs: dict[int, list] = defaultdict(list)
    edges = Connection.select(Connection.child, Connection.parent, Connection.slot, Connection.output,
                              Connection.version)
    edges = (edges.where(Connection.child.in_(ids) | Connection.parent.in_(ids)) if few
             else edges.where(Connection.project == project))
    rows = list(edges.order_by(Connection.slot, Connection.position).tuples()) if ids else []
    involved = {r[0] for r in rows} | {r[1] for r in rows} | set(ids)
    numbers = Job.select(Job.id, Job.number)
    numbers = numbers.where(Job.id.in_(sorted(involved))) if few else numbers.where(Job.project == project)
    uid_of = {r[0]: f"J{r[1]}" for r in numbers.tuples()}
    for cid, pid, slot, output, version in rows:
        parents[cid].add(pid)
        children[pid].add(cid)
        inputs[cid].append({"slot": slot, "parent": uid_of[pid], "output": output, "version": version})
    spaces: dict[int, list] = defaultdict(list)
    links = JobWorkspace.select(JobWorkspace.job, Workspace.number).join(Workspace)
    links = links.where(JobWorkspace.job.in_(ids)) if few else links.where(Workspace.project == project)
    for jid, wnum in (links.order_by(Workspace.number).tuples() if ids else []):
        spaces[jid].append(f"W{wnum}")
    outputs: dict[int, list] = defaultdict(list)
    if len(ids) <= 2000:
        q = OutputFile.select().where(OutputFile.job.in_(ids)) if ids else []
    else:
        q = OutputFile.select().join(Job).where(Job.project == project)
    for f in q:
        outputs[f.job_id].append({"group": f.group, "kind": f.kind, "version": f.version,
                                  "path": f.path, "size_bytes": f.size_bytes})

    def key(uid):
        return int(uid[1:])

    out = []
    for j in jobs:
        try:
            category = registry.get(j.type).category
        except CryodeskError:  # a type not known here (a newer cryodesk's, a plugin not installed): shown
            category = None
        out.append({
            "uid": j.uid, "project": project.uid, "type": j.type, "title": j.title,
            "category": category, "status": j.status,
            "is_final": bool(j.is_final), "is_ancestor_of_final": bool(j.is_ancestor_of_final),
            "size_bytes": int(j.size_bytes), "workspaces": spaces.get(j.id, []),
            "parents": sorted((uid_of[p] for p in parents.get(j.id, ())), key=key),
            "children": sorted((uid_of[c] for c in children.get(j.id, ())), key=key),
            "params": j.params, "inputs": inputs.get(j.id, []), "outputs": outputs.get(j.id, []),
            "error": j.error,
            "lane": j.lane, "cluster_job_id": j.cluster_job_id,  # lanes (issue 18)
            "created_at": j.created_at.isoformat() if j.created_at else None,
            "started_at": j.started_at.isoformat() if j.started_at else None,
            "completed_at": j.completed_at.isoformat() if j.completed_at else None,
        })
    return out


def list_jobs(project, workspace=None) -> list[Job]:
    project = get_project(project)
    q = Job.select().where(Job.project == project)
    if workspace is not None:
        ws = get_workspace(project, workspace)
        q = q.join(JobWorkspace).where(JobWorkspace.workspace == ws)
    return list(q.order_by(Job.number))
