"""The host's progress bar on Cancel, with ComfyUI v0.3.64's interrupt semantics (its hook raises and clears)."""
import sys
import types

import pytest
from testlib import load_pack


def _comfy(monkeypatch):
    """comfy.model_management's interrupt flag and comfy.utils.ProgressBar whose hook checks it, as in v0.3.64."""
    mm = types.ModuleType("comfy.model_management")
    mm.flag = False

    class InterruptProcessingException(Exception):
        pass

    def throw_exception_if_processing_interrupted():
        if mm.flag:
            mm.flag = False  # ComfyUI clears the flag as it raises
            raise InterruptProcessingException()

    mm.InterruptProcessingException = InterruptProcessingException
    mm.interrupt_current_processing = lambda value=True: setattr(mm, "flag", value)
    mm.processing_interrupted = lambda: mm.flag
    mm.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted
    utils = types.ModuleType("comfy.utils")

    class ProgressBar:  # main.py's hook: throw_exception_if_processing_interrupted() on every update
        def __init__(self, total):
            self.total, self.current = total, 0

        def update_absolute(self, value, total=None, preview=None):
            throw_exception_if_processing_interrupted()
            self.current = value

        def update(self, value):
            self.update_absolute(self.current + value)

    utils.ProgressBar = ProgressBar
    comfy = types.ModuleType("comfy")
    comfy.model_management, comfy.utils = mm, utils
    for name, module in (("comfy", comfy), ("comfy.model_management", mm), ("comfy.utils", utils)):
        monkeypatch.setitem(sys.modules, name, module)
    return mm


def test_a_cancel_raised_by_the_progress_hook_stays_visible(monkeypatch):
    from importlib import import_module

    load_pack()
    host = import_module("wanvideo_infinitetalk_pack.nodes.host")
    mm = _comfy(monkeypatch)
    bar = host.progress_bar(10)
    bar.update_absolute(3, 10)
    bar.update(1)
    assert not host.interrupt_requested()
    mm.interrupt_current_processing(True)  # the user presses Cancel
    with pytest.raises(mm.InterruptProcessingException):
        bar.update_absolute(5, 10)
    # the window loop asks after the exception: it must see a Cancel (logged as a stop, not a failure)
    assert host.interrupt_requested()


def test_a_cancel_the_host_raised_elsewhere_is_a_stop_while_it_unwinds(monkeypatch):
    """ComfyUI's own code (its VAE's progress, model loading) raises its interrupt and clears the flag; the window
    loop asks while that exception is handled and must see a Cancel, not a failure."""
    from importlib import import_module

    load_pack()
    host = import_module("wanvideo_infinitetalk_pack.nodes.host")
    mm = _comfy(monkeypatch)
    mm.interrupt_current_processing(True)
    try:
        mm.throw_exception_if_processing_interrupted()
    except mm.InterruptProcessingException:
        assert not mm.flag and host.interrupt_requested()
    assert not host.interrupt_requested()  # once handled, no Cancel is pending


def test_the_progress_api_bar_stops_on_cancel_and_keeps_the_flag(monkeypatch):
    """Hosts with comfy_api.latest: set_progress gets value, max and the preview; a Cancel stops the node at its next
    update (a long Video Combine or model load too) and leaves the flag set for the code that unwinds."""
    from importlib import import_module

    load_pack()
    host = import_module("wanvideo_infinitetalk_pack.nodes.host")
    mm = _comfy(monkeypatch)
    calls = []

    class Execution:
        def set_progress(self, value, max_value, preview_image=None):
            calls.append((value, max_value, preview_image))

    api = types.ModuleType("comfy_api.latest")
    api.ComfyAPISync = lambda: types.SimpleNamespace(execution=Execution())
    monkeypatch.setitem(sys.modules, "comfy_api", types.ModuleType("comfy_api"))
    monkeypatch.setitem(sys.modules, "comfy_api.latest", api)
    bar = host.progress_bar(10)
    bar.update_absolute(3, 10, "frame")
    bar.update(1)
    assert calls == [(3.0, 10.0, "frame"), (4.0, 10.0, None)]
    mm.interrupt_current_processing(True)
    with pytest.raises(mm.InterruptProcessingException):
        bar.update(1)
    assert mm.flag and host.interrupt_requested() and len(calls) == 2
