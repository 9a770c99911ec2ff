"""scripts/comfyui/host_env.py without building anything: a clone with no host archives skips with a reason (exit 3),
and the overlay of an older host holds exactly the front-end pins that differ from the newest host's."""
import importlib.util

from testlib import REPO_ROOT

spec = importlib.util.spec_from_file_location("host_env", REPO_ROOT / "scripts" / "comfyui" / "host_env.py")
host_env = importlib.util.module_from_spec(spec)
spec.loader.exec_module(host_env)


def test_no_host_archives_exits_3_and_says_why(tmp_path, capsys):
    assert host_env.main(["--hosts-dir", str(tmp_path / "none"), "--cache", str(tmp_path / "cache")]) == 3
    assert "no ComfyUI host archives" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_archives_are_found_newest_first(tmp_path):
    for version in ("0.3.64", "0.33.0", "0.9.1"):
        (tmp_path / f"ComfyUI-{version}.tar.gz").write_bytes(b"")
    assert list(host_env.host_archives(tmp_path)) == ["0.33.0", "0.9.1", "0.3.64"]


def test_overlay_pins_only_what_differs(tmp_path, monkeypatch):
    root = tmp_path / "ComfyUI-0.3.64"
    root.mkdir()
    (root / "requirements.txt").write_text("comfyui-frontend-package==1.27.10\ncomfyui-embedded-docs==0.5.10\n"
                                           "torch\nnumpy>=1.25.0  # shared\n")
    installed = []
    monkeypatch.setattr(host_env, "pip", lambda python, *args: installed.append(args))
    shared = {"comfyui-frontend-package": "comfyui-frontend-package==1.49.6",
              "comfyui-embedded-docs": "comfyui-embedded-docs==0.5.10"}
    overlay = host_env.build_overlay(tmp_path, "python", root, "0.3.64", shared)
    assert overlay == tmp_path / "overlay-0.3.64"
    assert installed == [("--no-deps", "--target", str(overlay), "comfyui-frontend-package==1.27.10")]
    host_env.build_overlay(tmp_path, "python", root, "0.3.64", shared)  # done already: nothing installed again
    assert len(installed) == 1
    env = host_env.host_environment({"pythonpath": str(overlay)})
    assert env["PYTHONPATH"].split(":")[0] == str(overlay)
