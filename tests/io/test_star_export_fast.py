"""The STAR export's shortcuts against their plain definitions: optics groups from run heads, coded text
columns written by the row kernel (byte for byte what the materialised columns give)."""

from __future__ import annotations

import numpy as np

from cryodesk.io import relion_optics
from cryodesk.io.conversion import ConversionReport

RNG = np.random.default_rng(19)


def _groups_reference(eg, optics_cols):
    """One group per distinct (eg, values) row, in lexicographic order (numpy's row unique of the ranks)."""
    cols = [eg] + list(optics_cols.values())
    codes = np.stack([np.unique(c, return_inverse=True)[1].ravel() for c in cols], axis=1)
    _, first, inv = np.unique(codes, axis=0, return_index=True, return_inverse=True)
    return first, inv.ravel()


def test_optics_groups_from_run_heads_equal_the_row_unique():
    values = np.array([0.0, -0.0, 1.5, 2.0, np.nan, 1e-7, 300.0])
    for trial in range(40):
        n = int(RNG.integers(1, 300))
        n_kinds = int(RNG.integers(1, 6))
        eg_of = RNG.integers(1, 4, n_kinds)
        kinds = RNG.integers(0, len(values), (n_kinds, 3))
        pick = RNG.integers(0, n_kinds, n)
        if trial % 2:  # in runs, as particles of a micrograph come
            pick = np.sort(pick)
        eg = eg_of[pick].astype(np.int64)
        cols = {"rlnVoltage": np.full(n, 300.0, np.float32), "rlnBeamTiltX": values[kinds[pick, 0]],
                "rlnBeamTiltY": values[kinds[pick, 1]].astype(np.float32),
                "rlnImageSize": (kinds[pick, 2] % 2 + 8).astype(np.uint32)}
        got = relion_optics.assign_groups(eg, cols, ConversionReport("x"))
        first, inv = _groups_reference(eg, cols)
        np.testing.assert_array_equal(got.first, first)
        np.testing.assert_array_equal(got.index, inv)
        np.testing.assert_array_equal(got.exp_group, eg[first])


def test_symlink_all_makes_every_link_and_raises_the_first_failure(tmp_path):
    import errno
    import os

    import pytest

    from cryodesk.io import symlinks

    (tmp_path / "links").mkdir()
    pairs = [(str(tmp_path / f"target {k} é.mrc"), f"n{k}.mrc") for k in range(5)]
    (tmp_path / "links" / "n3.mrc").write_bytes(b"")  # in the way of the fourth
    fd = os.open(tmp_path / "links", os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(FileExistsError) as err:
            symlinks.symlink_all(fd, symlinks.prepare(pairs))
        assert err.value.errno == errno.EEXIST and err.value.filename2 == "n3.mrc"
        assert sorted(os.listdir(fd)) == ["n0.mrc", "n1.mrc", "n2.mrc", "n3.mrc"]
        assert [os.readlink(f"n{k}.mrc", dir_fd=fd) for k in range(3)] == [t for t, _ in pairs[:3]]
        (tmp_path / "links" / "n3.mrc").unlink()
        symlinks.symlink_all(fd, symlinks.prepare(pairs[3:]))
        assert [os.readlink(f"n{k}.mrc", dir_fd=fd) for k in range(5)] == [t for t, _ in pairs]
    finally:
        os.close(fd)
    with pytest.raises(ValueError, match="NUL"):
        symlinks.prepare([("a\0b", "x")])


def test_coded_columns_write_the_bytes_of_their_rows(tmp_path):
    """Coded text (tables of names, carried vectors, n@path) through the row kernel: the file the
    materialised columns give, quoting, NULs, non-ASCII, keywords, empty values and big numbers included."""
    import pytest

    from cryodesk.io import star
    from cryodesk.io.star_columns import CodedText, ImageNames, materialise

    n = 3000
    table = np.array([b"mics/a.mrc", b"has space.mrc", b"x\x00y.mrc", "é.mrc".encode(), b"data_x", b"loop_",
                      b"", b"#c", b"'q", b"_lead", b"[1.5,-0.0]", b"stop_it"])
    paths = np.array(["stacks/a.mrcs", "stacks/b.mrcs", "st\x00acks/c.mrcs", "stacks/d.mrcs"])
    index = RNG.integers(0, len(table), n)
    idx0 = RNG.integers(0, 2_000_000, n).astype(np.uint32)
    idx0[:5] = [0, 999_998, 999_999, 1_000_000, 4_294_967_294]
    pidx = np.sort(RNG.integers(0, len(paths), n))
    from cryodesk.io.star_images import image_name_bytes

    paths = np.char.encode(paths, "utf-8")
    np.testing.assert_array_equal(np.asarray(ImageNames(idx0, paths, pidx)), image_name_bytes(idx0, (paths, pidx)))
    cols = {"rlnImageName": ImageNames(idx0, paths, pidx), "rlnMicrographName": CodedText(table, index),
            "rlnDefocusU": RNG.normal(1e4, 50, n), "rlnVec": CodedText(table[6:], np.arange(n) % 6)}
    for name, columns in (("coded", cols), ("quoted names", {**cols, "rlnImageName": ImageNames(
            idx0, np.array([b"a b.mrcs", b"c.mrcs"]), pidx % 2)}), ("plain", materialise(cols))):
        a = star.write_star(tmp_path / f"{name}.star", {"particles": star.StarBlock("particles", columns=columns)})
        b = star.write_star(tmp_path / f"{name}-rows.star",
                            {"particles": star.StarBlock("particles", columns=materialise(columns))})
        assert a.read_bytes() == b.read_bytes(), name
    from cryodesk.io import star_write

    if star_write._k() is not None:  # the coded kinds were taken (n@path with a blank: written as rows)
        from cryodesk.io._star_write_kernels import IMAGE, TABLE, TEXT

        assert star_write._Plan(list(cols.values()), star._text, star._quote_bytes).kinds == [IMAGE, TABLE, 0, TABLE]
        quoted = ImageNames(idx0, np.array([b"a b.mrcs", b"c.mrcs"]), pidx % 2)
        assert star_write._Plan([quoted], star._text, star._quote_bytes).kinds == [TEXT]
    np.testing.assert_array_equal(np.asarray(cols["rlnMicrographName"]), table[index])
    assert cols["rlnImageName"][3] == b"1000001@" + paths[pidx[3]]
    assert bytes(cols["rlnImageName"][0]).startswith(b"000001@")
    back = star.read_star(tmp_path / "coded.star")["particles"].columns
    assert back["rlnImageName"][:2].tolist() == [f"{i + 1:06d}@{paths[p].decode()}".replace("\x00", "") for i, p in
                                                 zip(idx0[:2].tolist(), pidx[:2].tolist())]
    bad = {"rlnA": CodedText(np.array([b"ok", b"line\nbreak"]), np.arange(n) % 2)}
    with pytest.raises(Exception, match="line break"):
        star.write_star(tmp_path / "bad.star", {"b": star.StarBlock("b", columns=bad)})
