"""Cleanup Data: plan, preview and execute (Qt-free; the GUI dialog and the CLI sit on this).

API summary (for the dialog and the data-management sidebar)
-------------------------------------------------------------
Sizes (:mod:`cryodesk.core.sizes`)::

    sizes.size_summary(project) -> dict         # recorded figures, no disk access; keys: size_bytes,
        # jobs_bytes, sessions_bytes, other_bytes, linked_bytes, known, stale, refreshed_at, jobs, sessions
    sizes.refresh_project_size(project) -> dict # scan (parallel, seconds on big trees: run in a worker)
    sizes.ensure_project_size(project) -> dict  # scan only if never measured (new / old database)
    sizes.is_stale(project) -> bool             # show "refresh" when True

Plan (no disk access, bulk queries; < 0.2 s for 10,000 jobs)::

    opts = CleanupOptions(preprocessing=("motion_correction", "ctf_estimation"),  # or "motion,ctf"
                          restack=False,   # restack/downsample jobs: an option of their own
                          intermediate=True, non_final="clear"|"delete"|None,
                          killed="clear"|"delete"|None, failed="clear"|"delete"|None)
    plan = plan_cleanup(project, opts, workspace=None | "W2", jobs=None | ["J5"])
    plan = plan_clear_intermediate(project, jobs=None | ["J5"], workspace=None | "W2")  # the Actions menu
    plan.entries   # [PlanEntry(uid, action "clear"|"clear_intermediate"|"delete", bytes, reasons,
                   #   category, status, is_final, is_ancestor_of_final, options, also_in, versions)]
    plan.skipped   # [Skipped(uid, option, reason)]: protected jobs an option would have touched
    plan.bytes, plan.to_dict()
    plan.header    # scope, workspace(_title), sessions, sessions_bytes, jobs, jobs_bytes, size_bytes (the
                   # scope now), project_size_bytes (the project now), measured_bytes, other_bytes,
                   # linked_bytes, size_known, size_stale
    plan.tabs["estimate"]       # jobs_cleared, jobs_intermediate_only, jobs_deleted, jobs_modified,
                                # bytes_freed, scope, scope_bytes, percent_of_scope, bytes_after (what stays
                                # in scope), project_bytes, percent_of_project, project_bytes_after, jobs_skipped
    plan.tabs["preprocessing"]  # {motion_correction|ctf_estimation|particle_picking|extraction|restack|
                                #  non_preprocessing: {jobs, bytes, percent_jobs, percent_bytes,
                                #  jobs_affected, bytes_freed[, selected]}}
    plan.tabs["intermediate"]   # jobs_with_intermediate, intermediate_bytes, percent_of_jobs_bytes,
                                # jobs_affected, bytes_freed, jobs: [{uid, intermediate_bytes, versions, size_bytes}]
    plan.tabs["non_final"]      # {final|ancestor_of_final|neither: block}, mode
    plan.tabs["killed_failed"]  # {killed|failed: block + mode, statuses: {every status: block}}
    (a "block" is {jobs, bytes, percent_jobs, percent_bytes, jobs_affected, bytes_freed})

Execute (in the engine: ``engine.submit_task("Cleanup P1", lambda progress, cancel:
execute_cleanup(project, plan, progress, cancel))``)::

    result = execute_cleanup(project, plan, progress=cb(fraction, msg), cancel=threading.Event)
    result.ok, result.bytes_freed, result.skipped, result.errors, result.to_dict()
    # outcomes: [{uid, action, ok, bytes, message}]; "skipped: ..." when a re-check refused a job

Settings::

    set_project_setting(project, "delete_intermediate", True/False/"true")
    get_project_setting(project, "delete_intermediate"); project_settings(project)
    set_job_setting(project, job, "delete_intermediate", True/False/None)   # per-job override
    on_job_finished(project, job)    # the runner calls it: records size, auto-deletes intermediates
    on_project_open(project) -> dict # on create/attach/open, in a worker: replay a crashed
                                     # deletion journal, measure the project if never measured
    delete_intermediate_now(project, job)
"""

from .auto import (  # noqa: F401
    PROJECT_SETTINGS,
    delete_intermediate_now,
    effective_setting,
    get_project_setting,
    on_job_finished,
    on_project_open,
    project_settings,
    set_job_setting,
    set_project_setting,
)
from .execute import CleanupResult, execute_cleanup  # noqa: F401
from .model import CleanupOptions, CleanupPlan, PlanEntry, Skipped, parse_categories  # noqa: F401
from .planner import plan_cleanup, plan_clear_intermediate  # noqa: F401

__all__ = [
    "CleanupOptions", "CleanupPlan", "CleanupResult", "PlanEntry", "Skipped", "PROJECT_SETTINGS",
    "delete_intermediate_now", "effective_setting", "execute_cleanup", "get_project_setting",
    "on_job_finished", "on_project_open", "parse_categories", "plan_clear_intermediate", "plan_cleanup",
    "project_settings", "set_job_setting",
    "set_project_setting",
]
