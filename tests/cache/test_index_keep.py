"""The cache index keeps one idle connection open, so an operation's close never checkpoints (an fsync) the WAL."""

from __future__ import annotations

import os

from cryodesk.cache.index import Entry, Index, drop_kept_connections


def test_operations_do_not_checkpoint_until_the_kept_connection_closes(tmp_path):
    idx = Index(tmp_path)
    idx.put(Entry("k", "file", "files/k", 1, 2, 1, "", "ready", 0, 0.0, 0.0))
    wal = tmp_path / "index.sqlite-wal"
    assert wal.exists() and wal.stat().st_size > 0  # the put's own close was not the last one
    assert idx.get("k").state == "ready"
    drop_kept_connections(tmp_path / "index.sqlite")
    assert not wal.exists()  # the last close checkpointed it into the database
    assert Index(tmp_path).get("k").size == 1 and os.path.getsize(tmp_path / "index.sqlite") > 0
    drop_kept_connections()
