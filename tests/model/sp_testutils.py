"""Sequence-parallel forward cases run inside gloo ranks (see test_sequence_parallel.py)."""
from __future__ import annotations

import json

import torch
import torch.distributed as dist

from wanvideo.model import build_model, preset, tiny_config
from wanvideo.model.config import audio_frames_for

# name: (heads or "animate", mode, speakers (negative: per batch row), batch, latent frames/height/width)
CASES = {
    "ulysses_one_speaker": (4, "ulysses", 1, 1, (3, 4, 6)),
    "ulysses_two_speakers_batch2": (4, "ulysses", 2, 2, (3, 4, 6)),
    "ring_two_speakers": (4, "ring", 2, 1, (3, 4, 6)),
    "ulysses_plain_i2v": (4, "ulysses", 0, 1, (3, 4, 6)),
    "ulysses_fewer_tokens_than_ranks": (4, "ulysses", 1, 1, (1, 2, 6)),
    "two_heads_two_speakers": (2, "ulysses", 2, 1, (3, 4, 6)),  # 4 ranks: ulysses 2 x ring 2
    "animate_face_blocks": ("animate", "ulysses", 0, 1, (3, 4, 6)),  # WanAnimate: pose + face blocks per frame
    "ring_per_row_audio": (4, "ring", -2, 2, (3, 4, 6)),  # batched guidance: each row its own two-speaker audio
    "ulysses_two_speakers_audio_scale": (4, "ulysses", 2, 2, (3, 4, 6)),
    "ring_one_speaker_audio_scale": (4, "ring", 1, 1, (3, 4, 6)),
}
# cases run with a non-default audio strength (the audio cross-attention's output scaled on every rank's shard)
AUDIO_SCALE = {"ulysses_two_speakers_audio_scale": 2.0, "ring_one_speaker_audio_scale": 0.5}


def _model(kind):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        if kind == "animate":
            return build_model(preset("tiny-animate"))
        return build_model(tiny_config(num_heads=kind))


def case_inputs(cfg: dict, speakers: int, batch: int, latent, seed: int = 5) -> dict:
    gen = torch.Generator().manual_seed(seed)
    f, h, w = latent
    inputs = dict(
        x=torch.randn(batch, 16, f, h, w, generator=gen),
        t=torch.tensor([700.0] * batch),
        context=torch.randn(batch, 7, cfg["text_dim"], generator=gen),
        clip_fea=torch.randn(1, 257, cfg["clip_dim"], generator=gen),
        y=torch.randn(1, 20, f, h, w, generator=gen),
    )
    if cfg["model_type"] == "animate":
        size = cfg["motion_encoder"]["size"]
        inputs["pose_latents"] = torch.randn(batch, 16, f - 1, h, w, generator=gen)
        inputs["face_pixel_values"] = torch.rand(batch, 3, 4 * (f - 2) + 1, size, size, generator=gen) * 2 - 1
    if speakers:
        frames = audio_frames_for(f, cfg)
        rows = (batch,) if speakers < 0 else ()  # negative: one audio per batch row
        inputs["audio"] = torch.randn(*rows, abs(speakers), frames, cfg["audio_window"], cfg["audio_layers"],
                                      cfg["audio_channels"], generator=gen)
    if abs(speakers) == 2:
        masks = torch.zeros(3, 16, 24)
        masks[0, :, :8] = 1  # speaker 1 on the left, speaker 2 on the right, background between
        masks[1, :, 16:] = 1
        masks[2, :, 8:16] = 1
        inputs["ref_target_masks"] = masks
    return inputs


def forward_parity(rank: int, world: int, result_path: str) -> None:
    """For every case: the sequence-parallel output's largest difference from this rank's single-process output."""
    torch.manual_seed(0)
    models = {}
    report = {}
    for name, (heads, mode, speakers, batch, latent) in CASES.items():
        if heads not in models:
            models[heads] = _model(heads)
        model = models[heads]
        inputs = case_inputs(model.config, speakers, batch, latent)
        if name in AUDIO_SCALE:
            inputs["audio_scale"] = AUDIO_SCALE[name]
        single = model(**inputs)
        model.enable_sequence_parallel(mode)
        sp = model.sequence_parallel
        split = model(**inputs)
        model.sequence_parallel = None
        everyone = [torch.empty_like(split) for _ in range(world)]
        dist.all_gather(everyone, split)
        report[name] = dict(
            max_abs_diff=float((split - single).abs().max()),
            scale=float(single.abs().max()),
            ranks_agree=all(torch.equal(o, everyone[0]) for o in everyone),
            ulysses=sp.ulysses,
            ring=sp.ring,
            finite=bool(torch.isfinite(split).all()),
        )
    if rank == 0:
        with open(result_path, "w") as f:
            json.dump(report, f)
