"""Issue 20 item 11: a job tree whose crafted database rows hold cycles loads at once, with a warning."""

from __future__ import annotations

import time

from cryodesk.db.models import Connection, Job


def test_tree_with_cycles_loads_and_warns(demo, make_window, artifacts_dir):
    j = {x.number: x for x in Job.select().where(Job.project == demo.id)}
    for child, parent in ((j[2], j[2]), (j[1], j[3])):  # J2 is its own input; J1 reads J3, which reads J1
        Connection.create(project=demo, child=child, parent=parent, slot="particles", output="particles",
                          position=1)
    t0 = time.monotonic()
    win = make_window(("P1", "W1"))
    assert time.monotonic() - t0 < 5.0
    assert len(win.view.scene().snap) == 9  # every job drawn
    msg = win.statusBar().currentMessage()
    assert "form a cycle" in msg and "J1" in msg and "J2" in msg, msg
    win.grab().save(str(artifacts_dir / "ui_tree_with_cycle_warning.png"))
