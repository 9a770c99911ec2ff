"""Test doubles for the few ComfyUI core nodes our example workflows use. TEST-ONLY.

They declare exactly the inputs and outputs of the real nodes (taken from ComfyUI v0.3.64, see
`core_nodes.py`) and return objects shaped as the real host's are, so a workflow that runs through
them runs through our nodes the way it does in ComfyUI:

- IMAGE: float32 `[B, H, W, 3]` in 0..1; MASK: `[B, H, W]`; AUDIO: `{"waveform": [1, C, T] float32, "sample_rate": int}`.
- CONDITIONING (umt5, `CLIPLoader` type wan + `CLIPTextEncode`): `[[cond [1, 512, text_dim], {"pooled_output": None}]]`,
  the prompt's tokens first and zeros after them (ComfyUI pads umt5 output to 512 tokens and zeroes the padding).
- CLIP_VISION_OUTPUT: an object with `penultimate_hidden_states` / `last_hidden_state` `[1, 257, clip_dim]`,
  `image_embeds`, indexable like ComfyUI's `clip_vision.Output`.
- VAE (Wan 2.1): `encode(pixels [F, H, W, 3] 0..1) -> [1, 16, 1 + (F-1)//4, H/8, W/8]` raw (unnormalised) latents;
  `decode(latent [1, 16, T, h, w]) -> [1, 1 + 4(T-1), 8h, 8w, 3]` in 0..1; plus the compression getters.

The text and image "encoders" are deterministic functions of their input (different prompts or images give
different features) with the tiny model's widths; the VAE wraps a diffusers `AutoencoderKLWan`.
Configure them with `configure(text_dim=..., clip_dim=..., vae=...)` and the input folder with `set_input_dir`.
The host's model management (its VRAM accounting: load, evict, unload) has its own double in
`model_management_double.py`.
"""
from __future__ import annotations

import hashlib
import os
from fractions import Fraction

import numpy as np
import torch

from .core_nodes import CORE_NODES

_STATE = {"input_dir": None, "text_dim": 32, "clip_dim": 32, "vae": None, "loaded": []}


def set_input_dir(path) -> None:
    _STATE["input_dir"] = str(path)


def configure(text_dim: int | None = None, clip_dim: int | None = None, vae=None) -> None:
    if text_dim is not None:
        _STATE["text_dim"] = int(text_dim)
    if clip_dim is not None:
        _STATE["clip_dim"] = int(clip_dim)
    if vae is not None:
        _STATE["vae"] = vae


def loaded_files() -> list:
    """(loader class, file name) for every model file a loader double was asked for."""
    return list(_STATE["loaded"])


def _input_path(name: str) -> str:
    if _STATE["input_dir"] is None:
        raise RuntimeError("comfy_doubles.set_input_dir() was not called")
    path = os.path.join(_STATE["input_dir"], name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{name} is not in the test input folder {_STATE['input_dir']}")
    return path


def _core_input_types(node_id):
    """INPUT_TYPES as the real node returns it (file lists read from the test input folder)."""
    out = {}
    for entry in CORE_NODES[node_id]["inputs"]:
        opts = {k: entry[k] for k in ("default", "min", "max", "step", "multiline") if k in entry}
        for k in ("image_upload", "audio_upload", "video_upload"):
            if entry.get(k):
                opts[k] = True
        if entry["type"] == "COMBO":
            options = entry["options"]
            if isinstance(options, dict):
                folder = _STATE["input_dir"] if options["files"] == "input" else None
                options = sorted(os.listdir(folder)) if folder and os.path.isdir(folder) else []
            decl = (list(options), opts)
        else:
            decl = (entry["type"], opts)
        out.setdefault(entry["section"], {})[entry["name"]] = decl
    return out


class _CoreDouble:
    CORE_SPEC = True  # tells the workflow checker to use the recorded core declaration
    NODE_ID = ""

    @classmethod
    def INPUT_TYPES(cls):
        return _core_input_types(cls.NODE_ID)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        data = CORE_NODES[cls.NODE_ID]
        cls.RETURN_TYPES = tuple(data["outputs"])
        cls.RETURN_NAMES = tuple(data["output_names"])
        cls.OUTPUT_NODE = data["output_node"]
        cls.CATEGORY = "test doubles"


# ---------------------------------------------------------------- media

def _decode_audio(path):
    import av

    with av.open(path) as container:
        stream = container.streams.audio[0]
        channels = stream.codec_context.channels
        rate = stream.codec_context.sample_rate
        chunks = []
        for frame in container.decode(stream):
            arr = frame.to_ndarray()
            if arr.shape[0] != channels:  # packed layout
                arr = arr.reshape(-1, channels).T
            if arr.dtype.kind == "i":
                arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max + 1)
            chunks.append(arr.astype(np.float32))
    return torch.from_numpy(np.concatenate(chunks, axis=1)), rate


