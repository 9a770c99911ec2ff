"""Window bookkeeping: the reference's streaming example, exact output length, clear errors."""
import json

import pytest
import torch

from wanvideo.errors import InputError
from wanvideo.sampling import audio_rows, gather_audio, plan_windows
from wanvideo.sampling.windows import covering_window


def _windows_fixture(fixtures_dir):
    return json.loads((fixtures_dir / "schedules_and_windows.json").read_text())["audio_windows"]


def test_streaming_example_of_the_reference(fixtures_dir):
    ex = _windows_fixture(fixtures_dir)["streaming_example"]
    windows = plan_windows(ex["embedding_length"], ex["frame_num"], ex["motion_frame"])
    assert len(windows) == len(ex["clips"])
    video_rows = []
    for window, clip in zip(windows, ex["clips"], strict=False):
        assert (window.start, window.end) == (clip["audio_start_idx"], clip["audio_end_idx"])
        rows = audio_rows(window, ex["embedding_length"])
        assert rows.tolist() == clip["windows_original_rows"]
        kept = list(range(window.drop, window.drop + window.keep))
        # the reference keeps the same frames and cuts the overshoot at the very end
        assert kept == clip["frames_kept_from_clip"][:len(kept)]
        video_rows += rows[window.drop:window.drop + window.keep].tolist()
    assert video_rows == ex["final_video_rows_per_frame"]


def test_single_window_rows_clamp_at_the_start(fixtures_dir):
    ex = _windows_fixture(fixtures_dir)["example_30_frames"]
    n = ex["embedding_length"]
    window = plan_windows(n, 33, 9)[0]  # one window longer than the audio
    rows = audio_rows(window, n)[:n]
    # away from the end the rows are the plain clamp(f-2 .. f+2); near the end the reference reflects
    assert rows[:n - 2].tolist() == ex["rows_per_frame"][:n - 2]


@pytest.mark.parametrize("total", [1, 5, 16, 17, 18, 25, 30, 33, 80, 81, 82, 153, 154, 1000])
@pytest.mark.parametrize("window,motion", [(17, 9), (81, 9), (81, 25), (9, 1)])
def test_windows_produce_exactly_the_requested_frames_in_order(total, window, motion):
    windows = plan_windows(total, window, motion)
    produced = []
    for w in windows:
        assert (w.length - 1) % 4 == 0
        assert w.keep >= 1
        produced += range(w.first_kept, w.first_kept + w.keep)
        if w.index:
            assert w.drop == motion and w.start == windows[w.index - 1].end - motion
    assert produced == list(range(total))


def test_audio_shorter_than_one_window_shrinks_the_window():
    (w,) = plan_windows(10, 81, 9)
    assert (w.length, w.keep) == (13, 10)
    assert covering_window(1) == 1 and covering_window(2) == 5 and covering_window(81) == 81


def test_gather_audio_layout():
    emb = [torch.arange(30.0).view(30, 1, 1).expand(30, 2, 3), 100 + torch.arange(30.0).view(30, 1, 1).expand(30, 2, 3)]
    window = plan_windows(30, 17, 9)[1]
    audio = gather_audio(emb, window)
    assert audio.shape == (2, 17, 5, 2, 3)
    assert audio[0, 0, :, 0, 0].tolist() == [6, 7, 8, 9, 10]
    assert audio[1, 0, :, 0, 0].tolist() == [106, 107, 108, 109, 110]


@pytest.mark.parametrize("window,motion,match", [
    (80, 9, "4n\\+1"), (81, 81, "smaller than frame_window"), (17, 20, "smaller than frame_window"), (81, 0, "at least 1"),
])
def test_bad_windows_are_explained(window, motion, match):
    with pytest.raises(InputError, match=match):
        plan_windows(100, window, motion)


def test_empty_audio_is_explained():
    with pytest.raises(InputError, match="0 frames"):
        plan_windows(0, 81, 9)
