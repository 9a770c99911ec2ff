"""A diffusers WanTransformer3DModel saved with save_pretrained loads into our model and computes the same."""
import torch

from wanvideo.model import load_model


def test_diffusers_folder_gives_diffusers_outputs(tmp_path):
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    ref = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=4, attention_head_dim=16, in_channels=36, out_channels=16,
        text_dim=32, freq_dim=32, ffn_dim=128, num_layers=2, cross_attn_norm=True, qk_norm="rms_norm_across_heads",
        eps=1e-6, image_dim=32, added_kv_proj_dim=64,
    ).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in ref.named_parameters():  # nothing left at 0/1, so every weight matters
            p.copy_(torch.randn(p.shape, generator=g) * (p.shape[-1] ** -0.5 if p.dim() > 1 else 0.1)
                    + (1.0 if name.endswith("norm_q.weight") or name.endswith("norm_k.weight") else 0.0))
    folder = tmp_path / "Wan2.1-I2V-tiny-Diffusers"
    ref.save_pretrained(str(folder / "transformer"))

    ours = load_model(folder, dtype=torch.float32, device="cpu")  # text_len 512 (diffusers hard-codes it too)
    assert ours.config["num_heads"] == 4 and not ours.config["audio_adapter"]
    assert ours.loaded_from["layouts"] == ["diffusers"]

    x, y = torch.randn(1, 16, 3, 4, 6, generator=g), torch.randn(1, 20, 3, 4, 6, generator=g)
    text = torch.zeros(1, 512, 32)
    text[:, :7] = torch.randn(1, 7, 32, generator=g)  # diffusers' pipeline zero-pads the prompt to text_len
    clip = torch.randn(1, 257, 32, generator=g)
    t = torch.tensor([700.0])
    with torch.no_grad():
        expected = ref(torch.cat([x, y], dim=1), t, text, encoder_hidden_states_image=clip, return_dict=False)[0]
    got = ours(x, t, text[:, :7], clip, y)
    assert (got - expected).abs().max() < 1e-4
