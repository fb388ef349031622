import numpy as np
import pytest

from motionbits.evaluation.video_codecs import CODECS, code_with
from tests.helpers import moving_square_video


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_codecs_round_trip_and_spend_fewer_bytes_at_a_higher_crf(codec):
    frames = moving_square_video(frames=12, size=64)
    fine, coarse = code_with(frames, codec, 18, fps=10), code_with(frames, codec, CODECS[codec][1], fps=10)
    assert fine.frames.shape == coarse.frames.shape == frames.shape
    assert coarse.bytes < fine.bytes and 0 < fine.first_frame_bytes < fine.bytes
    error = lambda coded: np.abs(coded.frames.astype(int) - frames).mean()  # noqa: E731
    assert error(fine) < error(coarse)
    assert fine.kbps(10, 12) == pytest.approx(8 * fine.bytes * 10 / 12 / 1000)
    with pytest.raises(ValueError):
        code_with(frames, codec, 99, fps=10)
