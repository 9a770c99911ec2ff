"""SAM2 replacement masks through transformers on a tiny random SAM2 video model, prompted as the official code."""
import numpy as np
import pytest
import torch

from wanvideo.animate_preprocess.masks import sam2_prompts
from wanvideo.animate_preprocess.segmentation import Sam2Segmenter

S = 64  # model input size of the tiny config


def tiny_sam2_folder(path):
    from transformers import Sam2VideoConfig, Sam2VideoModel

    backbone = dict(model_type="sam2_hiera_det_model", hidden_size=16, image_size=[S, S], blocks_per_stage=[1, 1, 2, 1],
                    embed_dim_per_stage=[16, 32, 64, 128], num_attention_heads_per_stage=[1, 1, 1, 1],
                    window_size_per_stage=[4, 4, 4, 4], global_attention_blocks=[3],
                    window_positional_embedding_background_size=[2, 2])
    # The memory path has a fixed 64-channel memory, smaller than the feature width (as in the real model).
    config = Sam2VideoConfig(
        vision_config=dict(model_type="sam2_vision_model", backbone_config=backbone,
                           backbone_channel_list=[128, 64, 32, 16], fpn_hidden_size=128,
                           backbone_feature_sizes=[[S // 4, S // 4], [S // 8, S // 8], [S // 16, S // 16]]),
        prompt_encoder_config=dict(hidden_size=128, image_size=S, patch_size=16),
        mask_decoder_config=dict(hidden_size=128, mlp_dim=128, num_attention_heads=2, iou_head_hidden_dim=128),
        image_size=S, memory_attention_hidden_size=128, memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=128, memory_attention_rope_feat_sizes=[S // 16, S // 16],
        memory_encoder_hidden_size=128, memory_encoder_output_channels=64, mask_downsampler_embed_dim=128,
        memory_fuser_embed_dim=128, memory_fuser_intermediate_dim=128, num_maskmem=3)
    torch.manual_seed(0)
    Sam2VideoModel(config).save_pretrained(str(path))
    return str(path)


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory):
    return Sam2Segmenter.from_folder(tiny_sam2_folder(tmp_path_factory.mktemp("sam2")))


def _metas(n, width=80, height=48):
    rng = np.random.default_rng(1)
    return [{"keypoints_body": rng.random((20, 3)).astype(np.float32), "width": width, "height": height}
            for _ in range(n)]


def test_prompts_chunks_and_mask_sizes(segmenter, monkeypatch):
    from transformers.models.sam2_video import modeling_sam2_video as m

    prompted, chunk_calls, frames_read = [], [], []
    original_add = m.Sam2VideoInferenceSession.add_point_inputs

    def record_add(self, obj_idx, frame_idx, inputs):
        prompted.append((frame_idx, inputs["point_coords"].clone(), inputs["point_labels"].clone()))
        return original_add(self, obj_idx, frame_idx, inputs)

    monkeypatch.setattr(m.Sam2VideoInferenceSession, "add_point_inputs", record_add)
    original_chunk = segmenter.chunk_masks

    def record_chunk(frames, frame_idx, points):
        chunk_calls.append((len(frames), frame_idx.tolist()))
        return original_chunk(frames, frame_idx, points)

    monkeypatch.setattr(segmenter, "chunk_masks", record_chunk)
    monkeypatch.setattr(segmenter, "chunk", 8)  # the official 400 scaled down: 19 frames -> 8 + 8 + 3
    metas = _metas(19)
    frames = [np.full((48, 80, 3), 10 * t, np.uint8) for t in range(19)]

    def frame_at(t):
        frames_read.append(t)
        return frames[t]

    masks = list(segmenter.masks(frame_at, metas, 48, 80))
    assert len(masks) == 19 and all(mk.shape == (48, 80) and mk.dtype == np.uint8 for mk in masks)
    assert set(np.unique(np.stack(masks))) <= {0, 1}
    assert frames_read == list(range(19))  # every frame once, chunks joined without a gap or overlap
    assert chunk_calls == [(8, [0, 2, 4, 6]), (8, [0, 2, 4, 6]), (3, [0])]
    # The points handed to SAM2: the official 8 body points of each key frame, scaled to the model input.
    expected = sam2_prompts(metas, 8)
    flat = [(int(i), pts) for idx, pts_all in expected for i, pts in zip(idx, pts_all, strict=True)]
    assert [p[0] for p in prompted] == [i for i, _ in flat]
    for (_, coords, labels), (_, pts) in zip(prompted, flat, strict=True):
        np.testing.assert_allclose(coords[0, 0].numpy(), pts * np.array([S / 80, S / 48]), rtol=1e-6)
        assert labels.tolist() == [[[1] * 8]]


def test_not_a_sam2_folder(tmp_path):
    from wanvideo.errors import ModelFileError

    with pytest.raises(ModelFileError, match="sam2.1-hiera-large"):
        Sam2Segmenter.from_folder(str(tmp_path))


def test_replacement_run_with_sam2_masks(segmenter, monkeypatch):
    """The replacement run takes its person masks from SAM2 (one chunk here), at the frames' size."""
    from testlib.preprocess_fixtures import DETECTOR, POSE
    from testlib.synthetic_person import person_clip, person_frame

    from wanvideo.animate_preprocess.pipeline import preprocess_replace

    made = []
    original = segmenter.chunk_masks

    def record(frames, frame_idx, points):
        masks = original(frames, frame_idx, points)
        made.extend(masks)
        return masks

    monkeypatch.setattr(segmenter, "chunk_masks", record)
    out = preprocess_replace(person_clip(6), 30.0, person_frame(0), str(DETECTOR), str(POSE),
                             resolution_area=(96, 160), segmenter=segmenter, iterations=0)
    assert len(made) == 6 and made[0].shape == out["mask"].shape[1:3]
    # iterations 0: the SAM2 mask itself is the replacement mask
    np.testing.assert_array_equal(out["mask"][..., 0] // 255, np.stack(made))
