"""`motionbits score --json` prints standard JSON: a measure that is not finite (the PSNR of two
identical videos) is null, never Python's `Infinity`, which jq and JSON.parse refuse."""
import json
import math

import numpy as np

from motionbits.cli import main
from motionbits.json_text import dumps_standard, finite_or_null


def _strict(text: str):
    def refuse(name):
        raise ValueError(f"not standard JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def test_non_finite_numbers_become_null_at_any_depth():
    value = {"psnr": math.inf, "rows": [1.5, -math.inf, (math.nan, 2)], "name": "a", "n": 3}
    assert finite_or_null(value) == {"psnr": None, "rows": [1.5, None, [None, 2]], "name": "a", "n": 3}
    assert _strict(dumps_standard(value)) == finite_or_null(value)


def test_numpy_floats_are_plain_numbers_or_null():
    assert _strict(dumps_standard({"psnr": np.float32("inf"), "l1": np.float64(0.5), "n": np.int64(3)})) == {
        "psnr": None, "l1": 0.5, "n": 3}


def test_score_json_of_identical_videos_is_standard_json(monkeypatch, capsys):
    import motionbits.data.media
    import motionbits.evaluation.faces

    frames = np.zeros((4, 16, 16, 3), np.uint8)
    monkeypatch.setattr(motionbits.data.media, "read_clip", lambda *args, **kwargs: frames)
    monkeypatch.setattr(motionbits.evaluation.faces, "score_pair", lambda *args, **kwargs: {
        "frames": 4, "reconstruction": {"l1": 0.0, "psnr_db": math.inf, "akd": None}})
    assert main(["score", "a.mp4", "b.mp4", "--json"]) == 0
    report = _strict(capsys.readouterr().out)
    assert report["reconstruction"] == {"l1": 0.0, "psnr_db": None, "akd": None}


def test_reports_are_written_as_standard_json(tmp_path):
    from motionbits.atomic_files import write_json_atomic

    write_json_atomic(tmp_path / "eval.json", {"psnr_db": math.inf, "rows": [{"r": math.nan}, {"r": 0.5}]})
    assert _strict((tmp_path / "eval.json").read_text()) == {"psnr_db": None, "rows": [{"r": None}, {"r": 0.5}]}
