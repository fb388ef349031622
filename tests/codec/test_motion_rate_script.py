"""scripts/motion_rate.py: the motion's coded rate against its ideal code length, per tables."""
import numpy as np

from motionbits.api import MotionBits
from tests.test_scripts import load_script


def test_the_rate_table_codes_the_clip_and_packets_of_more_windows_cost_less(run, sprites_root, capsys):
    script = load_script("motion_rate")
    pipe = MotionBits.from_checkpoint(run)
    frames = np.concatenate(list(np.load(sprites_root / "test.npz")["frames"][:3]))        # 24 frames
    one, two = (script.rate_rows(pipe, frames, 8.0, packet_windows=p) for p in (1, 2))
    assert [r["tables"] for r in one] == ["static", "adaptive"] and one[0]["frames"] == 24
    for a, b in zip(one, two):
        assert a["ideal"] == b["ideal"] < b["coded"] < a["coded"]     # the same codes; fewer packets' ends
        assert a["coded"] - a["ideal"] <= (16 + 10) / 4               # length, CRC-8, code word end: per 4 frames
    script.main([f"sprites:{sprites_root}:test:0", "--checkpoint", str(run)])
    out = capsys.readouterr().out
    assert "| static | 1 (3) |" in out and "| adaptive | 1 (3) |" in out and "prior" not in out
