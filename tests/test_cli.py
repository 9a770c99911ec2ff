"""`python -m wanvideo generate`: the one-command path from a portrait and speech to an MP4 with sound."""
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import save_file
from testlib import REPO_ROOT

from wanvideo.app import cli
from wanvideo.app.model_files import ModelPaths, resolve_models
from wanvideo.errors import InputError, ModelFileError
from wanvideo.sampling.vae import load_wan_vae

SPEECH_SECONDS = 1.5  # 37 frames at 25 fps: three windows of 17 frames (12 new frames each after the first)


@pytest.fixture(scope="module")
def short_speech(tmp_path_factory, ):
    from testlib import MEDIA

    data, rate = sf.read(str(MEDIA / "speech_en_mono16k.wav"), dtype="float32")
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    sf.write(str(path), data[: int(SPEECH_SECONDS * rate)], rate)
    return path


def _streams(path):
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        a = c.streams.audio[0]
        frames = sum(1 for _ in c.decode(v))
        info = dict(vcodec=v.codec_context.name, pix_fmt=v.codec_context.pix_fmt, fps=float(v.average_rate),
                    frames=frames, acodec=a.codec_context.name, adur=float(a.duration * a.time_base),
                    width=v.codec_context.width, height=v.codec_context.height)
    return info


