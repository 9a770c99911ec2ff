"""TEST-ONLY stand-in nodes for the real-host run (`scripts/comfyui/comfyui_e2e.py`).

`scripts/comfyui/comfyui_e2e.py` copies this file as `__init__.py` of a second, temporary custom node folder
next to the pack. It is never part of the pack.

Why: ComfyUI's core text-encoder loader builds umt5-xxl at its real size (5.7 billion parameters,
hard-coded config) whatever file it is given, so a tiny random-weight file cannot stand in for it on
a test machine. These nodes return CONDITIONING (and, if asked, CLIP_VISION_OUTPUT) in exactly the
host's format, with the tiny model's widths:
- CONDITIONING: `[[cond [1, 512, text_dim], {"pooled_output": None}]]`, prompt tokens first, zeros after
  (as ComfyUI's umt5 path pads to 512 and zeroes the padding);
- CLIP_VISION_OUTPUT: ComfyUI's own `comfy.clip_vision.Output` with `penultimate_hidden_states`
  `[1, 257, clip_dim]` (and `last_hidden_state`, `image_embeds`).
"""
import hashlib

import torch


def _word_vector(word, width):
    seed = int.from_bytes(hashlib.sha256(word.encode("utf-8")).digest()[:8], "little")
    return torch.randn(width, generator=torch.Generator().manual_seed(seed))


class InfiniteTalkE2ETinyTextEncode:
    CATEGORY = "InfiniteTalk/e2e test doubles"
    RETURN_TYPES = ("CONDITIONING",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "text": ("STRING", {"multiline": True, "tooltip": "Prompt (turned into deterministic per-word vectors)."}),
            "text_dim": ("INT", {"default": 32, "min": 1, "max": 8192, "tooltip": "Width of the tiny model's text input."}),
        }}

    def encode(self, text, text_dim):
        words = text.split() + ["</s>"]
        cond = torch.zeros(1, max(512, len(words)), text_dim)
        for i, word in enumerate(words):
            cond[0, i] = _word_vector(word, text_dim)
        return ([[cond, {"pooled_output": None}]],)


class InfiniteTalkE2ETinyClipVisionEncode:
    CATEGORY = "InfiniteTalk/e2e test doubles"
    RETURN_TYPES = ("CLIP_VISION_OUTPUT",)
    FUNCTION = "encode"

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {
            "image": ("IMAGE", {"tooltip": "Image to describe."}),
            "clip_dim": ("INT", {"default": 32, "min": 1, "max": 8192, "tooltip": "Width of the tiny model's image input."}),
            "crop": (["center", "none"], {"tooltip": "Centre crop to a square first."}),
        }}

    def encode(self, image, clip_dim, crop):
        from comfy.clip_vision import Output

        x = image[..., :3].movedim(-1, 1).float()
        if crop == "center":
            s = 224 / min(x.shape[2], x.shape[3])
            x = torch.nn.functional.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False)
            top, left = (x.shape[2] - 224) // 2, (x.shape[3] - 224) // 2
            x = x[:, :, top:top + 224, left:left + 224]
        else:
            x = torch.nn.functional.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
        gen = torch.Generator().manual_seed(1234)
        proj = torch.randn(3 * 14 * 14, clip_dim, generator=gen) / 30.0
        cls_token = torch.randn(1, 1, clip_dim, generator=gen)
        patches = x.unfold(2, 14, 14).unfold(3, 14, 14).permute(0, 2, 3, 1, 4, 5).reshape(x.shape[0], 256, -1)
        tokens = torch.cat([cls_token.expand(x.shape[0], 1, clip_dim), patches @ proj], dim=1)
        out = Output()
        out["penultimate_hidden_states"] = tokens
        out["last_hidden_state"] = tokens * 0.5
        out["image_embeds"] = tokens.mean(dim=1)
        out["mm_projected"] = None
        return (out,)


NODE_CLASS_MAPPINGS = {
    "InfiniteTalkE2ETinyTextEncode": InfiniteTalkE2ETinyTextEncode,
    "InfiniteTalkE2ETinyClipVisionEncode": InfiniteTalkE2ETinyClipVisionEncode,
}
