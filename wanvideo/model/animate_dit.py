"""The WanAnimate DiT (Wan2.2-Animate-14B): the Wan2.1 I2V model plus a pose embedding and a face path.

Same blocks, head, text/CLIP embeddings and forward steps as `WanInfiniteTalkModel` (this is a subclass);
what it adds:
- `pose_patch_embedding` (Conv3d 16 -> dim, patch 1x2x2) of the pose-video latent, **added** to the
  patch tokens of latent frames 1.. (frame 0 is the reference image's slot and gets no pose);
- the face path: LIA `motion_encoder` (face crops -> motion vectors), `face_encoder` (causal convs ->
  per-latent-frame tokens; a zero frame is prepended for the reference slot) and `face_adapter`, whose
  block k cross-attends per latent frame after transformer block k * face_block_every.

Call: `model(x [B,16,F,h,w], t, context [B,L,text_dim], clip_fea [B,257,clip_dim], y [B,20,F,h,w],
pose_latents=[B,16,F-1,h,w], face_pixel_values=[B,3,T,S,S])` with T = 4(F-2)+1 face crops in [-1, 1]
and S the motion encoder's face size; returns [B,16,F,h,w] float32.
"""
from __future__ import annotations

import torch

from ..errors import InputError
from .dit import WanInfiniteTalkModel
from .face_adapter import FaceAdapter, FaceEncoder
from .layers import Conv3d
from .motion_encoder import MotionEncoder

POSE_CHANNELS = 16  # the pose video's VAE latent channels


