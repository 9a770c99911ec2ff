"""Speaker masks (the reference's recipe, fixture b) and output sizes (the reference's buckets)."""
import pytest
import torch
from safetensors.torch import load_file

from wanvideo.errors import InputError
from wanvideo.sampling import bucket_size, default_two_speaker_masks, ref_target_masks, resolve_size
from wanvideo.sampling.sizes import resize_and_crop_image


def test_default_two_speaker_masks_equal_the_reference_fixture(fixtures_dir):
    t = load_file(str(fixtures_dir / "dit_b_two_speakers.safetensors"))
    src = torch.stack([t[f"aux.source_mask.{i}"] for i in range(3)])
    h, w = src.shape[1:]
    assert torch.equal(default_two_speaker_masks(h, w), src[:2])
    lat_h, lat_w = t["input.ref_target_masks"].shape[1:]
    got = ref_target_masks(2, h, w, lat_h * 8, lat_w * 8, lat_h, lat_w)
    assert torch.equal(got, t["input.ref_target_masks"])


def test_one_speaker_gets_three_full_masks():
    assert torch.equal(ref_target_masks(1, 100, 80, 64, 48, 8, 6), torch.ones(3, 8, 6))


def test_user_masks_are_cropped_like_the_image_and_background_is_the_rest():
    m1, m2 = torch.zeros(1, 64, 128), torch.zeros(1, 64, 128)
    m1[0, :, :32] = 1  # leftmost quarter: cropped away partly by the square centre crop
    m2[0, :, 96:] = 0.7
    masks = ref_target_masks(2, 64, 128, 64, 64, 8, 8, [m1, m2])
    # 128 wide -> centre crop 64 keeps columns 32..95: speaker 1 is cut out entirely at latent level, 2 too
    assert not masks[0].any() and not masks[1].any() and masks[2].all()
    masks = ref_target_masks(2, 64, 128, 64, 128, 8, 16, [m1, m2])
    assert masks[0][:, :4].all() and not masks[0][:, 4:].any()
    assert masks[1][:, 12:].all() and torch.equal(masks[2], 1 - masks[0] - masks[1])
    with pytest.raises(InputError, match="both speaker masks"):
        ref_target_masks(2, 64, 128, 64, 128, 8, 16, [m1, None])
    with pytest.raises(InputError, match="empty"):
        ref_target_masks(2, 64, 128, 64, 128, 8, 16, [m1, torch.zeros(64, 128)])


@pytest.mark.parametrize("src,bucket,expected", [
    ((832, 480), "480p", (832, 448)),   # portrait 480x832 -> the 1.86 bucket
    ((480, 832), "480p", (448, 896)),
    ((641, 641), "480p", (640, 640)),
    ((1080, 1920), "720p", (704, 1280)),
    ((1920, 1080), "720p", (1280, 704)),
])
def test_automatic_size_uses_the_reference_buckets(src, bucket, expected):
    assert bucket_size(*src, bucket) == expected
    assert resolve_size(0, 0, *src, bucket) == expected


def test_explicit_sizes_are_checked():
    assert resolve_size(832, 480, 100, 100) == (480, 832)
    assert resolve_size(0, 480, 480, 832) == (480, 832)  # one side: keep the source aspect
    with pytest.raises(InputError, match="width 500 is not a multiple of 16.*496 or 512"):
        resolve_size(500, 480, 100, 100)
    with pytest.raises(InputError, match="unknown size bucket"):
        bucket_size(100, 100, "1080p")


def test_resize_covers_and_centre_crops():
    img = torch.zeros(3, 100, 200)
    img[:, :, 50:150] = 1.0  # a bright centre stripe half the width
    out = resize_and_crop_image(img, 64, 64)  # scale to 64x128, keep the centre 64 columns
    assert out.shape == (3, 64, 64)
    assert out[:, :, 4:60].min() > 0.99
