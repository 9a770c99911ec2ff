"""The Animate Preprocess node as ComfyUI calls it: a raw driving clip (IMAGE batch + fps) and the character in, the
pose/face (and background/mask) videos out, wired straight into the Animate sampler and Video Combine."""
import shutil

import numpy as np
import pytest
import torch
from testlib.comfy_doubles import HostVAE, TinyClipVision, TinyTextEncoder
from testlib.preprocess_fixtures import DETECTOR, POSE
from testlib.synthetic_person import person_clip, person_frame
from wanvideo_infinitetalk_pack import NODE_CLASS_MAPPINGS
from wanvideo_infinitetalk_pack.nodes import host
from wanvideo_infinitetalk_pack.nodes.animate_nodes import InfiniteTalkAnimateSampler
from wanvideo_infinitetalk_pack.nodes.animate_preprocess_nodes import InfiniteTalkAnimatePreprocess
from wanvideo_infinitetalk_pack.nodes.video_combine import InfiniteTalkVideoCombine
from wanvideo_infinitetalk_pack.wanvideo.errors import ModelFileError
from wanvideo_infinitetalk_pack.wanvideo.tiny import tiny_animate_models


@pytest.fixture
def detection_folder(tmp_path, monkeypatch):
    """models/detection with the stand-ins under the official file names."""
    folder = tmp_path / "detection"
    folder.mkdir()
    shutil.copy(DETECTOR, folder / "yolov10m.onnx")
    shutil.copy(POSE, folder / "vitpose_h_wholebody.onnx")
    monkeypatch.setattr(host, "model_folder_paths",
                        lambda *names: [str(folder)] if "detection" in names else [])
    return folder


def _clip(n=40):
    return torch.from_numpy(person_clip(n)).float() / 255.0


def _character():
    return torch.from_numpy(person_frame(3)).float()[None] / 255.0


def _widgets(**kw):
    args = dict(driving_fps=30.0, mode="animate", resolution_width=96, resolution_height=160, preprocess_fps=30.0,
                retarget=True, mask_kernel=7, mask_iterations=3, mask_grid_w=1, mask_grid_h=1)
    args.update(kw)
    return args


def test_registered_with_its_id():
    assert NODE_CLASS_MAPPINGS["InfiniteTalkAnimatePreprocess"] is InfiniteTalkAnimatePreprocess


def test_animate_mode_outputs(detection_folder, monkeypatch):
    texts = []
    monkeypatch.setattr(host, "send_progress_text", lambda text, node_id=None: texts.append(text))
    pose, face, background, mask, character, fps, count = InfiniteTalkAnimatePreprocess().preprocess(
        _clip(12), _character(), **_widgets(driving_fps=24.0))
    assert count == 15 and fps == 30.0  # 12 frames at 24 fps -> 15 at 30
    assert pose.shape == (15, 160, 80, 3) and face.shape == (15, 512, 512, 3)  # 96x160 area, character aspect
    assert pose.dtype == torch.float32 and 0 <= float(pose.min()) and float(pose.max()) <= 1 and pose.any()
    assert background is None and mask is None  # animation: the sampler's replacement inputs stay empty
    assert character.shape == (1, 160, 80, 3)
    assert "render: 15 frames" in texts


def test_replace_mode_outputs(detection_folder):
    pose, face, background, mask, character, fps, count = InfiniteTalkAnimatePreprocess().preprocess(
        _clip(6), _character(), **_widgets(mode="replace"))
    assert count == 6 and background.shape == pose.shape and mask.shape == pose.shape[:3]
    assert set(torch.unique(mask).tolist()) == {0.0, 1.0}
    assert character.shape == (1, *pose.shape[1:])


