"""With a CLIP encoder, each window's CLIP features come from its conditioning frame as the model sees it
(resized to cover and centre-cropped to the output size), as the reference encodes `cond_image` in every
window; for dubbing, each window's own source frame."""
import torch
from sampling_fakes import CONFIG, FakeDiT, FakeVAE

from wanvideo.sampling import SamplerSettings, generate

H, W = 32, 48


class RecordingEncoder:
    """A deterministic stand-in for CLIP ViT-H: features from the mean colour; records every image it gets."""

    def __init__(self):
        self.images = []

    def __call__(self, pixels):
        self.images.append(pixels.clone())
        mean = pixels.mean((1, 2))  # [3]
        return torch.cat([mean, mean.new_ones(CONFIG["clip_dim"] - 3)])[None].expand(257, -1) * 1.0

    def fingerprint(self):
        return "recording-encoder"


def _settings(**kw):
    return SamplerSettings(width=W, height=H, frame_window=9, motion_frames=5, steps=1, cfg=1.0, **kw)


def _dit():
    return FakeDiT(lambda x, t, context, clip_fea, y, audio, masks: torch.zeros_like(x),
                   config=dict(CONFIG, audio_adapter=False))


def test_image_is_encoded_as_cropped_to_the_output_size(tmp_path):
    # a 40x90 portrait: left and right thirds red/blue, centre green -> the 32x48 crop keeps mostly green
    image = torch.zeros(1, 40, 90, 3)
    image[:, :, :30, 0] = 1.0
    image[:, :, 30:60, 1] = 1.0
    image[:, :, 60:, 2] = 1.0
    encoder, dit = RecordingEncoder(), _dit()
    generate(dit, FakeVAE(record=False), image, None, settings=_settings(max_frames=13), store_root=str(tmp_path),
             clip_encoder=encoder)
    assert len(encoder.images) == 1  # one reference image: encoded once, used by every window
    seen = encoder.images[0]
    assert seen.shape == (3, H, W)  # the conditioning frame, not the 40x90 upload
    # the centre crop keeps half green, a quarter red and blue (the whole upload would be a third each)
    assert abs(seen[1].mean() - 0.5) < 0.05 and abs(seen[0].mean() - 0.25) < 0.05
    expected = encoder(seen)[None]
    assert all(torch.allclose(call["clip_fea"], expected) for call in dit.calls)


def test_dubbing_encodes_each_windows_own_frame(tmp_path):
    frames = torch.zeros(17, H, W, 3)
    for i in range(17):
        frames[i, :, :, 0] = i / 16.0  # red rises frame by frame
    encoder, dit = RecordingEncoder(), _dit()
    generate(dit, FakeVAE(record=False), frames, torch.zeros(1, 257, CONFIG["clip_dim"]),
             settings=_settings(max_frames=17), store_root=str(tmp_path), clip_encoder=encoder)
    # windows start at frames 0, 4, 8 (9-frame windows, 5 motion frames): one encoding each, of that frame
    reds = [round(float(img[0].mean()) * 16) for img in encoder.images]
    assert reds == [0, 4, 8]
    per_call = [round(float(call["clip_fea"][0, 0, 0]) * 16) for call in dit.calls]
    assert per_call == [0, 4, 8]  # each window's model call got its own frame's features


def test_without_an_encoder_the_given_features_are_used(tmp_path):
    given = torch.randn(1, 257, CONFIG["clip_dim"], generator=torch.Generator().manual_seed(3))
    dit = _dit()
    generate(dit, FakeVAE(record=False), torch.rand(1, H, W, 3), given, settings=_settings(max_frames=9),
             store_root=str(tmp_path))
    assert all(torch.equal(call["clip_fea"], given) for call in dit.calls)
