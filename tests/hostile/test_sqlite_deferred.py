"""SQLite: writers that start with a read in a DEFERRED transaction fail instead of waiting.

``link`` / ``unlink`` / ``move`` (and ``create_workspace``, ``clone``) use
``db.atomic()`` — ``BEGIN`` DEFERRED — and read before they write.  In WAL
mode, when another process commits a write between that read and the first
write (a running worker's heartbeat every 5 s is enough), SQLite cannot
upgrade the stale read snapshot and returns SQLITE_BUSY at once, whatever
the busy_timeout: ``peewee.OperationalError: database is locked``, which the
CLI shows as a traceback.  (Seen in a loop of link/unlink against a process
updating a heartbeat column: 5 failures in 249 rounds.)  ``BEGIN IMMEDIATE``
(``db.write_transaction``) waits its turn instead.  The manifests written
for the jobs handled before the failure also stay changed while the
database rolled back.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from cryodesk.core import actions, jobs, projects
from cryodesk.db.models import Job


def test_link_waits_for_a_concurrent_writer(database, project, monkeypatch):
    ws2 = projects.create_workspace(project, "second")
    a = jobs.create_job(project, "h_source", "W1")
    b = jobs.create_job(project, "h_source", "W1")
    real, fired, other_done = actions._linked, [], []

    def heartbeat():  # another process's writer, committing whenever SQLite lets it
        other = sqlite3.connect(database.database, timeout=30)
        other.execute("UPDATE job SET heartbeat_at = '2030-01-01 00:00:00' WHERE id = ?", (a.id,))
        other.commit()
        other.close()
        other_done.append(True)

    def linked_then_other_process_writes(job, ws):
        out = real(job, ws)  # our transaction has read: its snapshot is taken
        if not fired:
            t = threading.Thread(target=heartbeat)
            t.start()
            fired.append(t)
            t.join(0.5)  # a deferred transaction lets it commit now; an immediate one makes it wait for us
        return out

    monkeypatch.setattr(actions, "_linked", linked_then_other_process_writes)
    result = actions.link(project, [Job.get_by_id(a.id), Job.get_by_id(b.id)], ws2)
    fired[0].join(30)
    assert fired and result.ok and other_done  # both writers got their turn, neither failed
    for j in (a, b):
        assert json.loads((Path(project.directory) / j.directory / "job.json").read_text())["workspaces"] == ["W1", "W2"]
