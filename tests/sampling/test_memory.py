"""Memory does not grow with the number of windows: frames go to disk, nothing accumulates."""
import ctypes
import gc
import sys
import tracemalloc

import psutil
import torch
from sampling_fakes import CONFIG, FakeDiT, FakeVAE, row_embeddings

from wanvideo.sampling import SamplerSettings, generate

H = W = 256  # each window keeps 8 frames: 1.5 MB as uint8, 12.6 MB as the float frames the VAE decodes


def _run(root, frames):
    model = FakeDiT(lambda x, t, *a: torch.tanh(x) * (t.view(-1, 1, 1, 1, 1) / 1000), record=False)
    rss = []

    def done(index, store):
        gc.collect()
        rss.append(psutil.Process().memory_info().rss)

    settings = SamplerSettings(frame_window=17, motion_frames=9, steps=1, cfg=1.0, audio_cfg=1.0, width=W,
                               height=H)
    store = generate(model, FakeVAE(record=False), torch.rand(1, H, W, 3), torch.zeros(1, 257, CONFIG["clip_dim"]),
                     audio=row_embeddings(frames), settings=settings, store_root=str(root), on_window_done=done)
    return store, rss


def _mmap_large_allocations():
    """Make glibc return freed large buffers to the OS at once, so RSS shows live memory, not its cache."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_mmap_threshold = -3
    libc.mallopt(m_mmap_threshold, 256 * 1024)


def test_rss_and_python_heap_stay_flat_from_n_to_3n_windows(tmp_path):
    _mmap_large_allocations()
    _run(tmp_path / "warmup", 17 + 8 * 2)  # first-use allocations (kernels, codec) are not growth
    tracemalloc.start()
    short, rss_short = _run(tmp_path / "short", 17 + 8 * 7)  # 8 windows
    _, heap_short = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    long, rss_long = _run(tmp_path / "long", 17 + 8 * 23)  # 24 windows
    _, heap_long = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert (short.num_windows, long.num_windows) == (8, 24) and len(long) == 201

    # keeping the frames of 16 more windows would take 25 MB (uint8) to 200 MB (float); allow 8 MB of noise
    assert max(rss_long) - max(rss_short) < 8 * 2**20, (max(rss_short), max(rss_long))
    # after window 8 of the long run, RSS no longer rises
    assert max(rss_long[8:]) - max(rss_long[:8]) < 8 * 2**20
    assert heap_long - heap_short < 2**20, (heap_short, heap_long)