class LoadImage(_CoreDouble):
    NODE_ID = "LoadImage"
    FUNCTION = "load_image"

    def load_image(self, image):
        from PIL import Image

        img = Image.open(_input_path(image))
        rgb = torch.from_numpy(np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0)[None]
        if "A" in img.getbands():
            mask = 1.0 - torch.from_numpy(np.asarray(img.getchannel("A"), dtype=np.float32) / 255.0)[None]
        else:
            mask = torch.zeros((1, 64, 64), dtype=torch.float32)
        return rgb, mask


class LoadImageMask(_CoreDouble):
    NODE_ID = "LoadImageMask"
    FUNCTION = "load_image"

    def load_image(self, image, channel):
        from PIL import Image

        img = Image.open(_input_path(image)).convert("RGBA")
        c = {"alpha": "A", "red": "R", "green": "G", "blue": "B"}[channel]
        mask = torch.from_numpy(np.asarray(img.getchannel(c), dtype=np.float32) / 255.0)
        if c == "A":
            mask = 1.0 - mask
        return (mask[None],)


class LoadAudio(_CoreDouble):
    NODE_ID = "LoadAudio"
    FUNCTION = "load"

    def load(self, audio):
        waveform, rate = _decode_audio(_input_path(audio))
        return ({"waveform": waveform[None], "sample_rate": rate},)


class VideoFromFile:
    """Stands in for ComfyUI's VIDEO object (comfy_api VideoFromFile): components on demand."""

    def __init__(self, path):
        self.path = path

    def get_components(self):
        import av

        with av.open(self.path) as container:
            stream = container.streams.video[0]
            rate = Fraction(stream.average_rate) if stream.average_rate else Fraction(25)
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        images = torch.from_numpy(np.stack(frames).astype(np.float32) / 255.0)
        try:
            waveform, sr = _decode_audio(self.path)
            audio = {"waveform": waveform[None], "sample_rate": sr}
        except (IndexError, ValueError):
            audio = None
        return type("VideoComponents", (), {"images": images, "audio": audio, "frame_rate": rate})()


class LoadVideo(_CoreDouble):
    NODE_ID = "LoadVideo"
    FUNCTION = "execute"

    def execute(self, file):
        return (VideoFromFile(_input_path(file)),)


class GetVideoComponents(_CoreDouble):
    NODE_ID = "GetVideoComponents"
    FUNCTION = "execute"

    def execute(self, video):
        c = video.get_components()
        return c.images, c.audio, float(c.frame_rate)


class SolidMask(_CoreDouble):
    NODE_ID = "SolidMask"
    FUNCTION = "solid"

    def solid(self, value, width, height):
        return (torch.full((1, height, width), value, dtype=torch.float32),)


class MaskComposite(_CoreDouble):
    NODE_ID = "MaskComposite"
    FUNCTION = "combine"

    def combine(self, destination, source, x, y, operation):
        out = destination.clone()
        h = min(source.shape[-2], out.shape[-2] - y)
        w = min(source.shape[-1], out.shape[-1] - x)
        region = out[..., y:y + h, x:x + w]
        src = source[..., :h, :w]
        ops = {"multiply": region * src, "add": region + src, "subtract": region - src,
               "and": torch.logical_and(region.round().bool(), src.round().bool()).float(),
               "or": torch.logical_or(region.round().bool(), src.round().bool()).float(),
               "xor": torch.logical_xor(region.round().bool(), src.round().bool()).float()}
        out[..., y:y + h, x:x + w] = ops[operation]
        return (out.clamp(0.0, 1.0),)


# ---------------------------------------------------------------- text encoder (umt5 stand-in)

class TinyTextEncoder:
    """Deterministic per-word embeddings of width text_dim: a CLIP object for CLIPTextEncode."""

    MAX_TOKENS = 512

    def __init__(self, name, text_dim):
        self.name = name
        self.text_dim = text_dim

    def _embed(self, word):
        seed = int.from_bytes(hashlib.sha256(word.encode("utf-8")).digest()[:8], "little")
        return torch.randn(self.text_dim, generator=torch.Generator().manual_seed(seed))

    def tokenize(self, text):
        return text.split() + ["</s>"]

    def encode_from_tokens_scheduled(self, tokens):
        cond = torch.zeros(1, max(self.MAX_TOKENS, len(tokens)), self.text_dim)
        for i, tok in enumerate(tokens):
            cond[0, i] = self._embed(tok)
        return [[cond, {"pooled_output": None}]]


