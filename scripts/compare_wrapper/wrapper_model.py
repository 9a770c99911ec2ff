"""The wrapper's real WanModel (kijai/ComfyUI-WanVideoWrapper, an outside checkout) built with OUR model's weights.

Used by scripts/compare_wrapper/wrapper_side_by_side.py. Nothing of the wrapper or ComfyUI is kept in this repository: both are
imported from checkouts given on the command line.

How the wrapper is imported:
- ComfyUI's folder goes on sys.path (the wrapper imports `comfy.*` and `folder_paths`). Without a GPU, ComfyUI is
  switched to CPU mode first, as its `--cpu` flag would.
- The wrapper's folder is mounted as a package under a neutral name WITHOUT running its __init__.py (that registers
  every node of the pack with ComfyUI's server). Its modules then import as they do inside ComfyUI (relative imports).
- Module-level imports that no forward pass uses and that may be missing on a bare machine (see `PLACEHOLDERS`) are
  replaced by placeholder modules, only where the real package is not installed. A placeholder raises as soon as
  anything calls into it, so it cannot change a result silently; the side-by-side prints what it replaced.

How the wrapper's model is built (what its `WanVideoModelLoader` and `MultiTalkModelLoader` nodes do for an
InfiniteTalk checkpoint): `WanModel(**TRANSFORMER_CONFIG)` under `init_empty_weights`, then the InfiniteTalk patch
(`norm_x` and `SingleStreamMultiAttention` on every block, `multitalk_audio_proj` = its `AudioProjModel`), then the
loader's own `load_weights` (its dtype policy: patch embedding float32, the rest in the base dtype).

Key mapping (ours -> wrapper): identical Wan names, except the audio projection: `audio_proj.*` ->
`multitalk_audio_proj.*` (the rename the wrapper's loader applies to InfiniteTalk files). Both key sets must match
exactly; a difference is an error naming the keys.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from pathlib import Path

import torch

PACKAGE = "wrapper_under_test"
# Imported at module level by ComfyUI or the wrapper, never used by the transformer's forward:
#   torchvision  ComfyUI's Cosmos/other model definitions (comfy.model_base imports every model family)
#   ftfy         the wrapper's T5 tokenizer (wanvideo/modules/__init__.py imports t5)
#   torchaudio   ComfyUI's audio model families
#   av           ComfyUI's video/audio input types
PLACEHOLDERS = ("torchvision", "ftfy", "torchaudio", "av")


class _Placeholder(types.ModuleType):
    """Stands in for a missing package: attribute access gives more placeholders, any call raises."""

    __path__: list = []

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Placeholder(f"{self.__name__}.{name}")

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"{self.__name__} is a placeholder (the package is not installed); the side-by-side "
                           "assumed no forward pass uses it")

    def __mro_entries__(self, bases):  # `class X(torchvision.Something)` at import time
        return (object,)


class _PlaceholderFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Last on sys.meta_path: answers only for PLACEHOLDERS that no real finder found."""

    def __init__(self):
        self.replaced: list[str] = []

    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in PLACEHOLDERS:
            self.replaced.append(name)
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        return _Placeholder(spec.name)

    def exec_module(self, module):
        pass


def import_wrapper(wrapper: Path, comfyui: Path, device: str) -> types.SimpleNamespace:
    """The wrapper's modules the side-by-side needs, and the placeholder modules used (`replaced`)."""
    wrapper, comfyui = Path(wrapper).resolve(), Path(comfyui).resolve()
    for path, marker in ((wrapper, "wanvideo/modules/model.py"), (comfyui, "comfy/model_management.py")):
        if not (path / marker).is_file():
            raise SystemExit(f"error: {path} is not the checkout expected (no {marker})")
    finder = _PlaceholderFinder()
    sys.meta_path.append(finder)
    sys.path.insert(0, str(comfyui))
    import comfy.cli_args

    if device == "cpu":
        comfy.cli_args.args.cpu = True  # ComfyUI's --cpu: model_management asks CUDA for a device otherwise
    package = types.ModuleType(PACKAGE)
    package.__path__ = [str(wrapper)]
    sys.modules[PACKAGE] = package
    return types.SimpleNamespace(
        model=importlib.import_module(f"{PACKAGE}.wanvideo.modules.model"),
        loading=importlib.import_module(f"{PACKAGE}.nodes_model_loading"),
        multitalk=importlib.import_module(f"{PACKAGE}.multitalk.multitalk"),
        replaced=sorted({name.split(".")[0] for name in finder.replaced}),
    )


