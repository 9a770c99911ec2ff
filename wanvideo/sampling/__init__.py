"""wanvideo.sampling: schedules, guidance, colour correction and the long-video window loop.

`generate(...)` is the engine function the sampler node, the command line and the tests all drive;
`generate_animate(...)` the WanAnimate one (same window loop, model-specific conditioning; loop.py says how
the two share it and what a new model implements).
"""
from .animate import generate_animate
from .animate_settings import AnimateSettings
from .color import match_and_blend_colors
from .denoise import denoise_window, window_noise, window_seed
from .guidance import combine, needed_passes
from .longcat import generate_longcat
from .longcat_plan import longcat_plan, longcat_timesteps
from .longcat_sample import longcat_sample
from .masks import default_two_speaker_masks, ref_target_masks
from .schedules import SCHEDULERS, FlowSolver, reference_timesteps, timestep_transform
from .settings import GenerationInterrupted, Progress, SamplerSettings
from .sizes import ASPECT_BUCKETS, bucket_size, resolve_size
from .talk import generate
from .vae import DiffusersWanVAE, wan21_latent_stats
from .windows import Window, audio_rows, gather_audio, plan_windows

__all__ = [
    "ASPECT_BUCKETS", "AnimateSettings", "DiffusersWanVAE", "FlowSolver", "GenerationInterrupted", "Progress", "SCHEDULERS",
    "SamplerSettings", "Window", "audio_rows", "bucket_size", "combine", "default_two_speaker_masks",
    "denoise_window", "gather_audio", "generate", "generate_animate", "generate_longcat", "longcat_plan",
    "longcat_sample", "longcat_timesteps", "match_and_blend_colors", "needed_passes", "plan_windows",
    "reference_timesteps", "ref_target_masks", "resolve_size", "timestep_transform", "wan21_latent_stats",
    "window_noise", "window_seed",
]
