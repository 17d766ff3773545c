"""Review of the Qt-free job run path, the hourly temp walk and the float16 restack (p19): regressions."""

from __future__ import annotations

import pytest

from cryodesk.cli.main import main


@pytest.mark.parametrize("argv", [["--help", "job"], ["-h", "job", "run"], ["--db", "x.sqlite", "-h", "cleanup"]])
def test_top_level_help_before_a_command_still_lists_every_command(argv, capsys):
    # the parser of only the named command is built; a -h before that name is the whole program's help
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("job", "cleanup", "project", "worker", "lane", "settings"):
        assert f"    {command} " in out, out


def test_float16_restack_gives_the_same_nan_bits_with_numpy_as_with_numba():
    # a restack below 1 GiB now casts with numpy; its NaN pixels (kept by a float16 restack) must get the
    # bits the numba kernel (every float16 restack before) writes: numpy keeps a signalling NaN signalling
    import numpy as np

    from cryodesk.kernels.batch import ParticleTransform

    bits = np.zeros((2, 4, 4), np.uint32)
    bits[0].flat[:10] = [0x7FA00000, 0x7F800001, 0xFF800001, 0x7F802001, 0x7FC00000, 0xFFC00000, 0x7FBFFFFF,
                         0x7F801FFF, 0x3F800000, 0xFFA00000]
    x = bits.view(np.float32)
    got = {}
    for kernel in ("numpy", "numba"):
        t = ParticleTransform(2, (4, 4), np.float32, float16=True, float16_kernel=kernel)
        t.inspect(x, 0)
        got[kernel] = t(x, np.empty((2, 4, 4), np.float16), 0).view(np.uint16).tolist()
    assert got["numpy"] == got["numba"]
