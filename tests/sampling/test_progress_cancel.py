"""Progress never goes quiet and Cancel is honoured quickly: between guidance passes and between VAE chunks."""
import dataclasses

import pytest
import resume_job

from wanvideo.sampling import GenerationInterrupted, generate


def _generate(root, models, embeddings, image, settings=resume_job.SETTINGS, **kw):
    return generate(models.dit, models.vae, image, models.clip_fea, audio=embeddings, context=models.context,
                    context_null=models.context_null, settings=settings, store_root=str(root), **kw)


@pytest.fixture(scope="module")
def inputs():
    return resume_job.inputs()


def test_progress_reports_every_step_and_every_vae_chunk(tmp_path, inputs):
    seen = []
    _generate(tmp_path, *inputs, on_progress=seen.append)
    window2 = [(p.stage, p.step, p.chunk, p.chunks) for p in seen if p.window == 2]
    # 17 frames = 5 latent frames: the decoder runs once per latent frame; 9 motion frames = 3 encoder calls.
    assert [w for w in window2 if w[0] == "decode"] == [("decode", 2, i, 5) for i in range(6)]
    assert [w for w in window2 if w[0] == "encode"] == [("encode", 2, i, 3) for i in range(4)]
    assert [w[1] for w in window2 if w[0] == "denoise"] == [0, 1, 2]
    stages = [w[0] for w in window2]
    assert stages.index("decode") > max(i for i, s in enumerate(stages) if s == "denoise"), "decode after denoising"


def test_cancel_during_the_vae_decode_stops_before_the_next_chunk(tmp_path, inputs):
    models = inputs[0]
    decoder_calls = {"n": 0}
    handle = models.vae.module.decoder.register_forward_hook(  # calls that ran to the end
        lambda *a: decoder_calls.__setitem__("n", decoder_calls["n"] + 1))
    progress = []
    # Cancel pressed while window 2's decode is at chunk 2 of 5.
    stop = lambda: any(p.window == 2 and p.stage == "decode" and p.chunk >= 2 for p in progress)  # noqa: E731
    try:
        with pytest.raises(GenerationInterrupted, match=r"window 2/4 \(stopped during the VAE decode, chunk 3/5\).*"
                                                        r"1 finished windows"):
            _generate(tmp_path, *inputs, on_progress=progress.append, should_stop=stop)
    finally:
        handle.remove()
    assert decoder_calls["n"] == 5 + 2, "window 1's five decoder calls, then two of window 2, none after Cancel"


def test_cancel_between_guidance_passes(tmp_path, inputs):
    """Passes run one by one (block swap, little VRAM): Cancel does not wait for the step's other passes."""
    models = inputs[0]
    sequential = dataclasses.replace(resume_job.SETTINGS, guidance_batching="sequential")
    calls = {"n": 0}
    handle = models.dit.register_forward_pre_hook(lambda *a: calls.__setitem__("n", calls["n"] + 1))
    try:
        with pytest.raises(GenerationInterrupted, match="stopped between the guidance passes of step 1"):
            _generate(tmp_path, *inputs, settings=sequential, should_stop=lambda: calls["n"] >= 1)
    finally:
        handle.remove()
    assert calls["n"] == 1, "no second model call of the step after Cancel"