class WanAnimateModel(WanInfiniteTalkModel):
    """Wan2.2-Animate-14B-style DiT (config `model_type` 'animate')."""

    def __init__(self, config: dict, dtype=torch.float32, device="cpu"):
        super().__init__(config, dtype=dtype, device=device)
        cfg = self.config
        if cfg["model_type"] != "animate":
            raise InputError("WanAnimateModel needs a config with model_type 'animate'")
        kw = dict(device=device, dtype=dtype)
        dim = cfg["dim"]
        self.pose_patch_embedding = Conv3d(POSE_CHANNELS, dim, kernel_size=cfg["patch_size"], stride=cfg["patch_size"], **kw)
        motion = cfg["motion_encoder"]
        self.motion_encoder = MotionEncoder(motion["size"], motion["style_dim"], motion["motion_dim"], motion["channels"],
                                            rows=cfg["motion_encoder_dim"], **kw)
        self.face_adapter = FaceAdapter(dim, cfg["num_heads"], self.num_face_blocks, **kw)
        self.face_encoder = FaceEncoder(cfg["motion_encoder_dim"], dim, cfg["face_encoder_num_heads"],
                                        cfg["face_encoder_width"], **kw)
        self.requires_grad_(False)
        self.eval()

    @property
    def num_face_blocks(self) -> int:
        """One face block per `face_block_every` transformer blocks, after blocks 0, every, 2*every, ..."""
        return -(-self.config["num_layers"] // self.config["face_block_every"])

    @property
    def face_size(self) -> int:
        """Side of the square face crops the motion encoder takes (512 for the released model)."""
        return self.config["motion_encoder"]["size"]

    @property
    def has_audio_adapter(self) -> bool:
        return False

    # ----- input checks -------------------------------------------------------------------------------
    def _check_animate_inputs(self, x, pose_latents, face_pixel_values):
        b, _, frames, lat_h, lat_w = x.shape
        if frames < 2:
            raise InputError(f"WanAnimate latents need the reference frame plus at least one video frame, got {frames}")
        want = (POSE_CHANNELS, frames - 1, lat_h, lat_w)
        if pose_latents is None or pose_latents.dim() != 5 or tuple(pose_latents.shape[1:]) != want:
            got = None if pose_latents is None else tuple(pose_latents.shape)
            raise InputError(
                f"pose_latents must be [batch, {want[0]}, {want[1]}, {want[2]}, {want[3]}] (the pose video's latent, "
                f"one frame fewer than x: frame 0 is the reference slot), got {got}"
            )
        size = self.face_size
        video_frames = 4 * (frames - 2) + 1
        if face_pixel_values is None or face_pixel_values.dim() != 5:
            got = None if face_pixel_values is None else tuple(face_pixel_values.shape)
            raise InputError(f"face_pixel_values must be [batch, 3, {video_frames}, {size}, {size}], got {got}")
        fb, fc, ft, fh, fw = face_pixel_values.shape
        if fc != 3 or (fh, fw) != (size, size):
            raise InputError(
                f"face crops must be RGB {size}x{size} (the model's face size), got {fc} channels {fh}x{fw}: "
                "resize the face video to the model's face size"
            )
        if ft != video_frames:
            raise InputError(
                f"{ft} face frames given, but {frames - 1} latent video frames take {video_frames} (4n+1) frames"
            )
        for name, tensor in (("pose_latents", pose_latents), ("face_pixel_values", face_pixel_values)):
            if tensor.shape[0] not in (1, b):
                raise InputError(f"{name} batch {tensor.shape[0]} does not match x batch {b} (or 1)")
        tokens_per_frame = (lat_h // self.config["patch_size"][1]) * (lat_w // self.config["patch_size"][2])
        if tokens_per_frame == 0:
            raise InputError(f"latent size {lat_h}x{lat_w} is smaller than one patch")

    # ----- forward ------------------------------------------------------------------------------------
    def face_tokens(self, face_pixel_values: torch.Tensor) -> torch.Tensor:
        """Face crops [B, 3, T, S, S] in [-1, 1] -> face tokens [B, 1 + (T-1)/4 + 1, heads + 1, dim], zero first frame."""
        dev, dt = self.main_device, self.compute_dtype
        b, _, frames = face_pixel_values.shape[:3]
        faces = face_pixel_values.to(dev, dt).transpose(1, 2).flatten(0, 1)  # [(B T), 3, S, S]
        motion = self.motion_encoder(faces).unflatten(0, (b, frames))  # [B, T, rows] float32
        tokens = self.face_encoder(motion.to(dt))
        return torch.cat([tokens.new_zeros(b, 1, *tokens.shape[2:]), tokens], dim=1)

    @torch.no_grad()
    def forward(self, x, t, context, clip_fea, y, pose_latents=None, face_pixel_values=None, step_cache=None):
        """See the module docstring. `face_pixel_values` all -1 is the reference's 'no face' for guidance.
        step_cache: a step cache's plan (see step_residuals): skipped rows skip the face blocks too, as these run
        inside run_blocks."""
        h, e, e0, state = self.embed(x, t, context, clip_fea, y, pose_latents, face_pixel_values)
        return self.finish(self.run_blocks_cached(h, e0, state, step_cache), e, state)

    @torch.no_grad()
    def embed(self, x, t, context, clip_fea, y, pose_latents=None, face_pixel_values=None):
        """Inputs -> (tokens h [B, L, dim], time embedding e, block modulation e0 [B, 6, dim], ForwardState with the
        face tokens): the part of a forward before the blocks (see WanInfiniteTalkModel.embed)."""
        t = torch.as_tensor(t)
        self._check_video_inputs(x, t, context, clip_fea, y)
        self._check_animate_inputs(x, pose_latents, face_pixel_values)
        b = x.shape[0]
        h = self._patch_embed(x, y)
        pose = self.pose_patch_embedding(pose_latents.to(self.main_device, self.compute_dtype))
        h = torch.cat([h[:, :, :1], h[:, :, 1:] + pose.expand(b, -1, -1, -1, -1)], dim=2)
        state, e, e0 = self._prepare(h, t, context, clip_fea)
        h = h.flatten(2).transpose(1, 2)
        state.face_tokens = self.face_tokens(face_pixel_values).expand(b, -1, -1, -1)
        return self._shard_tokens(h, state), e, e0, state

    def compile_units(self) -> list:
        """What torch.compile compiles: the transformer blocks and the face blocks."""
        return [*self.blocks, *self.face_adapter.fuser_blocks]

    def _after_block(self, index: int, h: torch.Tensor, state) -> torch.Tensor:
        every = self.config["face_block_every"]
        if index % every:
            return h
        block = self.face_adapter.fuser_blocks[index // every]
        if state.shard is None:
            return h + block(h, state.face_tokens, state.backend)
        return h + state.per_frame_residual(h, lambda x, span: block(x, state.face_tokens, state.backend, span))
