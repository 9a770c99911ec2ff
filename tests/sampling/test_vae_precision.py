"""The window loop's VAE round trip (conditioning, decode, motion-frame encode) runs in float32 by default, as
the reference's WanVAE does, even for a VAE loaded in bf16; `vae_precision="host"` keeps the loaded precision."""
import pytest
import torch

from wanvideo.sampling import SamplerSettings, generate
from wanvideo.tiny import tiny_models, tiny_vae


def _run_recording(tmp_path, vae, **settings):
    models = tiny_models(seed=0, audio_adapter=False)
    seen = []
    hooks = [part.register_forward_pre_hook(lambda module, args, name=name: seen.append((name, args[0].dtype)))
             for name, part in (("encode", vae.vae.encoder), ("decode", vae.vae.decoder))]
    image = torch.rand(1, 32, 32, 3, generator=torch.Generator().manual_seed(1))
    s = SamplerSettings(width=32, height=32, frame_window=9, motion_frames=5, steps=1, max_frames=13, cfg=1.0,
                        **settings)
    try:
        store = generate(models.dit, vae, image, models.clip_fea, settings=s, store_root=str(tmp_path))
    finally:
        for hook in hooks:
            hook.remove()
    return seen, store


def test_motion_frames_round_trip_in_float32_by_default_and_the_vae_is_restored(tmp_path):
    vae = tiny_vae(seed=2, dtype=torch.bfloat16)
    seen, store = _run_recording(tmp_path, vae)
    assert len(store) == 13 and store.num_windows == 2
    kinds = {name for name, _ in seen}
    assert kinds == {"encode", "decode"}
    assert {dtype for _, dtype in seen} == {torch.float32}
    # after the run the VAE is as it was loaded (bf16 weights, bf16 working precision)
    assert vae.dtype == torch.bfloat16 and next(vae.vae.parameters()).dtype == torch.bfloat16


def test_host_precision_keeps_the_loaded_dtype(tmp_path):
    vae = tiny_vae(seed=2, dtype=torch.bfloat16)
    seen, _ = _run_recording(tmp_path, vae, vae_precision="host")
    assert {dtype for _, dtype in seen} == {torch.bfloat16}


def test_unknown_vae_precision_is_explained():
    from wanvideo.errors import InputError

    with pytest.raises(InputError, match="vae_precision"):
        SamplerSettings(vae_precision="fp8").validated()