def transformer_config(cfg: dict, device, dtype) -> dict:
    """The loader's TRANSFORMER_CONFIG for our (normalised) config: a Wan2.1 I2V model, sdpa attention."""
    return dict(dim=cfg["dim"], in_features=cfg["dim"], out_features=cfg["dim"], patch_size=cfg["patch_size"],
                ffn_dim=cfg["ffn_dim"], ffn2_dim=cfg["ffn_dim"], eps=cfg["eps"], freq_dim=cfg["freq_dim"],
                in_dim=cfg["in_dim"], model_type="i2v", out_dim=cfg["out_dim"], text_len=cfg["text_len"],
                text_dim=cfg["text_dim"], num_heads=cfg["num_heads"], num_layers=cfg["num_layers"],
                attention_mode="sdpa", rope_func="comfy", main_device=torch.device(device),
                offload_device=torch.device("cpu"), dtype=dtype)


def wrapper_state_dict(ours: torch.nn.Module) -> dict:
    """Our weights under the wrapper's names (copies: the two models never share a tensor)."""
    return {("multitalk_" + k if k.startswith("audio_proj.") else k): v.detach().clone()
            for k, v in ours.state_dict().items()}


def build_wrapper_model(ns: types.SimpleNamespace, ours: torch.nn.Module, device: str, dtype) -> torch.nn.Module:
    """The wrapper's WanModel with the InfiniteTalk patch, holding our model's weights."""
    from accelerate import init_empty_weights

    cfg = ours.config
    if cfg["clip_dim"] != 1280:
        raise SystemExit(f"error: the wrapper's image projection is fixed at 1280 CLIP channels, config has {cfg['clip_dim']}")
    with init_empty_weights():
        model = ns.model.WanModel(**transformer_config(cfg, device, dtype)).eval()
        for block in model.blocks:
            block.norm_x = ns.model.WanLayerNorm(cfg["dim"], model.eps, elementwise_affine=True)
            block.audio_cross_attn = ns.multitalk.SingleStreamMultiAttention(
                dim=cfg["dim"], num_heads=cfg["num_heads"], encoder_hidden_states_dim=cfg["output_dim"],
                attention_mode="sdpa")
        model.multitalk_audio_proj = ns.multitalk.AudioProjModel(
            seq_len=cfg["audio_window"], seq_len_vf=cfg["audio_window"] + cfg["vae_scale"] - 1,
            blocks=cfg["audio_layers"], channels=cfg["audio_channels"], intermediate_dim=cfg["intermediate_dim"],
            output_dim=cfg["output_dim"], context_tokens=cfg["context_tokens"],
            norm_output_audio=cfg["norm_output_audio"])
    model.multitalk_model_type = "InfiniteTalk"
    sd = wrapper_state_dict(ours)
    wanted = {name.replace("_orig_mod.", "") for name, _ in model.named_parameters()}
    if wanted != set(sd):
        raise SystemExit("error: the key mapping does not cover both models: only in the wrapper "
                         f"{sorted(wanted - set(sd))[:8]}, only in ours {sorted(set(sd) - wanted)[:8]}")
    ns.loading.load_weights(model, sd, weight_dtype=dtype, base_dtype=dtype, transformer_load_device=torch.device(device))
    return model.requires_grad_(False)


def prepare_sampling(model: torch.nn.Module, latent_frames: int) -> None:
    """What the wrapper's sampler node sets before sampling with its default RoPE ('comfy', RIFLEx index 0)."""
    model.rope_embedder.k = 0
    model.rope_embedder.num_frames = latent_frames
    model.rope_func = "comfy"
    for block in model.blocks:
        block.rope_func = "comfy"
