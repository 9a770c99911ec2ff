"""Test doubles for the window loop: a lossless block VAE and a DiT stand-in that records its calls.

FakeVAE keeps the real VAE's layout (16 latent channels, 8x space, 4x time) but is exactly invertible for
frames that are constant over 8x8 blocks: latent frame 0 holds video frame 0 (channels 0-2), latent frame
k >= 1 holds video frames 4k-3 .. 4k (channels 0-11). So what the DiT stand-in puts into a latent frame can be
read back, frame by frame, from the store.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from wanvideo.audio import AudioEmbeddings

CONFIG = dict(text_dim=8, text_len=16, clip_dim=4, audio_window=5, audio_layers=2, audio_channels=3,
              audio_adapter=True, vae_scale=4)


class FakeVAE:
    def __init__(self, record: bool = True):
        self.record = record
        self.encoded = []  # inputs of encode (clones) when recording
        self.decoded = []  # inputs of decode (clones) when recording
        self.encode_calls = 0
        self.decode_calls = 0

    def encode(self, video):
        self.encode_calls += 1
        if self.record:
            self.encoded.append(video.clone())
        c, frames, h, w = video.shape
        assert c == 3 and (frames - 1) % 4 == 0 and h % 8 == 0 and w % 8 == 0
        small = F.avg_pool2d(video.float().permute(1, 0, 2, 3), 8).permute(1, 0, 2, 3)  # [3, F, h, w]
        t = (frames - 1) // 4 + 1
        latent = torch.zeros(16, t, h // 8, w // 8)
        latent[0:3, 0] = small[:, 0]
        for k in range(1, t):
            for j in range(4):
                latent[3 * j:3 * j + 3, k] = small[:, 4 * (k - 1) + 1 + j]
        return latent

    def decode(self, latent):
        self.decode_calls += 1
        if self.record:
            self.decoded.append(latent.clone())
        t = latent.shape[1]
        frames = [latent[0:3, 0]]
        for k in range(1, t):
            frames += [latent[3 * j:3 * j + 3, k] for j in range(4)]
        video = torch.stack(frames, 1)  # [3, F, h, w]
        video = F.interpolate(video, scale_factor=8, mode="nearest")
        return video.clamp(-1, 1)

    def fingerprint(self):
        return "fake-vae"


class FakeDiT(torch.nn.Module):
    """Calls `velocity(x, t, context, clip_fea, y, audio, ref_target_masks)`; records every call's arguments."""

    def __init__(self, velocity, record: bool = True, config=None):
        super().__init__()
        self.config = dict(config or CONFIG)
        self.velocity = velocity
        self.record = record
        self.calls = []
        self.num_calls = 0

    def forward(self, x, t, context, clip_fea, y, audio=None, ref_target_masks=None):
        self.num_calls += 1
        if self.record:
            self.calls.append(dict(x=x.clone(), t=t.clone(), context=context.clone(), clip_fea=clip_fea.clone(),
                                   y=y.clone(), audio=None if audio is None else audio.clone(),
                                   masks=None if ref_target_masks is None else ref_target_masks.clone()))
        return self.velocity(x, t, context, clip_fea, y, audio, ref_target_masks).float()


def row_embeddings(frames: int, speakers: int = 1, fps: float = 25.0) -> AudioEmbeddings:
    """Embeddings whose row r is filled with the value r (speaker s adds 1000*s): rows are readable downstream."""
    rows = torch.arange(frames, dtype=torch.float32)
    speakers_emb = [(rows + 1000 * s).view(-1, 1, 1).expand(frames, CONFIG["audio_layers"],
                                                            CONFIG["audio_channels"]).clone()
                    for s in range(speakers)]
    return AudioEmbeddings(speakers=speakers_emb, fps=fps, waveform=torch.zeros(int(frames / fps * 16000)),
                           sample_rate=16000)


def code_rgb(row: int) -> tuple[int, int, int]:
    """A distinct uint8 colour per audio row."""
    return (row * 5) % 251, (row * 11) % 251 + 2, 200


def code_pixels(rows: torch.Tensor) -> torch.Tensor:
    """rows [F] -> [3, F] pixel values in [-1, 1] of code_rgb."""
    rgb = torch.tensor([code_rgb(int(r)) for r in rows], dtype=torch.float32).T
    return rgb / 127.5 - 1.0


def row_target_velocity():
    """A velocity that lands the Euler walk on the video whose frame f shows code_rgb(audio row of frame f)."""
    codec = FakeVAE(record=False)

    def velocity(x, t, context, clip_fea, y, audio, masks):
        _, _, frames_lat, h, w = x.shape
        frames = 1 + 4 * (frames_lat - 1)
        rows = audio[0, :, 2, 0, 0].round().long() if audio is not None and audio.abs().sum() > 0 \
            else torch.zeros(frames, dtype=torch.long)
        video = code_pixels(rows)[:, :, None, None].expand(3, frames, h * 8, w * 8)
        x0 = codec.encode(video)[None]
        sigma = t.view(-1, 1, 1, 1, 1).float() / 1000.0
        return (x - x0) / sigma

    return velocity