def test_embedded_default_makes_an_mp4_with_sound(tmp_path, short_speech, media_dir):
    out = tmp_path / "talk.mp4"
    cmd = [sys.executable, "-m", "wanvideo", "generate", "--image", str(media_dir / "portrait_480x832.png"),
           "--audio", str(short_speech), "--output", str(out),
           # small and few: the embedded set's automatic size and 4 steps work too, only slower
           "--width", "64", "--height", "64", "--steps", "2", "--frame-window", "17", "--motion-frames", "5"]
    env = dict(os.environ, OMP_NUM_THREADS="2")
    result = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    # It says plainly what the embedded set is.
    assert "the picture will be noise; the sound and the timing are real" in result.stderr
    assert "picture is noise" in result.stdout
    # A progress bar per window and step.
    assert "window 1/3" in result.stderr and "window 3/3" in result.stderr and "step 2/2" in result.stderr

    info = _streams(out)
    speech = sf.info(str(short_speech)).duration
    assert info["vcodec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert info["acodec"] == "aac"
    assert (info["width"], info["height"]) == (64, 64)
    assert info["fps"] == 25
    assert info["frames"] == int(speech * 25)  # frames = int(seconds x fps), as the reference counts
    video_seconds = info["frames"] / info["fps"]
    assert abs(video_seconds - speech) <= 1 / 25
    assert abs(info["adur"] - speech) <= 1 / 25
    # One file left: the finished windows are removed once the MP4 is written.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["talk.mp4"]


def _run(argv, capsys):
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_missing_input_files_get_clear_errors(tmp_path, short_speech, media_dir, capsys):
    image = str(media_dir / "portrait_480x832.png")
    out = str(tmp_path / "x.mp4")
    code, _, err = _run(["generate", "--image", str(tmp_path / "nope.png"), "--audio", str(short_speech),
                         "--output", out], capsys)
    assert code == 2 and "--image" in err and "file not found" in err and "Traceback" not in err
    code, _, err = _run(["generate", "--image", image, "--audio", str(tmp_path / "nope.wav"), "--output", out], capsys)
    assert code == 2 and "--audio" in err and "file not found" in err
    code, _, err = _run(["generate", "--image", image, "--audio", str(short_speech),
                         "--output", str(tmp_path / "no_such_dir" / "x.mp4")], capsys)
    assert code == 2 and "does not exist" in err
    code, _, err = _run(["generate", "--image", str(short_speech), "--audio", str(short_speech), "--output", out], capsys)
    assert code == 2 and "not an image" in err
    code, _, err = _run(["generate", "--image", image, "--audio", image, "--output", out], capsys)
    assert code == 2 and "--audio" in err
    assert not os.path.exists(out)


def test_missing_model_files_are_named(tmp_path, short_speech, media_dir, capsys):
    image = str(media_dir / "portrait_480x832.png")
    out = str(tmp_path / "x.mp4")
    code, _, err = _run(["generate", "--image", image, "--audio", str(short_speech), "--output", out,
                         "--model", str(tmp_path / "missing.safetensors")], capsys)
    assert code == 2 and "--model" in err and "not found" in err
    (tmp_path / "wan.safetensors").write_bytes(b"")
    code, _, err = _run(["generate", "--image", image, "--audio", str(short_speech), "--output", out,
                         "--model", str(tmp_path / "wan.safetensors")], capsys)
    assert code == 2 and "--infinitetalk is missing" in err and "--models-dir" in err
    code, _, err = _run(["generate", "--image", image, "--audio", str(short_speech), "--output", out,
                         "--models-dir", str(tmp_path / "empty")], capsys)
    assert code == 2 and "not a folder" in err


def _touch(root, *parts):
    path = root.joinpath(*parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return str(path)


def test_models_dir_is_searched_in_comfyui_layout(tmp_path):
    m = tmp_path / "models"
    wan = _touch(m, "diffusion_models", "wan2.1_i2v_480p_14B_fp8_e4m3fn.safetensors")
    single = _touch(m, "diffusion_models", "WanVideo", "Wan2_1-InfiniteTalk-Single_fp8_e4m3fn_scaled_KJ.safetensors")
    multi = _touch(m, "diffusion_models", "WanVideo", "Wan2_1-InfiniteTalk-Multi_fp8_e4m3fn_scaled_KJ.safetensors")
    _touch(m, "diffusion_models", "wan2.1_t2v_1.3B_fp16.safetensors")
    wav = _touch(m, "wav2vec2", "wav2vec2-chinese-base_fp16.safetensors")
    vae = _touch(m, "vae", "wan_2.1_vae.safetensors")
    _touch(m, "vae", "wan2.2_vae.safetensors")
    clip = _touch(m, "clip_vision", "clip_vision_h.safetensors")
    te = _touch(m, "text_encoders", "umt5_xxl_fp8_e4m3fn_scaled.safetensors")
    found = resolve_models(ModelPaths(models_dir=str(m)), two_speakers=False)
    assert found == dict(model=wan, infinitetalk=single, wav2vec=wav, vae=vae, clip_vision=clip, text_encoder=te)
    assert resolve_models(ModelPaths(models_dir=str(m)), two_speakers=True)["infinitetalk"] == multi
    # An explicit path wins over the search.
    other = _touch(tmp_path, "elsewhere", "my_vae.safetensors")
    assert resolve_models(ModelPaths(models_dir=str(m), vae=other), two_speakers=False)["vae"] == other
    # Two equally good candidates: ask, listing both.
    _touch(m, "text_encoders", "umt5_xxl_fp16.safetensors")
    with pytest.raises(InputError, match="several umt5-xxl") as err:
        resolve_models(ModelPaths(models_dir=str(m)), two_speakers=False)
    assert "--text-encoder" in str(err.value) and "umt5_xxl_fp16" in str(err.value)
    # A kind that is absent names the folder to put it in.
    with pytest.raises(InputError, match="no Wan2.1 I2V 14B .* found in .*elsewhere/diffusion_models/"):
        resolve_models(ModelPaths(models_dir=str(tmp_path / "elsewhere")), two_speakers=False)
    os.remove(clip)
    with pytest.raises(InputError, match="no CLIP ViT-H/14 .* found in .*models/clip_vision/"):
        resolve_models(ModelPaths(models_dir=str(m), text_encoder=te), two_speakers=False)


def test_wan_vae_loader_names_wrong_files(tmp_path):
    save_file({"blocks.0.self_attn.q.weight": torch.zeros(2, 2)}, str(tmp_path / "dit.safetensors"))
    with pytest.raises(ModelFileError, match="not a Wan 2.1 VAE"):
        load_wan_vae(str(tmp_path / "dit.safetensors"))
    (tmp_path / "broken.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(ModelFileError, match="re-download"):
        load_wan_vae(str(tmp_path / "broken.safetensors"))


def test_write_tiny_models_loads_through_the_engine_loaders(tmp_path, capsys):
    from wanvideo.audio import load_wav2vec
    from wanvideo.model import load_model

    code, out, _ = _run(["write-tiny-models", str(tmp_path)], capsys)
    assert code == 0
    import json

    names = json.loads(out.strip().splitlines()[-1])
    dm = tmp_path / "diffusion_models"
    with_audio = load_model([str(dm / names["model"])], dtype="fp32", device="cpu")
    plain = load_model([str(dm / names["model_no_audio"])], dtype="fp32", device="cpu")
    assert with_audio.config["audio_adapter"] and not plain.config["audio_adapter"]
    assert with_audio.config["text_dim"] == names["text_dim"] and with_audio.config["clip_dim"] == names["clip_dim"]
    animate = load_model([str(dm / names["animate_model"])], dtype="fp32", device="cpu")
    assert animate.config["model_type"] == "animate" and type(animate).__name__ == "WanAnimateModel"
    assert animate.config["text_dim"] == names["text_dim"] and animate.config["clip_dim"] == names["clip_dim"]
    enc = load_wav2vec(str(tmp_path / "wav2vec2" / names["wav2vec"]))
    assert enc.num_layers == with_audio.config["audio_layers"]
    assert enc.hidden_size == with_audio.config["audio_channels"]
    assert np.isfinite(sum(float(p.abs().sum()) for p in with_audio.parameters()))


@pytest.mark.parametrize("model_format", ["safetensors", "gguf"])
def test_real_weights_path_with_a_models_dir(model_format, tmp_path, short_speech, media_dir, monkeypatch, capsys):
    """--models-dir in ComfyUI's layout, through the standalone encoders, the model and LoRA loaders:
    every file is a tiny random-weight one in the real format. Only the Wan VAE is swapped for the tiny
    one (its loader takes the real 127 M-parameter architecture only; checked against ComfyUI's by hand).
    gguf: the video model and the InfiniteTalk adapter are only there as Q8_0 GGUF files, found by the search."""
    import io
    import json

    import sentencepiece as spm
    from transformers import CLIPVisionConfig, CLIPVisionModel, UMT5Config, UMT5EncoderModel

    import wanvideo.app.encoders as encoders
    import wanvideo.app.pipeline as pipeline
    from wanvideo.tiny import tiny_vae

    models = tmp_path / "models"
    code, out, _ = _run(["write-tiny-models", str(models)] + (["--gguf", "Q8_0"] if model_format == "gguf" else []),
                        capsys)
    names = json.loads(out.strip().splitlines()[-1])
    model_args = ["--model", str(models / "diffusion_models" / names["model"]), "--infinitetalk", "none"]
    if model_format == "gguf":
        for name in ("model", "model_no_audio"):
            (models / "diffusion_models" / names[name]).unlink()
        model_args = []  # --models-dir finds the .gguf pair
    # umt5 (text width 32) with its sentencepiece model, as ComfyUI's single file.
    (tmp_path / "corpus.txt").write_text("\n".join(["a person is talking to the camera", "hello world",
                                                   "the woman speaks calmly in a quiet room"] * 30))
    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(input=str(tmp_path / "corpus.txt"), model_writer=proto, vocab_size=30,
                                   pad_id=0, eos_id=1, unk_id=2, bos_id=-1, minloglevel=2)
    torch.manual_seed(0)
    umt5 = UMT5EncoderModel(UMT5Config(vocab_size=30, d_model=names["text_dim"], d_kv=8, d_ff=48, num_layers=1,
                                       num_heads=4, feed_forward_proj="gated-gelu", is_gated_act=True,
                                       dense_act_fn="gelu_pytorch_tanh", tie_word_embeddings=False))
    sd = {k: v for k, v in umt5.state_dict().items() if k != "encoder.embed_tokens.weight"}
    sd["spiece_model"] = torch.frombuffer(bytearray(proto.getvalue()), dtype=torch.uint8)
    (models / "text_encoders").mkdir()
    save_file(sd, str(models / "text_encoders" / "umt5_xxl_tiny.safetensors"))
    # CLIP vision with 257 tokens (224 px, patch 14) of width clip_dim, named as ComfyUI's file.
    clip = CLIPVisionModel(CLIPVisionConfig(hidden_size=names["clip_dim"], intermediate_size=64, num_hidden_layers=2,
                                            num_attention_heads=1, image_size=224, patch_size=14, hidden_act="gelu"))
    (models / "clip_vision").mkdir()
    save_file({("vision_model." + k if not k.startswith("vision_model.") else k): v for k, v in clip.state_dict().items()},
              str(models / "clip_vision" / "clip_vision_h.safetensors"))
    (models / "vae").mkdir()
    # a placeholder (the loader is replaced below), but a well-formed file: headers are checked before loading
    save_file({"placeholder": torch.zeros(1)}, str(models / "vae" / "wan_2.1_vae.safetensors"))
    vae_loads = []
    monkeypatch.setattr(pipeline, "load_wan_vae", lambda path, **kw: vae_loads.append(path) or tiny_vae(seed=2))
    import wanvideo.model as model_package

    loaded = []
    original_load = model_package.load_model
    monkeypatch.setattr(model_package, "load_model", lambda *a, **kw: loaded.append(original_load(*a, **kw)) or loaded[-1])
    used = []
    for name in ("load_text_encoder", "load_clip_vision"):
        original = getattr(encoders, name)
        monkeypatch.setattr(encoders, name, lambda path, _f=original, **kw: used.append(path) or _f(path, **kw))
    gen = torch.Generator().manual_seed(5)
    lora = {"diffusion_model.blocks.0.self_attn.q.lora_down.weight": torch.randn(4, 64, generator=gen),
            "diffusion_model.blocks.0.self_attn.q.lora_up.weight": torch.randn(64, 4, generator=gen),
            "diffusion_model.blocks.0.self_attn.q.alpha": torch.tensor(4.0)}
    (models / "loras").mkdir()
    save_file(lora, str(models / "loras" / "tiny_lora.safetensors"))

    out_path = tmp_path / "real.mp4"
    code, stdout, err = _run(
        ["generate", "--image", str(media_dir / "portrait_480x832.png"), "--audio", str(short_speech),
         "--output", str(out_path), "--models-dir", str(models), "--device", "cpu", "--dtype", "fp32",
         *model_args, "--lora", str(models / "loras" / "tiny_lora.safetensors") + ":0.5", "--prompt", "a person is talking",
         "--width", "64", "--height", "64", "--frame-window", "17", "--motion-frames", "5", "--quiet"], capsys)
    assert code == 0, err
    assert "picture is noise" not in stdout  # not the embedded set
    assert used == [str(models / "text_encoders" / "umt5_xxl_tiny.safetensors"),
                    str(models / "clip_vision" / "clip_vision_h.safetensors")]
    assert vae_loads == [str(models / "vae" / "wan_2.1_vae.safetensors")]
    (dit,) = loaded
    assert dit.has_audio_adapter
    if model_format == "gguf":
        from wanvideo.model.quant.quantized import is_packed

        assert [Path(f).name for f in dit.loaded_from["files"]] == [names["gguf_model"], names["gguf_infinitetalk"]]
        q = dit.blocks[0].self_attn.q
        assert is_packed(q) and q.weight_format.qtype == "Q8_0" and q.weight_lora_up is not None  # LoRA kept beside
    info = _streams(out_path)
    assert info["frames"] == int(sf.info(str(short_speech)).duration * 25) and info["acodec"] == "aac"
