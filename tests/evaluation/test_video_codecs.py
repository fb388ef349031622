import numpy as np
import pytest

from motionbits.evaluation.video_codecs import CODECS, LOW_DELAY, code_with
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


@pytest.mark.parametrize("codec", LOW_DELAY)
def test_the_low_delay_settings_put_out_each_frame_as_it_comes(codec):
    """A call cannot wait for later frames: the low-delay series hold none back, the usual presets do."""
    frames = moving_square_video(frames=12, size=64)
    assert code_with(frames, codec, 30, fps=10).delay_frames == 0
    usual = codec.removesuffix(" low-delay")
    assert code_with(frames, usual, 30, fps=10).delay_frames > 0
