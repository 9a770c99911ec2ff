"""The Animate sampler runs each clip through the same window recipe as the InfiniteTalk one: progress for every
step and every VAE chunk, Cancel between VAE chunks, the VAE in the chosen precision, and NaN pixels from the VAE
refused instead of written as black frames."""
from __future__ import annotations

import os

import pytest
import torch
from sampling_fakes import FakeVAE

from wanvideo.errors import NonFiniteError
from wanvideo.sampling import AnimateSettings, GenerationInterrupted, generate_animate
from wanvideo.tiny import tiny_animate_models, tiny_vae

# Two clips of 13 frames (refert 1) at 48x80, one step each: 4 latent frames decoded per clip.
SETTINGS = dict(clip_len=13, steps=1, width=48, height=80, max_frames=25)


@pytest.fixture(scope="module")
def tiny():
    return tiny_animate_models(seed=3)


def _driving(tiny, frames=25):
    gen = torch.Generator().manual_seed(5)
    face = tiny.dit.config["motion_encoder"]["size"]
    return dict(image=torch.rand(1, 80, 48, 3, generator=gen), pose=torch.rand(frames, 80, 48, 3, generator=gen),
                face=torch.rand(frames, face, face, 3, generator=gen))


def _animate(tiny, root, vae=None, settings=None, **kw):
    d = _driving(tiny)
    return generate_animate(tiny.dit, vae or tiny.vae, d["image"], tiny.clip_fea, d["pose"], d["face"],
                            context=tiny.context, context_null=tiny.context_null,
                            settings=AnimateSettings(**{**SETTINGS, **(settings or {})}), store_root=str(root), **kw)


def test_progress_reports_every_step_and_every_vae_chunk(tmp_path, tiny):
    seen = []
    store = _animate(tiny, tmp_path, on_progress=seen.append)
    assert store.complete and store.num_windows == 2
    assert {p.unit for p in seen} == {"clip"}
    clip2 = [(p.stage, p.step, p.chunk, p.chunks) for p in seen if p.window == 2]
    # 13 frames = 4 latent frames (the reference slot is not decoded): 4 decoder calls; the clip's conditioning
    # video and its pose video are 13 frames each = 4 encoder calls each.
    assert [w for w in clip2 if w[0] == "decode"] == [("decode", 1, i, 4) for i in range(5)]
    assert [w for w in clip2 if w[0] == "encode"] == 2 * [("encode", 0, i, 4) for i in range(5)]
    assert [w[1] for w in clip2 if w[0] == "denoise"] == [0, 1]
    stages = [w[0] for w in clip2]
    assert stages.index("decode") > max(i for i, s in enumerate(stages) if s == "denoise"), "decode after denoising"
    # clip 1 also encodes the character image once (one frame, one encoder call)
    assert ("encode", 0, 1, 1) in [(p.stage, p.step, p.chunk, p.chunks) for p in seen if p.window == 1]


def test_cancel_during_the_vae_decode_stops_before_the_next_chunk(tmp_path, tiny):
    decoder_calls = {"n": 0}
    handle = tiny.vae.module.decoder.register_forward_hook(  # calls that ran to the end
        lambda *a: decoder_calls.__setitem__("n", decoder_calls["n"] + 1))
    progress = []
    # Cancel pressed while clip 2's decode is at chunk 2 of 4.
    stop = lambda: any(p.window == 2 and p.stage == "decode" and p.chunk >= 2 for p in progress)  # noqa: E731
    try:
        with pytest.raises(GenerationInterrupted, match=r"clip 2/2 \(stopped during the VAE decode, chunk 3/4\).*"
                                                        r"1 finished clips"):
            _animate(tiny, tmp_path, on_progress=progress.append, should_stop=stop)
    finally:
        handle.remove()
    assert decoder_calls["n"] == 4 + 2, "clip 1's four decoder calls, then two of clip 2, none after Cancel"


def _precision_run(tmp_path, tiny, **settings):
    vae = tiny_vae(seed=5, dtype=torch.bfloat16)
    seen = []
    hooks = [part.register_forward_pre_hook(lambda module, args, name=name: seen.append((name, args[0].dtype)))
             for name, part in (("encode", vae.vae.encoder), ("decode", vae.vae.decoder))]
    try:
        store = _animate(tiny, tmp_path, vae=vae, settings=settings)
    finally:
        for hook in hooks:
            hook.remove()
    return vae, seen, store


def test_vae_runs_as_loaded_by_default_and_in_float32_when_asked(tmp_path, tiny):
    vae, seen, store = _precision_run(tmp_path / "host", tiny)
    assert store.complete and {name for name, _ in seen} == {"encode", "decode"}
    assert {dtype for _, dtype in seen} == {torch.bfloat16}
    vae, seen, store = _precision_run(tmp_path / "fp32", tiny, vae_precision="fp32")
    assert store.complete and {dtype for _, dtype in seen} == {torch.float32}
    # after the run the VAE is as it was loaded (bf16 weights, bf16 working precision)
    assert vae.dtype == torch.bfloat16 and next(vae.vae.parameters()).dtype == torch.bfloat16


def test_nan_from_the_vae_is_refused_not_written_black(tmp_path, tiny):
    vae = FakeVAE(record=False)
    real = vae.decode
    vae.decode = lambda latent: real(latent) * float("nan")
    with pytest.raises(NonFiniteError, match=r"clip 1/2 stopped: the VAE decoded NaN/infinite pixels.*"
                                             r"0 finished clips"):
        _animate(tiny, tmp_path, vae=vae)
    (store_dir,) = tmp_path.iterdir()
    assert not [n for n in os.listdir(store_dir) if n.endswith(".mkv")]
