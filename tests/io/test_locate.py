"""Where imported stacks are found: under particle_blob_path or the metadata file, never outside."""

from __future__ import annotations

from pathlib import Path

import pytest

from cryodesk.base.errors import DataError
from cryodesk.io.locate import inside, locate_stacks


@pytest.fixture
def relion_project(tmp_path):
    """A RELION layout: stacks in Extract/job007, a STAR two levels down in Select/job009."""
    proj = tmp_path / "proj"
    (proj / "Extract/job007/Movies").mkdir(parents=True)
    (proj / "Extract/job007/Movies/a.mrcs").write_bytes(b"")
    (proj / "Select/job009").mkdir(parents=True)
    (tmp_path / "outside.mrcs").write_bytes(b"")
    return proj


def test_project_relative_paths_under_blob_path(relion_project):
    star_dir = relion_project / "Select/job009"
    got = locate_stacks(["Extract/job007/Movies/a.mrcs"], relion_project, star_dir, relion_project, "p.star")
    assert got == {"Extract/job007/Movies/a.mrcs": relion_project / "Extract/job007/Movies/a.mrcs"}


def test_dotdot_paths_relative_to_the_star_file(relion_project):
    star_dir = relion_project / "Select/job009"
    raw = "../../Extract/job007/Movies/a.mrcs"
    got = locate_stacks([raw], relion_project, star_dir, relion_project, "p.star")
    assert got[raw] == relion_project / "Extract/job007/Movies/a.mrcs"
    # without particle_blob_path the STAR's directory is all the user pointed at
    with pytest.raises(DataError, match=r"p\.star: stack path '\.\./\.\./Extract.*escapes .*job009.*particle_blob_path"):
        locate_stacks([raw], star_dir, star_dir, star_dir, "p.star")
    # and nothing reaches beyond the project, whichever base it is tried under
    with pytest.raises(DataError, match="escapes"):
        locate_stacks(["../../../outside.mrcs"], relion_project, star_dir, relion_project, "p.star")


def test_missing_stack_is_reported_where_it_was_looked_for(relion_project):
    star_dir = relion_project / "Select/job009"
    got = locate_stacks(["Extract/nope.mrcs"], relion_project, star_dir, relion_project, "p.star")
    assert got["Extract/nope.mrcs"] == relion_project / "Extract/nope.mrcs"


def test_cryosparc_relative_absolute_and_empty(tmp_path):
    (tmp_path / "exp").mkdir()
    got = locate_stacks([b">stacks/x.mrc", "/abs/y.mrc"], tmp_path / "proj", tmp_path / "exp", tmp_path / "proj", "e.cs")
    assert got == {">stacks/x.mrc": tmp_path / "exp/stacks/x.mrc", "/abs/y.mrc": Path("/abs/y.mrc")}
    with pytest.raises(DataError, match="escapes"):
        locate_stacks([">../x.mrc"], tmp_path, tmp_path / "exp", tmp_path, "e.cs")
    with pytest.raises(DataError, match="empty stack path"):
        locate_stacks([""], tmp_path, tmp_path, tmp_path, "e.cs")


def test_inside_is_lexical(tmp_path):
    assert inside(tmp_path / "a/../b", tmp_path) and inside(tmp_path, tmp_path)
    assert not inside(tmp_path / "../x", tmp_path) and not inside(str(tmp_path) + "x", tmp_path)


def test_cached_normalisation_is_normpath():
    import os

    from cryodesk.io.locate import _normpath

    cache: dict[str, str] = {}
    paths = ["/a/b/c.mrc", "/a/b/../c.mrc", "/a/./b/c.mrc", "/a//b/c.mrc", "//a/c.mrc", "///a/c.mrc", "/c.mrc",
             "//c.mrc", "/a/b/.", "/a/b/..", "/a/b/", "/", "//", "a/b/c.mrc", "./c.mrc", "../c.mrc", "c.mrc", "",
             "/a/b/...", "/a/b/..c", "/a/b/.c", "/a/link/../c.mrc", "/a/b//", "/../c.mrc", "/a/b/c.mrc"]
    for p in paths * 2:  # the second time from the cache
        assert _normpath(p, cache) == os.path.normpath(p), p
    import random

    rnd = random.Random(5)
    parts = ["a", "b", "..", ".", "", "x.mrc", "...", "/"]
    for _ in range(3000):
        p = "/".join(rnd.choice(parts) for _ in range(rnd.randint(1, 6)))
        p = rnd.choice(["", "/", "//"]) + p
        assert _normpath(p, cache) == os.path.normpath(p), p


def _reference_locate(texts, base, meta_dir, root):
    """The lookup as written before the per-directory cache: every candidate joined and normalised whole."""
    import os

    base_s, meta_s = os.path.abspath(base), os.path.abspath(meta_dir)
    root_s = os.path.normpath(os.path.abspath(root))
    out = {}
    for text in texts:
        if text.startswith(">"):
            cands, limit = [os.path.join(meta_s, text[1:])], os.path.normpath(meta_s)
        elif os.path.isabs(text):
            out[text] = Path(text)
            continue
        else:
            cands, limit = [os.path.join(base_s, text), os.path.join(meta_s, text)], root_s
        ok = [c for c in dict.fromkeys(os.path.normpath(c) for c in cands)
              if c == limit or c.startswith(limit.rstrip(os.sep) + os.sep)]
        out[text] = Path(next((c for c in ok if os.path.exists(c)), ok[0])) if ok else "escapes"
    return out


@pytest.mark.parametrize("layout", ["nested", "same", "apart"])
def test_cached_lookup_is_the_whole_path_lookup(tmp_path, layout):
    import random

    proj = tmp_path / "proj"
    meta_dir = {"nested": proj / "J9" / "exp", "same": proj, "apart": tmp_path / "meta"}[layout]
    for d in (proj / "a" / "b", meta_dir / "a", tmp_path / "meta"):
        d.mkdir(parents=True, exist_ok=True)
    for f in (proj / "a" / "x.mrc", proj / "a" / "b" / "x.mrc", meta_dir / "a" / "x.mrc", meta_dir / "x.mrc",
              proj / "x.mrc", tmp_path / "meta" / "..."):
        f.write_bytes(b"")
    rnd = random.Random(19)
    parts = ["a", "b", "..", ".", "", "x.mrc", "...", "J9", "exp", "meta", "proj"]
    texts = []
    for _ in range(1500):
        t = "/".join(rnd.choice(parts) for _ in range(rnd.randint(1, 5)))
        texts.append(rnd.choice(["", "", ">", "/", "//", ">/"]) + t)
    want = _reference_locate(list(dict.fromkeys(t for t in texts if t not in ("", ">"))), proj, meta_dir, proj)
    for text, expected in want.items():
        try:
            got = locate_stacks([text], proj, meta_dir, proj, "p.cs")[text]
        except DataError as exc:
            assert "escapes" in str(exc), (text, exc)
            got = "escapes"
        assert got == expected, text
    many = locate_stacks([t for t in want if want[t] != "escapes"], proj, meta_dir, proj, "p.cs")  # one cache
    assert many == {t: p for t, p in want.items() if p != "escapes"}
