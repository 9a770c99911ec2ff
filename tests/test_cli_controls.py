"""The command line's controls: --audio-scale, --prompt "a | b | c" (a prompt per window)."""
import pytest
import soundfile as sf
import torch

import wanvideo.sampling as sampling
from wanvideo import cli
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
