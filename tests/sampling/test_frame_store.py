"""The disk frame store: lossless, window by window, resumable, and safe against half-written files."""
import json
import os

import numpy as np
import pytest
import torch

from wanvideo.video.frame_store import FrameStore, FrameStoreError

KEY = "0123456789abcdef0123456789abcdef"


def _frames(n, h=48, w=64, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


def _open(root, **kw):
    args = dict(width=64, height=48, fps=25.0, total_frames=20, num_windows=3)
    args.update(kw)
    return FrameStore.open_for_run(str(root), KEY, **args)


def test_frames_round_trip_losslessly_and_in_order(tmp_path):
    store = _open(tmp_path)
    chunks = [_frames(8, seed=1), _frames(7, seed=2), _frames(5, seed=3)]
    state = {"motion_latent": torch.randn(16, 3, 6, 8)}
    for i, chunk in enumerate(chunks):
        store.write_window(i, chunk, state if i < 2 else None)
        assert len(store) == sum(len(c) for c in chunks[:i + 1])
    store.mark_complete()
    everything = np.concatenate(chunks)
    again = FrameStore(store.path)  # a consumer opening it from disk
    assert (len(again), again.fps, again.width, again.height, again.complete) == (20, 25.0, 64, 48, True)
    assert np.array_equal(np.stack(list(again.iter_frames())), everything)
    assert np.array_equal(again.read_frames(5, 6), everything[5:11])  # a slice across two segments
    assert np.array_equal(again.read_frames(18), everything[18:])
    assert again.read_frames(20).shape == (0, 48, 64, 3)


def test_store_is_compact_on_real_video(tmp_path, media_dir):
    import av

    with av.open(str(media_dir / "source_talk_4s.mp4")) as container:
        frames = np.stack([f.to_ndarray(format="rgb24") for _, f in zip(range(16), container.decode(video=0), strict=False)])
    h, w = frames.shape[1:3]
    store = FrameStore.open_for_run(str(tmp_path), KEY, width=w, height=h, fps=25.0, total_frames=16, num_windows=1)
    store.write_window(0, frames)
    assert np.array_equal(store.read_frames(), frames)
    on_disk = sum(os.path.getsize(os.path.join(store.path, f)) for f in os.listdir(store.path))
    assert on_disk < frames.nbytes / 5


def test_rerun_resumes_with_finished_windows_and_their_state(tmp_path):
    store = _open(tmp_path)
    latent = torch.randn(16, 3, 6, 8)
    store.write_window(0, _frames(8, seed=1), {"motion_latent": latent})
    resumed = _open(tmp_path)
    assert resumed.path == store.path and resumed.finished_windows == 1 and len(resumed) == 8
    assert torch.equal(resumed.load_state()["motion_latent"], latent)


def test_half_written_and_truncated_windows_are_redone(tmp_path):
    store = _open(tmp_path)
    store.write_window(0, _frames(8, seed=1), {"motion_latent": torch.zeros(1)})
    store.write_window(1, _frames(7, seed=2), {"motion_latent": torch.ones(1)})
    # a crash while writing window 2 leaves a temp file; a damaged disk truncates window 1
    open(os.path.join(store.path, "window_00002.mkv.tmp"), "wb").write(b"partial")
    seg = os.path.join(store.path, "window_00001.mkv")
    with open(seg, "r+b") as handle:
        handle.truncate(os.path.getsize(seg) // 2)
    resumed = _open(tmp_path)
    # window 1 is damaged: it is made again from window 0's state, kept beside window 0
    assert resumed.finished_windows == 1 and len(resumed) == 8 and resumed.windows_to_make() == [1, 2]
    assert torch.equal(resumed.load_state(0)["motion_latent"], torch.zeros(1))
    assert _visible(resumed.path) == ["manifest.json", "state_00000.safetensors", "state_00001.safetensors",
                                      "window_00000.mkv"]  # (+ the run's .lock); state 1 is still intact


def _visible(folder) -> list:
    return sorted(n for n in os.listdir(folder) if not n.startswith("."))


def test_crash_after_segment_before_manifest_keeps_the_previous_state(tmp_path):
    store = _open(tmp_path)
    store.write_window(0, _frames(8, seed=1), {"motion_latent": torch.zeros(2)})
    # window 1's segment landed but the process died before the manifest update
    open(os.path.join(store.path, "window_00001.mkv"), "wb").write(b"orphan")
    resumed = _open(tmp_path)
    assert resumed.finished_windows == 1
    assert torch.equal(resumed.load_state()["motion_latent"], torch.zeros(2))
    assert _visible(resumed.path) == ["manifest.json", "state_00000.safetensors", "window_00000.mkv"]


def test_a_different_run_shape_starts_afresh(tmp_path):
    store = _open(tmp_path)
    store.write_window(0, _frames(8, seed=1), {"motion_latent": torch.zeros(2)})
    other = _open(tmp_path, total_frames=30)
    assert other.finished_windows == 0 and other.total_frames == 30


def test_misuse_is_refused(tmp_path):
    store = _open(tmp_path)
    with pytest.raises(FrameStoreError, match="out of order"):
        store.write_window(1, _frames(8))
    with pytest.raises(FrameStoreError, match="uint8"):
        store.write_window(0, _frames(8).astype(np.float32))
    with pytest.raises(FrameStoreError, match="not complete"):
        store.mark_complete()
    with pytest.raises(FrameStoreError, match="no frame store"):
        FrameStore(str(tmp_path / "nowhere"))
    manifest = os.path.join(store.path, "manifest.json")
    json.dump({"format": "something else"}, open(manifest, "w"))
    with pytest.raises(FrameStoreError, match="not a"):
        FrameStore(store.path)


def test_missing_segment_is_reported_by_name(tmp_path):
    store = _open(tmp_path)
    store.write_window(0, _frames(8, seed=1), {"motion_latent": torch.zeros(2)})
    os.remove(os.path.join(store.path, "window_00000.mkv"))
    with pytest.raises(FrameStoreError, match="window_00000.mkv is missing"):
        list(FrameStore(store.path).iter_frames())
