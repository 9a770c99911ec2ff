"""filename_prefix: ComfyUI-style numbered names inside the output folder, never outside, never overwritten."""
import os

import pytest
from video_testutils import listing

from wanvideo.errors import InputError
from wanvideo.video import output_folder, reserve_path, split_prefix


@pytest.mark.parametrize("prefix, message", [
    ("../x", "contains '..'"),
    ("video/../../x", "contains '..'"),
    ("..\\x", "contains '..'"),
    ("/etc/x", "absolute path"),
    ("\\\\server\\share\\x", "absolute path"),
    ("C:\\x", "absolute path"),
    ("-x", "starts with '-'"),
    ("video/-i", "starts with '-'"),
    ("", "empty"),
    ("   ", "empty"),
    ("a\nb", "control characters"),
    ("video/a:b", "contains ':'"),
    ("a:b", "contains ':'"),
    ("video/...", "only of dots"),
])
def test_prefixes_that_escape_or_confuse_are_refused(tmp_path, prefix, message):
    with pytest.raises(InputError, match=message):
        output_folder(str(tmp_path), prefix)
    assert listing(tmp_path) == set()


def test_subfolders_are_allowed(tmp_path):
    folder, stem, sub = output_folder(str(tmp_path), "video/2024/talk")
    assert folder == os.path.join(os.path.realpath(tmp_path), "video", "2024") and stem == "talk" and sub == "video/2024"
    assert os.path.isdir(folder)
    assert split_prefix("./a//b") == (["a"], "b")


def test_counter_counts_up_and_never_overwrites(tmp_path):
    folder, stem, _ = output_folder(str(tmp_path), "talk")
    first = reserve_path(folder, stem, "mp4")
    second = reserve_path(folder, stem, "mp4")
    assert os.path.basename(first) == "talk_00001.mp4" and os.path.basename(second) == "talk_00002.mp4"
    (tmp_path / "talk_00041.wav").write_bytes(b"x")  # a kept WAV counts too
    (tmp_path / "talker_00099.mp4").write_bytes(b"x")  # another prefix does not
    assert os.path.basename(reserve_path(folder, stem, "webm")) == "talk_00042.webm"


def test_symlink_out_of_the_output_folder_is_refused(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    base = tmp_path / "output"
    base.mkdir()
    (base / "link").symlink_to(outside)
    with pytest.raises(InputError, match="outside the output folder"):
        output_folder(str(base), "link/x")
