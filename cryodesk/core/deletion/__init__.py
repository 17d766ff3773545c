"""The one deletion service: every byte cryodesk deletes goes through here.

Plan (:mod:`.build` makes the items: clear, delete, clear_versions, discard),
show (``DeletionPlan.to_dict``), execute through a journal (:func:`execute`),
recover after a crash (:func:`recover`).  The actions and the rule each
rechecks when it applies are in :mod:`.actions`; the journal and the trash in
:mod:`.journal`.  Callers: ``core.actions`` (clear / delete), ``core.cleanup``
(Cleanup Data, automatic deletion of intermediate results), ``core.runner``
(partial output of a cancelled run), ``core.recovery`` (unfinished writes of a process that died).
"""

from . import (
    project_action,  # noqa: F401  (registers delete_project: recovery must know it too)
    relion_actions,  # noqa: F401  (issue 16: RELION projects; recovery must know them too)
    session_action,  # noqa: F401  (registers compact_session, likewise)
)
from .actions import ACTIONS, Action, register  # noqa: F401
from .build import clear_item, delete_item, discard_item, freed_bytes, version_paths, versions_item  # noqa: F401
from .execute import execute, pending, recover, refusal  # noqa: F401
from .journal import STATE_DIR, state_dir, state_problem  # noqa: F401
from .plan import DeletionPlan, ItemResult, PlanItem  # noqa: F401
from .trash import empty_in_background, empty_now, wait_for_emptiers  # noqa: F401
