"""Guidance split: the guidance passes of each step run at the same time, each device running its share of them
on its own copy of the model, from one persistent thread per device (as ComfyUI core's "MultiGPU CFG Split").

With cfg and audio_cfg InfiniteTalk runs three passes per step (conditional, no text, no audio): on two devices
one runs two of them as a batch, the other the third; on three devices, one each. The predictions are the ones
batched guidance makes on one device. No process group: everything stays in the calling process.
"""
from __future__ import annotations

import copy
import logging
import weakref
from concurrent.futures import ThreadPoolExecutor

import torch

from ...errors import InputError
from .devices import parse_devices

log = logging.getLogger(__name__)


def split_passes(names: list[str], devices: int) -> list[list[str]]:
    """Pass names per device, in order: pass i on device i mod n (devices without a pass get none)."""
    return [names[i::devices] for i in range(devices)]


class SplitPassRunner:
    """A step's guidance passes, each device running its share in its own thread; the PassRunner contract."""

    def __init__(self, runners: list, threads: list[ThreadPoolExecutor], home: torch.device):
        self.runners = runners  # (device, PassRunner) per device that has passes
        self.threads = threads
        self.home = home
        self.cache = None  # each device's PassRunner keeps its own step cache (see `summary`)
        self.model_calls = 0

    def __call__(self, x: torch.Tensor, t: torch.Tensor, step: int) -> dict:
        futures = [thread.submit(runner, x.to(device), t.to(device), step)
                   for thread, (device, runner) in zip(self.threads, self.runners, strict=False)]
        preds = {}
        for future in futures:
            preds.update({name: p.to(self.home) for name, p in future.result().items()})
        self.model_calls += sum(runner.model_calls for _, runner in self.runners)
        return preds


class GuidanceSplit:
    """The `guidance_split` executor: `denoise(model, job, ...)` with the passes spread over `devices`."""

    name = "guidance_split"

    def __init__(self, devices):
        self.devices = parse_devices(devices)
        if len(self.devices) < 2:
            raise InputError("guidance split needs at least two devices, e.g. cuda:0,cuda:1")
        self.threads = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"wanvideo-{d}") for d in self.devices]
        self._replicas: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> (fingerprint, copies)

    def replicas(self, model) -> list:
        """The model on each device: the model itself on the first, a copy (kept between windows and runs while
        the model's weights are unchanged) on each of the others."""
        from ...sampling.fingerprint import module_fingerprint

        if getattr(model, "block_swap", None) is not None:
            raise InputError("guidance split keeps a whole copy of the model on each device: turn block swap off, "
                             "or use layer_split to spread the blocks over the devices")
        if getattr(model, "sequence_parallel", None) is not None:
            raise InputError("guidance split and sequence parallel cannot be combined: choose one mode")
        if torch.device(model.main_device) != self.devices[0]:
            raise InputError(f"guidance split: the model is on {model.main_device} but the first device listed is "
                             f"{self.devices[0]}; list the model's device first")
        key = module_fingerprint(model)
        held = self._replicas.get(model)
        if held is None or held[0] != key:
            copies = []
            for device in self.devices[1:]:
                replica = copy.deepcopy(model).to(device)
                replica.main_device = device
                copies.append(replica)
                log.info("guidance split: a copy of the model on %s", device)
            held = (key, copies)
            self._replicas[model] = held
        return [model, *held[1]]

    def pass_runner(self, model, job, should_stop=None) -> SplitPassRunner:
        from ...sampling.passes import window_pass_runner

        replicas = self.replicas(model)
        shares = split_passes(list(job.passes), len(self.devices))
        runners = []
        for device, replica, names in zip(self.devices, replicas, shares, strict=True):
            if not names:
                continue
            passes = {n: {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in job.passes[n].items()}
                      for n in names}
            runners.append((device, window_pass_runner(replica, passes, job.shape, job.settings, job.size)))
        return SplitPassRunner(runners, self.threads, torch.device(model.main_device))

    def denoise(self, model, job, on_step=None, should_stop=None):
        from ...sampling.window_job import run_window_job

        runner = self.pass_runner(model, job, should_stop)
        latent, _ = run_window_job(model, job, on_step, should_stop, predict=runner)
        notes = [r.cache.summary() for _, r in runner.runners if r.cache is not None]
        return latent, "; ".join(notes)

    def close(self) -> None:
        for thread in self.threads:
            thread.shutdown(wait=False)
        self._replicas = weakref.WeakKeyDictionary()
