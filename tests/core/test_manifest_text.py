"""Manifest text: the fast encoding is ``json.dumps(doc, indent=1, sort_keys=True, default=str)`` to the byte,
and the size a manifest records is the size of the job with that very manifest in it."""

from __future__ import annotations

import datetime as dt
import json
import math

import numpy as np
import pytest

from cryodesk.core import manifest


def _reference(doc) -> str:
    return json.dumps(doc, indent=1, sort_keys=True, default=str)


def _outputs(n, rng, odd=False):
    out = []
    for k in range(n):
        rec = {"group": "particles", "kind": "blob", "version": int(rng.integers(0, 3)),
               "path": f"J7/imported/stack_{k:05d}.mrc", "size_bytes": int(rng.integers(0, 2**40))}
        if odd:
            rec.update({"path": f'J7/imported/\u00e9t\u00e9 "{k}"\n\t\\{{}}\u2603.mrc', "ratio": [0.1, math.nan,
                        math.inf, -0.0, 1e300][k % 5], "flag": [True, False, None][k % 3], "Zlast": "}," * (k % 3)})
        out.append(rec)
    return out


def _doc(outputs, **extra):
    return {"format": 1, "uid": "J7", "type": "import_particles", "title": "t \u00fc", "status": "completed",
            "params": {"particle_meta_path": "/data/x.cs", "n": 3, "nested": {"b": [1, {"c": None}], "a": 2.5}},
            "settings": {}, "inputs": [{"slot": "particles", "parent": "J2", "output": "particles", "version": 0}],
            "outputs": outputs, "workspaces": ["W1", "W2"], "is_final": False, "is_ancestor_of_final": True,
            "size_bytes": 123, "error": None, "status_history": [["running", "2026-12-01T18:00:00"]],
            "created_at": dt.datetime(2026, 12, 1, 18, 0, 1, 5), **extra}


@pytest.mark.parametrize("n", [0, 1, 31, 32, 33, 500])
@pytest.mark.parametrize("odd", [False, True])
def test_same_text_as_json_dumps(n, odd):
    rng = np.random.default_rng(n)
    doc = _doc(_outputs(n, rng, odd))
    assert manifest._dumps(doc) == _reference(doc)


def test_same_text_for_other_shapes():
    rng = np.random.default_rng(1)
    flat = _outputs(40, rng)
    docs = [
        _doc(flat, exposures=[{"uid": f"E{k}", "outputs": {"a": k}} for k in range(40)]),  # nested: not flat
        _doc(flat + [{}], more=list(flat)),  # an empty record; two long lists
        _doc(flat, odd=[1] * 40, mixed=flat[:35] + [{"k": (1, 2)}]),  # a list of numbers; a tuple value
        _doc(flat, when=[{"t": dt.date(2026, 1, 1)} for _ in range(40)]),  # a value json cannot encode: default=str
        _doc(flat, **{"\x00cryodesk-manifest-outputs\x00": "the marker text itself"}),
        _doc([{**r, "note": "\x00cryodesk-manifest-more\x00"} for r in flat], more=list(flat)),
    ]
    for doc in docs:
        assert manifest._dumps(doc) == _reference(doc)


@pytest.mark.parametrize("base", [0, 5, 9_000, 9_977, 9_978, 99_700, 10**9 - 1100])
def test_recorded_size_is_the_size_with_the_manifest(tmp_path, base):
    rng = np.random.default_rng(base)
    doc = _doc(_outputs(40, rng))
    path = tmp_path / "job.json"
    size = manifest._write_sized(path, doc, base, durable=False)
    text = path.read_text()
    assert size == base + len(text.encode())
    assert json.loads(text)["size_bytes"] == size
    assert text == _reference({**doc, "size_bytes": size})
    # the least such size, as the step-by-step search from ``base`` finds it
    slow = tmp_path / "slow.json"
    assert manifest._write_sized_slow(slow, dict(doc), base, durable=False) == size
    assert slow.read_text() == text


def test_recorded_size_at_a_change_of_digits(tmp_path):
    doc = _doc(_outputs(40, np.random.default_rng(2)))
    fixed = len(_reference({**doc, "size_bytes": 0}).encode()) - 1  # without the number's one digit
    for digits in (5, 6):
        for j in range(-8, 4):
            base = 10**digits - fixed - digits + j  # around the sizes where the number gets a digit more
            fast = manifest._write_sized(tmp_path / "a.json", dict(doc), base, durable=False)
            assert fast == manifest._write_sized_slow(tmp_path / "b.json", dict(doc), base, durable=False), base
            assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
            assert fast == base + (tmp_path / "a.json").stat().st_size
