"""The command line's controls: --audio-scale, --prompt "a | b | c" (a prompt per window)."""
import pytest
import soundfile as sf
import torch

import wanvideo.sampling as sampling
from wanvideo.app import cli
from wanvideo.tiny import tiny_models

SMALL = ["--width", "64", "--height", "64", "--steps", "1", "--frame-window", "17", "--motion-frames", "5", "--quiet"]


@pytest.fixture(scope="module")
def short_speech(tmp_path_factory):
    from testlib import MEDIA

    data, rate = sf.read(str(MEDIA / "speech_en_mono16k.wav"), dtype="float32")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    sf.write(str(path), data[: int(1.5 * rate)], rate)  # 37 frames: three windows of 17 (12 new frames each)
    return path


@pytest.fixture
def recorded(monkeypatch):
    """The engine's generate, recording what the command line hands it."""
    calls = []
    original = sampling.generate

    def generate(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(sampling, "generate", generate)
    return calls


def test_prompts_per_window_and_audio_scale_reach_the_sampler(tmp_path, short_speech, media_dir, recorded, capsys):
    out = tmp_path / "talk.mp4"
    code = cli.main(["generate", "--image", str(media_dir / "portrait_480x832.png"), "--audio", str(short_speech),
                     "--output", str(out), "--prompt", "talks calmly | smiles | turns to the camera",
                     "--audio-scale", "1.5", *SMALL])
    assert code == 0, capsys.readouterr().err
    (call,) = recorded
    assert call["settings"].audio_scale == 1.5
    contexts = call["context"]
    assert isinstance(contexts, list) and len(contexts) == 3
    # the embedded set has no text encoder: prompt 1 keeps its stand-in, the others get one from their own text
    assert torch.equal(contexts[0], tiny_models(seed=0).context)
    assert not torch.equal(contexts[1], contexts[2]) and contexts[1].shape == contexts[0].shape
    assert out.exists()


def test_an_empty_prompt_between_separators_is_refused_before_any_work(tmp_path, short_speech, media_dir, recorded,
                                                                       capsys):
    out = tmp_path / "talk.mp4"
    code = cli.main(["generate", "--image", str(media_dir / "portrait_480x832.png"), "--audio", str(short_speech),
                     "--output", str(out), "--prompt", "talks | | smiles", *SMALL])
    err = capsys.readouterr().err
    assert code == 2 and "prompt 2 of 3" in err and "is empty" in err and "Traceback" not in err
    assert not recorded and not out.exists()


def test_audio_scale_is_an_option_of_the_generate_command():
    args = cli.build_parser().parse_args(["generate", "--image", "a.png", "--audio", "a.wav", "--output", "o.mp4"])
    assert args.audio_scale == 1.0
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["generate", "--image", "a.png", "--audio", "a.wav", "--output", "o.mp4",
                                       "--audio-scale", "loud"])


# ----- face-only dubbing -------------------------------------------------------------------------------------------
CLIP_H, CLIP_W = 64, 96


@pytest.fixture(scope="module")
def source_clip(tmp_path_factory):
    """A 16-frame textured clip (smooth, so H.264 keeps it close) and its frames as written."""
    import numpy as np

    from wanvideo.video import write_video

    yy, xx = np.mgrid[0:CLIP_H, 0:CLIP_W + 16]
    base = np.stack([128 + 90 * np.sin(xx / 7.0), 128 + 90 * np.cos(yy / 5.0), 128 + 60 * np.sin((xx + yy) / 9.0)], -1)
    frames = np.stack([base[:, i:i + CLIP_W] for i in range(16)]).round().astype(np.uint8)
    path = tmp_path_factory.mktemp("clip") / "source.mp4"
    write_video(frames, str(path), 25.0, crf=1)
    return path


def _decode(path):
    import av
    import numpy as np

    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])])


def _mask_png(path, height, width, box):
    import numpy as np
    from PIL import Image

    mask = np.zeros((height, width), np.uint8)
    top, left, bottom, right = box
    mask[top:bottom, left:right] = 255
    Image.fromarray(mask).save(path)
    return path


FACE_BOX = (16, 32, 48, 64)


def test_face_only_dubbing_from_the_command_line_keeps_the_source_outside_the_mask(tmp_path, short_speech,
                                                                                    source_clip, recorded, capsys):
    import numpy as np

    mask = _mask_png(tmp_path / "mask.png", CLIP_H, CLIP_W, FACE_BOX)
    out = tmp_path / "dub.mp4"
    code = cli.main(["generate", "--video", str(source_clip), "--audio", str(short_speech), "--output", str(out),
                     "--edit-mask", str(mask), "--mask-feather", "4", "--width", str(CLIP_W), "--height", str(CLIP_H),
                     "--steps", "1", "--frame-window", "17", "--motion-frames", "5", "--quiet"])
    assert code == 0, capsys.readouterr().err
    (call,) = recorded
    assert call["edit_mask"].shape == (1, CLIP_H, CLIP_W)
    made, source = _decode(out).astype(int), _decode(source_clip).astype(int)
    assert len(made) == 37  # as long as the speech (1.5 s), longer than the 16-frame clip
    expected = np.stack([source[min(i, len(source) - 1)] for i in range(len(made))])
    inside = np.zeros((CLIP_H, CLIP_W), bool)
    top, left, bottom, right = FACE_BOX
    inside[top:bottom, left:right] = True
    ring = np.zeros_like(inside)
    ring[top - 4:bottom + 4, left - 4:right + 4] = True  # H.264 blocks bleed a little across the mask's edge
    outside_diff = np.abs(made[:, ~ring] - expected[:, ~ring]).mean()
    inside_diff = np.abs(made[:, inside] - expected[:, inside]).mean()
    assert outside_diff < 3 and inside_diff > 15, (outside_diff, inside_diff)


