"""The GUI thread stays responsive while pool threads work (measured, generous bound)."""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer

from cryodesk.core import jobs


def _probe(qtbot, engine, start, timeout_ms=30000) -> float:
    """Largest gap (ms) between 10 ms timer ticks in the GUI thread while ``start()``'s work runs."""
    gaps, last = [], [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(tick)
    timer.start()
    try:
        with qtbot.waitSignal(engine.idle, timeout=timeout_ms):
            start()
    finally:
        timer.stop()
    return 1000 * max(gaps[1:] or [0.0])


def test_gui_thread_stays_responsive_during_cpu_and_io_work(qtbot, engine, project, capsys):
    burners = [jobs.create_job(project, "e_burn", "W1", params={"seconds": 1.0}) for _ in range(2)]

    def io_burn(progress, cancel):  # a pure-Python "copy" on the io pool at the same time
        end = time.monotonic() + 1.0
        x = 0
        while time.monotonic() < end:
            x += sum(range(5000))
            progress(0.5, "copying")
        return x

    def start():
        engine.queue(project, burners)
        engine.submit_task("io burn", io_burn)

    stall = _probe(qtbot, engine, start)
    with capsys.disabled():
        print(f"\n[engine] max GUI-thread stall with 2 CPU jobs + 1 io task (pure Python): {stall:.1f} ms")
    assert all(j.status == "completed" for j in jobs.refresh(burners))
    assert stall < 500
