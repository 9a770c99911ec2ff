"""Sequence parallel on gloo CPU ranks gives the single-process DiT output (one and two speakers, float32)."""
import json

import pytest
import sp_testutils
import torch
import torch.nn.functional as F
from testlib.ranks import run_ranks

from wanvideo.errors import InputError
from wanvideo.model.parallel.ring_attention import block_attention, merge_blocks
from wanvideo.model.parallel.sequence_parallel import FrameSpan, split_degrees


@pytest.mark.parametrize("world", [2, 4])
def test_split_forward_equals_single_process(tmp_path, world):
    result = tmp_path / "result.json"
    run_ranks(sp_testutils.forward_parity, world, str(result))
    report = json.loads(result.read_text())
    assert set(report) == set(sp_testutils.CASES)
    for name, r in report.items():
        assert r["finite"] and r["ranks_agree"], (name, r)
        assert r["max_abs_diff"] <= 1e-5, (name, r)
        assert r["scale"] > 0.1, (name, r)  # a real output, not zeros compared with zeros
    assert (report["ulysses_one_speaker"]["ulysses"], report["ulysses_one_speaker"]["ring"]) == (world, 1)
    assert (report["ring_two_speakers"]["ulysses"], report["ring_two_speakers"]["ring"]) == (1, world)
    hybrid = report["two_heads_two_speakers"]
    assert (hybrid["ulysses"], hybrid["ring"]) == (2, world // 2)


def test_degrees_split_heads_as_far_as_they_divide():
    assert split_degrees(8, 40, "ulysses") == (8, 1)
    assert split_degrees(16, 40, "ulysses") == (8, 2)  # 40 heads: ulysses 8, the rest ring
    assert split_degrees(3, 40, "ulysses") == (1, 3)
    assert split_degrees(4, 40, "ring") == (1, 4)
    with pytest.raises(InputError, match="ulysses, ring"):
        split_degrees(2, 40, "tensor")


def test_frame_span_pads_partial_frames_and_restores_the_run():
    x = torch.arange(2 * 7 * 3, dtype=torch.float32).reshape(2, 7, 3)  # tokens 5..11 of frames of 4 tokens
    span = FrameSpan(offset=5, count=7, per_frame=4)
    assert (span.first_frame, span.frames) == (1, 2)
    framed = span.to_frames(x)
    assert framed.shape == (4, 4, 3)
    assert torch.equal(framed[0, 1:], x[0, :3]) and torch.equal(framed[1], x[0, 3:7])
    assert torch.equal(span.from_frames(framed, 2), x)
    y = torch.randn(2, 8, 3)
    assert torch.equal(FrameSpan(0, 8, 4).to_frames(y), y.reshape(4, 4, 3))  # whole frames: a plain reshape

def test_merged_blocks_equal_one_softmax_over_all_keys():
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 9, 3, 8, generator=gen) for _ in range(3))
    want = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2)
    out, lse = block_attention(q, k[:, :0], v[:, :0])  # an empty block first (a shard of padding)
    for part in (slice(0, 4), slice(4, 5), slice(5, 9)):
        out, lse = merge_blocks(out, lse, *block_attention(q, k[:, part], v[:, part]))
    torch.testing.assert_close(out, want, atol=1e-6, rtol=1e-5)