@pytest.fixture(scope="module")
def detection_dir(tmp_path_factory):
    """A models/detection folder with the stand-in ONNX files under the official names."""
    import shutil

    from testlib.preprocess_fixtures import DETECTOR, POSE

    folder = tmp_path_factory.mktemp("models") / "detection"
    folder.mkdir()
    shutil.copy(DETECTOR, folder / "yolov10m.onnx")
    shutil.copy(POSE, folder / "vitpose_h_wholebody.onnx")
    return folder


def test_face_only_from_the_command_line_finds_the_face_with_the_detector(tmp_path, short_speech, detection_dir,
                                                                         recorded, capsys):
    import numpy as np
    from testlib.synthetic_person import person_clip

    from wanvideo.sampling import SamplerSettings
    from wanvideo.sampling.conditioning import ReferenceFrames
    from wanvideo.sampling.edit_mask import prepare_edit_region
    from wanvideo.sampling.face_box import find_face_models
    from wanvideo.video import write_video

    clip = tmp_path / "figure.mp4"
    write_video(person_clip(16, height=CLIP_H, width=CLIP_W), str(clip), 25.0, crf=1)
    out = tmp_path / "dub.mp4"
    code = cli.main(["generate", "--video", str(clip), "--audio", str(short_speech), "--output", str(out),
                     "--face-only", "--detection-dir", str(detection_dir), "--mask-feather", "2", "--width",
                     str(CLIP_W), "--height", str(CLIP_H), "--steps", "1", "--frame-window", "17",
                     "--motion-frames", "5"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "face 16/16" in err  # the face search shows on the progress bar, frame by frame
    (call,) = recorded
    assert call["face_models"].detector == str(detection_dir / "yolov10m.onnx")
    source = _decode(clip)
    region = prepare_edit_region(None, SamplerSettings(face_only=True), ReferenceFrames(source), CLIP_H, CLIP_W,
                                 find_face_models([str(detection_dir)]))
    made = _decode(out).astype(int)
    for f in (0, 8, 15, len(made) - 1):
        inside = region.frame_mask(f).bool().numpy()
        near = np.zeros_like(inside)  # H.264 blocks bleed a little across the mask's edge
        rows, cols = np.nonzero(inside)
        near[max(0, rows.min() - 4):rows.max() + 5, max(0, cols.min() - 4):cols.max() + 5] = True
        expected = source[min(f, len(source) - 1)].astype(int)
        assert np.abs(made[f][~near] - expected[~near]).mean() < 3, f
        assert np.abs(made[f][inside] - expected[inside]).mean() > 15, f


@pytest.mark.parametrize("extra, message", [
    (["--image", "PORTRAIT", "--face-only"], "face_only is for dubbing"),
    (["--video", "CLIP", "--face-only", "--detection-dir", "EMPTY_DIR"], "yolov10m.onnx"),
    (["--video", "CLIP", "--face-only", "--detection-dir", "EMPTY_DIR"], "a mask needs no model file"),
    (["--video", "CLIP", "--edit-mask", "WRONG_SIZE"], "the source video is 96x64"),
    (["--video", "CLIP", "--edit-mask", "EMPTY"], "edit_mask is empty"),
    (["--video", "CLIP", "--edit-mask", "MISSING"], "--edit-mask"),
])
def test_bad_face_only_input_is_refused_before_any_model_loads(tmp_path, short_speech, source_clip, media_dir,
                                                               monkeypatch, extra, message, capsys):
    import wanvideo.app.pipeline as pipeline

    monkeypatch.setattr(pipeline, "_load_embedded", lambda *a, **kw: pytest.fail("a model was loaded"))
    files = {"PORTRAIT": str(media_dir / "portrait_480x832.png"), "CLIP": str(source_clip),
             "WRONG_SIZE": str(_mask_png(tmp_path / "big.png", CLIP_H * 2, CLIP_W, FACE_BOX)),
             "EMPTY": str(_mask_png(tmp_path / "empty.png", CLIP_H, CLIP_W, (0, 0, 0, 0))),
             "MISSING": str(tmp_path / "nope.png"), "EMPTY_DIR": str(tmp_path)}
    out = tmp_path / "x.mp4"
    code = cli.main(["generate", *[files.get(a, a) for a in extra], "--audio", str(short_speech),
                     "--output", str(out), *SMALL])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not out.exists()
