"""The command line's standalone text and image encoders load the files users have and compute what
transformers' own models compute on them (tiny configs with the real formats: ComfyUI's umt5
single file with its sentencepiece model, plain and scaled fp8; ComfyUI's clip_vision file)."""
import io

import pytest
import torch
from safetensors.torch import save_file

from wanvideo.app import encoders
from wanvideo.errors import ModelFileError

spm = pytest.importorskip("sentencepiece")

CORPUS = ["a person is talking to the camera", "the woman speaks calmly in a quiet room",
          "hello world this is a test", "bright tones overexposed static blurred details"]


@pytest.fixture(scope="module")
def spiece_proto(tmp_path_factory):
    d = tmp_path_factory.mktemp("spm")
    (d / "corpus.txt").write_text("\n".join(CORPUS * 20))
    buf = io.BytesIO()
    spm.SentencePieceTrainer.train(input=str(d / "corpus.txt"), model_writer=buf, vocab_size=40,
                                   model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1, minloglevel=2)
    return buf.getvalue()


@pytest.fixture(scope="module")
def tiny_umt5():
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    cfg = UMT5Config(vocab_size=40, d_model=16, d_kv=4, d_ff=24, num_layers=2, num_heads=4,
                     feed_forward_proj="gated-gelu", dense_act_fn="gelu_pytorch_tanh", is_gated_act=True,
                     tie_word_embeddings=False)
    return UMT5EncoderModel(cfg).eval()


def _comfy_umt5_file(path, model, proto, fp8=False):
    """The layout of ComfyUI's umt5_xxl_*.safetensors: HF names, spiece_model, optional scaled fp8."""
    sd = {k: v.clone() for k, v in model.state_dict().items() if k != "encoder.embed_tokens.weight"}
    if fp8:
        for k in list(sd):
            if k.endswith(".weight") and sd[k].ndim == 2 and "relative_attention_bias" not in k and k != "shared.weight":
                scale = sd[k].abs().max() / 448.0
                sd[k] = (sd[k] / scale).to(torch.float8_e4m3fn)
                sd[k[: -len(".weight")] + ".scale_weight"] = scale.reshape(())
        sd["scaled_fp8"] = torch.empty(0, dtype=torch.float8_e4m3fn)
    sd["spiece_model"] = torch.frombuffer(bytearray(proto), dtype=torch.uint8)
    save_file(sd, str(path))
    return sd


def test_umt5_single_file_matches_transformers(tmp_path, tiny_umt5, spiece_proto):
    _comfy_umt5_file(tmp_path / "umt5.safetensors", tiny_umt5, spiece_proto)
    enc = encoders.load_text_encoder(str(tmp_path / "umt5.safetensors"), dtype=torch.float32)
    text = "a person is   talking"
    ids = spm.SentencePieceProcessor(model_proto=spiece_proto).encode("a person is talking") + [1]
    with torch.no_grad():
        expected = tiny_umt5(input_ids=torch.tensor([ids])).last_hidden_state[0]
    out = enc.encode(text)
    assert out.shape == (len(ids), 16)  # the prompt's tokens and </s>, no padding (as the reference)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    other = enc.encode("hello world")
    assert not torch.allclose(other[: min(len(other), len(out))], out[: min(len(other), len(out))])


def test_umt5_scaled_fp8_file_dequantises(tmp_path, tiny_umt5, spiece_proto):
    sd = _comfy_umt5_file(tmp_path / "umt5_fp8.safetensors", tiny_umt5, spiece_proto, fp8=True)
    enc = encoders.load_text_encoder(str(tmp_path / "umt5_fp8.safetensors"), dtype=torch.float32)
    # The same model with the fp8-rounded weights, computed by transformers.
    rounded = {k: v for k, v in tiny_umt5.state_dict().items()}
    for k, v in sd.items():
        if v.dtype == torch.float8_e4m3fn and k != "scaled_fp8":
            rounded[k] = v.float() * sd[k[: -len(".weight")] + ".scale_weight"]
    ref = type(tiny_umt5)(tiny_umt5.config)
    ref.load_state_dict(rounded, strict=False)
    ref.encoder.embed_tokens.weight = ref.shared.weight
    ids = spm.SentencePieceProcessor(model_proto=spiece_proto).encode("hello world") + [1]
    with torch.no_grad():
        expected = ref.eval()(input_ids=torch.tensor([ids])).last_hidden_state[0]
    torch.testing.assert_close(enc.encode("hello world"), expected, atol=1e-5, rtol=1e-5)


def test_clip_vision_file_gives_penultimate_states(tmp_path):
    from transformers import CLIPVisionConfig, CLIPVisionModel

    torch.manual_seed(0)
    cfg = CLIPVisionConfig(hidden_size=64, intermediate_size=96, num_hidden_layers=3, num_attention_heads=1,
                           image_size=28, patch_size=14, hidden_act="gelu")  # ViT-H/14 uses exact GELU
    ref = CLIPVisionModel(cfg).eval()
    # ComfyUI's clip_vision_h.safetensors names: "vision_model." + transformers 4 names.
    sd = {("vision_model." + k if not k.startswith("vision_model.") else k): v for k, v in ref.state_dict().items()}
    sd["visual_projection.weight"] = torch.randn(32, 64)
    save_file(sd, str(tmp_path / "clip_vision.safetensors"))
    enc = encoders.load_clip_vision(str(tmp_path / "clip_vision.safetensors"), dtype=torch.float32)
    image = torch.rand(40, 30, 3)
    x = torch.nn.functional.interpolate(image.movedim(-1, 0)[None], size=(28, 28), mode="bicubic", align_corners=False)
    x = (x - torch.tensor(encoders.CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(encoders.CLIP_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = ref(pixel_values=x, output_hidden_states=True).hidden_states[-2][0]
    out = enc.encode(image)
    assert out.shape == (5, 64)  # 1 + (28/14)^2 tokens
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_wrong_files_are_named(tmp_path, spiece_proto):
    save_file({"foo.weight": torch.zeros(2, 2), "spiece_model": torch.frombuffer(bytearray(spiece_proto), dtype=torch.uint8)},
              str(tmp_path / "other.safetensors"))
    with pytest.raises(ModelFileError, match="not a umt5 text encoder"):
        encoders.load_text_encoder(str(tmp_path / "other.safetensors"))
    save_file({"foo.weight": torch.zeros(2, 2)}, str(tmp_path / "notok.safetensors"))
    with pytest.raises(ModelFileError, match="no tokenizer"):
        encoders.load_text_encoder(str(tmp_path / "notok.safetensors"))
    with pytest.raises(ModelFileError, match="not a CLIP vision model"):
        encoders.load_clip_vision(str(tmp_path / "notok.safetensors"))
    (tmp_path / "truncated.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    with pytest.raises(ModelFileError, match="re-download"):
        encoders.load_clip_vision(str(tmp_path / "truncated.safetensors"))
    with pytest.raises(FileNotFoundError, match="models/text_encoders"):
        encoders.load_text_encoder(str(tmp_path / "missing.safetensors"))
