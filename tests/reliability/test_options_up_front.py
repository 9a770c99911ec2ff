"""Every option checked before any work, from the option registry: the command line and the sampler nodes refuse
exactly the same values (the candidates are generated from each option's declared range, step and choices), the
message names the option as the user typed it, and a refusal takes as long for two hours of speech as for two
seconds (nothing is read, embedded or loaded first)."""
from __future__ import annotations

import math
import struct
import time

import numpy as np
import pytest
import soundfile as sf
from testlib import MEDIA
from wanvideo_infinitetalk_pack.nodes.animate_nodes import InfiniteTalkAnimateSampler
from wanvideo_infinitetalk_pack.nodes.sampler_nodes import InfiniteTalkSampler
from wanvideo_infinitetalk_pack.wanvideo.errors import InputError as PackInputError
from wanvideo_infinitetalk_pack.wanvideo.options import settings_from_inputs as pack_settings_from_inputs
from wanvideo_infinitetalk_pack.wanvideo.sampling.animate_settings import AnimateSettings as PackAnimateSettings
from wanvideo_infinitetalk_pack.wanvideo.sampling.settings import SamplerSettings as PackSamplerSettings

from wanvideo.app import cli
from wanvideo.errors import InputError
from wanvideo.options import options_of
from wanvideo.sampling.animate_settings import AnimateSettings
from wanvideo.sampling.settings import SamplerSettings
from wanvideo.validation import OTHER_FLAGS, CommandLineFlags, check_command_line


def _candidates(opt) -> list:
    """Values at and past each declared limit, off the step, not finite, not a choice."""
    if opt.type is bool:
        return []
    if opt.type is str:
        return [*(opt.choices or ()), "nonsense"]
    out = []
    low, high, step = opt.spec.min, opt.spec.max, opt.spec.step
    one = 1 if opt.type is int else 0.5
    for edge in (low, high):
        if edge is not None:
            out += [edge, edge - one, edge + one]
    if opt.type is int and step and step > 1 and low is not None:
        out += [int(low) + int(step), int(low) + int(step) + 1]
    if opt.choices is not None:
        out += list(opt.choices)
    out = [opt.type(v) for v in out]
    if opt.type is float:
        out += [math.nan, math.inf]
    return sorted(set(out), key=str)


def _shared(settings_cls, node_cls, command):
    """Options that are both an input of the node and an argument of the command."""
    node = {**node_cls.INPUT_TYPES()["required"], **node_cls.INPUT_TYPES().get("optional", {})}
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(getattr(a, "choices", None), dict)).choices[command]
    dests = {a.dest for a in sub._actions}
    return [opt for name, opt in options_of(settings_cls).items() if name in node and name in dests]


def _node_refuses(pack_cls, name, value) -> bool:
    try:
        pack_settings_from_inputs(pack_cls, {name: value}, "sampler")
    except PackInputError:
        return True
    return False


def _cli_argv(command, flag, value):
    text = repr(value) if isinstance(value, float) and not math.isfinite(value) else str(value)
    if command == "generate":
        return ["generate", "--image", "p.png", "--audio", "a.wav", "--output", "o.mp4", f"{flag}={text}"]
    return ["animate", "--image", "p.png", "--pose-video", "p.mp4", "--face-video", "f.mp4", "--output", "o.mp4",
            f"{flag}={text}"]


def _cli_refuses(command, flag, value) -> bool:
    parser = cli.build_parser()
    try:
        args = parser.parse_args(_cli_argv(command, flag, value))
    except SystemExit:  # argparse's own refusal (a value that is not a choice)
        return True
    try:
        check_command_line(args, parser)
    except InputError:
        return True
    return False


CASES = [(command, settings_cls, node_cls, pack_cls, opt, value)
         for command, settings_cls, node_cls, pack_cls in (
             ("generate", SamplerSettings, InfiniteTalkSampler, PackSamplerSettings),
             ("animate", AnimateSettings, InfiniteTalkAnimateSampler, PackAnimateSettings))
         for opt in _shared(settings_cls, node_cls, command)
         for value in _candidates(opt)]


@pytest.mark.parametrize("command, settings_cls, node_cls, pack_cls, opt, value", CASES,
                         ids=[f"{c[0]}-{c[4].name}={c[5]}" for c in CASES])
def test_node_and_command_line_refuse_the_same_values(command, settings_cls, node_cls, pack_cls, opt, value):
    flag = OTHER_FLAGS.get(opt.name, opt.flag)
    node, line = _node_refuses(pack_cls, opt.name, value), _cli_refuses(command, flag, value)
    assert node == line, f"{opt.name}={value!r}: node {'refuses' if node else 'accepts'}, command line " \
                         f"{'refuses' if line else 'accepts'}"


def test_the_candidates_cover_refusals_and_acceptances():
    refused = [c for c in CASES if _node_refuses(c[3], c[4].name, c[5])]
    assert len(CASES) > 150 and 40 < len(refused) < len(CASES) - 40


def test_other_flags_are_the_parsers_own():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(getattr(a, "choices", None), dict)).choices["generate"]
    flags = CommandLineFlags(sub)
    for name, flag in OTHER_FLAGS.items():
        assert flags.label(name) == flag


