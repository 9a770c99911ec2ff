"""The engine's Python API under bad input: InputErrors naming the problem, never a traceback; outputs that are
symbolic links keep pointing at the new file; audio that would clip is normalised for the sound track, with a word
in the log."""
from __future__ import annotations

import logging
import os

import av
import numpy as np
import pytest
import torch
from reliability_utils import earlier_video, frames, tone, unchanged
from wanvideo_infinitetalk_pack.nodes.audio_nodes import InfiniteTalkAudioEmbeds
from wanvideo_infinitetalk_pack.wanvideo.audio.tiny import tiny_wav2vec2
from wanvideo_infinitetalk_pack.wanvideo.errors import InputError as PackInputError

from wanvideo.errors import InputError, OutputError
from wanvideo.video import encode_video, write_video


def test_a_frame_rate_near_zero_with_audio_is_refused(tmp_path):
    with pytest.raises(InputError, match="frame_rate 1e-06 is below the lowest 0.01 frames per second"):
        write_video(frames(5), tmp_path / "a.mp4", 1e-6, audio=tone(1.0), sample_rate=16000)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("metadata, words", [
    ({"workflow": object()}, "metadata 'workflow' cannot be stored"),
    ({"prompt": {1, 2}}, "metadata 'prompt' cannot be stored"),
    (["not", "a", "dict"], "metadata must be a dict"),
], ids=["object", "set", "list"])
def test_metadata_that_is_not_json_is_refused(tmp_path, metadata, words):
    with pytest.raises(InputError, match=words):
        write_video(frames(5), tmp_path / "a.mp4", 25, metadata=metadata)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("shape", [(1, 0, 16000), (0, 16000)], ids=["batch-no-channels", "no-channels"])
def test_an_audio_waveform_without_channels_is_refused(shape):
    with pytest.raises(PackInputError, match="has no channels or no samples"):
        InfiniteTalkAudioEmbeds().embed(tiny_wav2vec2(seed=0), {"waveform": torch.zeros(shape), "sample_rate": 16000})


def test_a_symlinked_output_is_written_to_its_target(tmp_path):
    target = tmp_path / "real" / "talk.mp4"
    target.parent.mkdir()
    old = earlier_video(target)
    link = tmp_path / "talk.mp4"
    link.symlink_to(target)
    write_video(frames(9), link, 25, writer="pyav")
    assert link.is_symlink() and os.readlink(link) == str(target)  # the link is still the link
    assert not unchanged(target, old)  # and its target holds the new video
    with av.open(str(link)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 9
    assert sorted(p.name for p in target.parent.iterdir()) == ["talk.mp4"]  # no temporary left


def test_a_symlink_into_a_missing_folder_is_refused(tmp_path):
    link = tmp_path / "talk.mp4"
    link.symlink_to(tmp_path / "gone" / "talk.mp4")
    with pytest.raises(OutputError, match="symbolic link to .*whose folder does not exist"):
        write_video(frames(5), link, 25)
    assert not (tmp_path / "gone").exists()


def _peak(path) -> float:
    with av.open(str(path)) as container:
        chunks = [f.to_ndarray().astype(np.float32) for f in container.decode(audio=0)]
    return float(np.abs(np.concatenate(chunks, axis=1)).max())


def test_audio_that_would_clip_is_normalised_and_logged(tmp_path, caplog):
    loud = tone(1.0) * 1000.0  # peaks of 300 times full scale
    with caplog.at_level(logging.WARNING):
        result = encode_video(frames(25), tmp_path / "loud.mp4", 25, audio=loud, sample_rate=16000, writer="pyav")
    assert result.has_audio
    assert _peak(tmp_path / "loud.mp4") < 1.05  # AAC overshoots a little; clipped audio would sit at 1.0 flat
    assert "would clip: normalised for the video's sound track" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        encode_video(frames(25), tmp_path / "quiet.mp4", 25, audio=tone(1.0), sample_rate=16000, writer="pyav")
    assert "would clip" not in caplog.text
    assert _peak(tmp_path / "quiet.mp4") == pytest.approx(0.3, abs=0.05)  # quiet audio is left as it was