class CLIPLoader(_CoreDouble):
    NODE_ID = "CLIPLoader"
    FUNCTION = "load_clip"

    def load_clip(self, clip_name, type="stable_diffusion", device="default"):
        if type != "wan":
            raise ValueError(f"the umt5 stand-in only plays type 'wan', got {type!r}")
        _STATE["loaded"].append(("CLIPLoader", clip_name))
        return (TinyTextEncoder(clip_name, _STATE["text_dim"]),)


class CLIPTextEncode(_CoreDouble):
    NODE_ID = "CLIPTextEncode"
    FUNCTION = "encode"

    def encode(self, clip, text):
        return (clip.encode_from_tokens_scheduled(clip.tokenize(text)),)


# ---------------------------------------------------------------- CLIP vision stand-in

class ClipVisionOutput:
    """Indexable like ComfyUI's clip_vision.Output."""

    def __getitem__(self, key):
        return getattr(self, key)

    def __setitem__(self, key, value):
        setattr(self, key, value)


class TinyClipVision:
    """257 tokens (1 + 16x16 patches of a 224 px centre crop) of width clip_dim, a fixed random projection."""

    def __init__(self, name, clip_dim):
        self.name = name
        gen = torch.Generator().manual_seed(1234)
        self.proj = torch.randn(3 * 14 * 14, clip_dim, generator=gen) / 30.0
        self.cls = torch.randn(1, clip_dim, generator=gen)

    def encode_image(self, image, crop=True):
        x = image[..., :3].movedim(-1, 1).float()
        if crop:
            s = 224 / min(x.shape[2], x.shape[3])
            x = torch.nn.functional.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)
            top, left = (x.shape[2] - 224) // 2, (x.shape[3] - 224) // 2
            x = x[:, :, top:top + 224, left:left + 224]
        else:
            x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
        patches = x.unfold(2, 14, 14).unfold(3, 14, 14)  # [B,3,16,16,14,14]
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(x.shape[0], 256, -1)
        tokens = torch.cat([self.cls.expand(x.shape[0], 1, -1), patches @ self.proj], dim=1)
        out = ClipVisionOutput()
        out["penultimate_hidden_states"] = tokens
        out["last_hidden_state"] = tokens * 0.5
        out["image_embeds"] = tokens.mean(dim=1)
        out["mm_projected"] = None
        return out


class CLIPVisionLoader(_CoreDouble):
    NODE_ID = "CLIPVisionLoader"
    FUNCTION = "load_clip"

    def load_clip(self, clip_name):
        _STATE["loaded"].append(("CLIPVisionLoader", clip_name))
        return (TinyClipVision(clip_name, _STATE["clip_dim"]),)


class CLIPVisionEncode(_CoreDouble):
    NODE_ID = "CLIPVisionEncode"
    FUNCTION = "encode"

    def encode(self, clip_vision, image, crop):
        return (clip_vision.encode_image(image, crop=crop == "center"),)


# ---------------------------------------------------------------- Wan 2.1 VAE stand-in