@pytest.mark.parametrize("argv, words", [
    (["--cfg", "-1"], "--cfg -1: out of range, give a number from 0 to 30"),
    (["--audio-cfg", "-5"], "--audio-cfg -5: out of range"),
    (["--frame-window", "80"], "--frame-window 80 is not of the form 4n\\+1: use 77 or 81"),
    (["--frame-window", "9", "--motion-frames", "9"], "--motion-frames 9 must be smaller than --frame-window 9"),
    (["--width", "500", "--height", "480"], "--width 500 is not a multiple of 16: use 496 or 512"),
    (["--shift", "-1"], "--shift -1: out of range"),
    (["--color-correction", "2"], "--color-correction 2: out of range, give a number from 0 to 1"),
    (["--seed", "-1"], "--seed -1: out of range"),
    (["--seed", str(2 ** 64)], f"--seed {2 ** 64}: out of range"),
    (["--width", "512"], "--width and --height go together"),
], ids=["cfg", "audio-cfg", "window", "motion", "width", "shift", "colour", "seed-neg", "seed-big", "width-alone"])
def test_command_line_names_the_flag_before_reading_anything(tmp_path, capsys, monkeypatch, argv, words):
    import re

    monkeypatch.setattr("wanvideo.app.pipeline.read_audio", lambda *a: pytest.fail("the speech was read first"))
    code = cli.main(["generate", "--image", str(MEDIA / "portrait_480x832.png"), "--audio",
                     str(MEDIA / "speech_en_mono16k.wav"), "--output", str(tmp_path / "o.mp4"), "--quiet", *argv])
    err = capsys.readouterr().err
    assert code == 2 and re.search(words, err), err
    assert list(tmp_path.iterdir()) == []


def test_node_names_the_input(tmp_path):
    with pytest.raises(PackInputError, match="motion_frames 9 must be smaller than frame_window 9"):
        InfiniteTalkSampler().sample(None, None, np.zeros((1, 16, 16, 3), np.float32), None, frame_window=9,
                                     motion_frames=9)
    with pytest.raises(PackInputError, match="color_correction 2: out of range"):
        InfiniteTalkSampler().sample(None, None, np.zeros((1, 16, 16, 3), np.float32), None, color_correction=2.0)
    with pytest.raises(PackInputError, match="refert_frames 3: must be one of 1, 5"):
        InfiniteTalkAnimateSampler().sample(None, None, np.zeros((1, 16, 16, 3), np.float32), None, None, None,
                                            refert_frames=3)


@pytest.mark.parametrize("work", ["same", "inside"])
def test_work_folder_that_is_the_output_is_refused_up_front(tmp_path, capsys, work):
    output = tmp_path / "o.mp4"
    folder = output if work == "same" else output / "parts"
    code = cli.main(["generate", "--image", str(MEDIA / "portrait_480x832.png"), "--audio",
                     str(MEDIA / "speech_en_mono16k.wav"), "--output", str(output), "--work-dir", str(folder)])
    err = capsys.readouterr().err
    assert code == 2 and "--work-dir" in err and "is the output file" in err, err
    assert list(tmp_path.iterdir()) == []


def _wav(path, seconds: float, rate: int = 16000) -> None:
    """A 16-bit mono WAV of `seconds`; long ones are sparse (the header says hours, the disk holds nothing)."""
    frames = int(seconds * rate)
    if seconds < 60:
        sf.write(str(path), np.zeros(frames, np.float32), rate, subtype="PCM_16")
        return
    data = frames * 2
    header = b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2,
                                                                             16) + b"data" + struct.pack("<I", data)
    with open(path, "wb") as handle:
        handle.write(header)
        handle.truncate(len(header) + data)


def _refusal_seconds(tmp_path, speech, capsys) -> float:
    started = time.perf_counter()
    code = cli.main(["generate", "--image", str(MEDIA / "portrait_480x832.png"), "--audio", str(speech), "--output",
                     str(tmp_path / "o.mp4"), "--quiet", "--frame-window", "9", "--motion-frames", "9"])
    took = time.perf_counter() - started
    assert code == 2 and "--motion-frames 9 must be smaller" in capsys.readouterr().err
    return took


def test_two_hours_of_speech_are_refused_as_fast_as_two_seconds(tmp_path, capsys, monkeypatch):
    import wanvideo.audio

    def no_models(*args, **kwargs):
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr(wanvideo.audio, "load_wav2vec", no_models)
    monkeypatch.setattr("wanvideo.tiny.tiny_models", no_models)
    short, long = tmp_path / "short.wav", tmp_path / "long.wav"
    _wav(short, 2.0)
    _wav(long, 2 * 3600.0)
    assert sf.info(str(long)).duration == pytest.approx(7200.0)
    _refusal_seconds(tmp_path, short, capsys)  # imports warmed
    t_short = min(_refusal_seconds(tmp_path, short, capsys) for _ in range(3))
    t_long = min(_refusal_seconds(tmp_path, long, capsys) for _ in range(3))
    assert t_long < 3 * t_short + 0.2, (t_short, t_long)