def test_cancel_stops_between_frames(detection_folder, monkeypatch):
    class Interrupted(Exception):
        pass

    calls = {"n": 0}

    def raise_if_interrupted():
        calls["n"] += 1
        if calls["n"] > 3:
            raise Interrupted

    monkeypatch.setattr(host, "raise_if_interrupted", raise_if_interrupted)
    with pytest.raises(Interrupted):
        InfiniteTalkAnimatePreprocess().preprocess(_clip(10), _character(), **_widgets())
    assert calls["n"] == 4  # stopped after the fourth frame, not at the end


def test_missing_models_are_named_with_links(tmp_path, monkeypatch):
    monkeypatch.setattr(host, "model_folder_paths", lambda *names: [str(tmp_path)])
    with pytest.raises(ModelFileError) as err:
        InfiniteTalkAnimatePreprocess().preprocess(_clip(3), _character(), **_widgets())
    text = str(err.value)
    assert "yolov10m.onnx" in text and "vitpose_h_wholebody.onnx" in text and "huggingface.co" in text
    (tmp_path / "yolov10m.onnx").write_bytes(b"x")
    (tmp_path / "vitpose_h_wholebody_model.onnx").write_bytes(b"x")
    with pytest.raises(ModelFileError, match="vitpose_h_wholebody_data.bin"):
        InfiniteTalkAnimatePreprocess().preprocess(_clip(3), _character(), **_widgets())


def test_split_vitpose_is_found(tmp_path):
    from wanvideo_infinitetalk_pack.wanvideo.animate_preprocess import find_preprocess_models

    (tmp_path / "det").mkdir()
    (tmp_path / "det" / "yolov10m.onnx").write_bytes(b"x")
    (tmp_path / "vitpose_h_wholebody_model.onnx").write_bytes(b"x")
    (tmp_path / "vitpose_h_wholebody_data.bin").write_bytes(b"x")
    found = find_preprocess_models([tmp_path])
    assert found.detector.endswith("det/yolov10m.onnx") and found.pose.endswith("vitpose_h_wholebody_model.onnx")


def test_forty_frame_clip_through_the_animate_sampler_to_mp4_with_resume(detection_folder, comfy_dirs):
    models = tiny_animate_models(seed=1)
    cfg = models.dit.config
    vae, text = HostVAE(models.vae.vae), TinyTextEncoder("umt5", cfg["text_dim"])
    clip_vision = TinyClipVision("clip_vision_h", cfg["clip_dim"])
    pose, face, background, mask, character, fps, count = InfiniteTalkAnimatePreprocess().preprocess(
        _clip(40), _character(), **_widgets(resolution_width=64, resolution_height=112))
    assert count == 40
    sampler_args = dict(model=models.dit, vae=vae, image=character,
                        clip_vision_output=clip_vision.encode_image(character, crop=False), pose_video=pose,
                        face_video=face, background_video=background, character_mask=mask, clip_len=21, steps=1,
                        fps=fps, positive=text.encode_from_tokens_scheduled(text.tokenize("a person")),
                        frames_folder="output")
    calls = {"n": 0}
    hook = models.dit.register_forward_pre_hook(lambda m, a: calls.__setitem__("n", calls["n"] + 1))
    try:
        store, frames, out_fps = InfiniteTalkAnimateSampler().sample(**sampler_args)
        assert frames == 40 and out_fps == 30.0 and store.complete and calls["n"] > 0
        calls["n"] = 0
        again, frames2, _ = InfiniteTalkAnimateSampler().sample(**sampler_args)  # same inputs: resumed, no work
        assert frames2 == 40 and calls["n"] == 0 and again.path == store.path
    finally:
        hook.remove()
    result = InfiniteTalkVideoCombine().combine(frame_rate=fps, filename_prefix="animate/preprocessed", frames=again)
    path = result["result"][0]
    info = result["ui"]["infinitetalk_video"][0]
    assert path.endswith(".mp4") and info["frames"] == 40
    assert (info["width"], info["height"]) == (pose.shape[2], pose.shape[1])
    assert np.isclose(info["frame_rate"], 30.0)