class HostVAE:
    """ComfyUI's VAE object conventions (comfy/sd.py, Wan 2.1 branch) over a diffusers AutoencoderKLWan."""

    latent_channels = 16
    latent_dim = 3
    output_channels = 3

    def __init__(self, autoencoder):
        self.first_stage_model = autoencoder.eval()
        # ComfyUI keeps the VAE's working precision here and casts every input to it (bf16 on most GPUs)
        self.vae_dtype = next(autoencoder.parameters()).dtype
        self.upscale_ratio = (lambda a: max(0, a * 4 - 3), 8, 8)
        self.downscale_ratio = (lambda a: max(0, (a + 3) // 4), 8, 8)
        self.upscale_index_formula = (4, 8, 8)
        self.downscale_index_formula = (4, 8, 8)
        self.crop_input = True
        self.calls = {"encode": 0, "decode": 0}

    def spacial_compression_encode(self):
        return 8

    def spacial_compression_decode(self):
        return 8

    def temporal_compression_decode(self):
        return 4

    def vae_encode_crop_pixels(self, pixels):
        dims = pixels.shape[1:-1]
        for d, size in enumerate(dims):
            keep = (size // 8) * 8
            if keep != size:
                pixels = pixels.narrow(d + 1, (size % 8) // 2, keep)
        return pixels

    @torch.no_grad()
    def encode(self, pixel_samples):
        self.calls["encode"] += 1
        pixels = self.vae_encode_crop_pixels(pixel_samples).movedim(-1, 1)  # [F,3,H,W]
        if pixels.ndim == 4:
            pixels = pixels.movedim(1, 0).unsqueeze(0)  # [1,3,F,H,W]
        x = pixels.float() * 2.0 - 1.0
        return self.first_stage_model.encode(x.to(self.vae_dtype)).latent_dist.mode().float()

    @torch.no_grad()
    def decode(self, samples_in, vae_options={}):  # noqa: B006 - same signature as ComfyUI
        self.calls["decode"] += 1
        out = self.first_stage_model.decode(samples_in.to(self.vae_dtype)).sample
        out = torch.clamp((out.float() + 1.0) / 2.0, 0.0, 1.0)
        return out.movedim(1, -1)


def tiny_autoencoder(seed: int = 0, base_dim: int = 8):
    """A small diffusers Wan VAE with the real compression (8x space, 4x time, 16 latent channels)."""
    from diffusers import AutoencoderKLWan

    torch.manual_seed(seed)
    return AutoencoderKLWan(base_dim=base_dim, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=1,
                            temperal_downsample=[False, True, True])


class VAELoader(_CoreDouble):
    NODE_ID = "VAELoader"
    FUNCTION = "load_vae"

    def load_vae(self, vae_name):
        _STATE["loaded"].append(("VAELoader", vae_name))
        if _STATE["vae"] is None:
            _STATE["vae"] = HostVAE(tiny_autoencoder())
        vae = _STATE["vae"]
        return (vae if isinstance(vae, HostVAE) else HostVAE(vae),)


NODE_CLASS_MAPPINGS = {cls.NODE_ID: cls for cls in (
    LoadImage, LoadImageMask, LoadAudio, LoadVideo, GetVideoComponents, SolidMask, MaskComposite,
    CLIPLoader, CLIPTextEncode, CLIPVisionLoader, CLIPVisionEncode, VAELoader,
)}


# ---------------------------------------------------------------- folder_paths stand-in

class FolderPaths:
    """Stands in for ComfyUI's `folder_paths` module (the parts the pack's host adapter uses), over a
    temporary base folder laid out as ComfyUI's: models/<folder>/, input/, output/, temp/.
    Install it with `monkeypatch.setitem(sys.modules, "folder_paths", FolderPaths(base))`."""

    FOLDERS = ("diffusion_models", "unet", "model_patches", "loras", "vae", "clip_vision", "text_encoders",
               "audio_encoders", "wav2vec2")

    def __init__(self, base):
        base = str(base)
        self.base_path = base
        self.models_dir = os.path.join(base, "models")
        self._dirs = {k: os.path.join(base, k) for k in ("input", "output", "temp")}
        for path in self._dirs.values():
            os.makedirs(path, exist_ok=True)
        # Extensions as ComfyUI registers them (supported_pt_extensions); the pack registers wav2vec2 itself.
        exts = {".ckpt", ".pt", ".pt2", ".bin", ".pth", ".safetensors", ".pkl", ".sft"}
        self.folder_names_and_paths = {f: ([os.path.join(self.models_dir, f)], set(exts)) for f in self.FOLDERS}

    def get_input_directory(self):
        return self._dirs["input"]

    def get_output_directory(self):
        return self._dirs["output"]

    def get_temp_directory(self):
        return self._dirs["temp"]

    def get_folder_paths(self, folder):
        return list(self.folder_names_and_paths[folder][0])

    def get_filename_list(self, folder):
        paths, exts = self.folder_names_and_paths[folder]
        names = set()
        for root in paths:
            for dirpath, _, files in os.walk(root):
                for f in files:
                    if not exts or os.path.splitext(f)[1].lower() in exts:
                        names.add(os.path.relpath(os.path.join(dirpath, f), root).replace(os.sep, "/"))
        return sorted(names)

    def get_full_path(self, folder, filename):
        if folder not in self.folder_names_and_paths:
            return None
        for root in self.folder_names_and_paths[folder][0]:
            path = os.path.join(root, filename)
            if os.path.isfile(path):
                return path
        return None
