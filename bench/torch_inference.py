#!/usr/bin/python3
"""PyTorch CPU reference for bench/inference.ts: torchvision models in eval mode, in one of the configurations
PyTorch documents for CPU inference, so that the benchmark can pick the fastest one per case.

Reads one JSON request per line on stdin, answers one JSON line on stdout:
  {"arch": "densenet121", "batch": 16, "size": 224, "runs": 5, "threads": 2,
   "layout": "nchw" | "channels_last", "mode": "eager" | "jit"} -> {"ms": [per-run milliseconds]}

layout "channels_last": model and input in torch.channels_last memory format (PyTorch's channels-last tutorial).
mode "eager": the module under torch.inference_mode(); "jit": torch.jit.trace, torch.jit.freeze and
torch.jit.optimize_for_inference (the documented inference path for TorchScript), run under torch.no_grad().
The first request for a configuration builds (and for "jit" traces and optimises) the model; the benchmark sends
it as a warm-up and does not count it. Each run is timed around the forward call alone, in this process, so pipes
and JSON are outside the timings. OpenMP's wait policy (OMP_WAIT_POLICY) is read at start-up, so the benchmark
starts one process per policy.
"""
import json
import sys
import time

import torch
import torchvision

models = {}


def model_for(arch, batch, size, layout, mode):
    key = (arch, batch, size, layout, mode)
    if key not in models:
        if any(k[0] != arch for k in models):
            models.clear()  # one architecture at a time keeps the process small
        model = getattr(torchvision.models, arch)(num_classes=14).eval()
        x = torch.randn(batch, 3, size, size)
        if layout == 'channels_last':
            model = model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        elif layout != 'nchw':
            raise ValueError(f'unknown layout {layout!r}')
        if mode == 'jit':
            with torch.no_grad():
                model = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, x)))
        elif mode != 'eager':
            raise ValueError(f'unknown mode {mode!r}')
        models[key] = (model, x)
    return models[key]


for line in sys.stdin:
    request = json.loads(line)
    try:
        torch.set_num_threads(request.get('threads', 2))
        layout = request.get('layout', 'nchw')
        mode = request.get('mode', 'eager')
        model, x = model_for(request['arch'], request['batch'], request['size'], layout, mode)
        times = []
        with torch.no_grad() if mode == 'jit' else torch.inference_mode():
            for _ in range(request['runs']):
                start = time.perf_counter()
                model(x)
                times.append((time.perf_counter() - start) * 1000)
        print(json.dumps({'ms': times}), flush=True)
    except Exception as error:  # reported to the benchmark, which stops with it
        print(json.dumps({'error': repr(error)}), flush=True)
