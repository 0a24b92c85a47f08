#!/usr/bin/python3
"""PyTorch CPU reference for bench/inference.ts: torchvision models in eval mode under torch.inference_mode().

Reads one JSON request per line on stdin, answers one JSON line on stdout:
  {"arch": "densenet121", "batch": 16, "size": 224, "runs": 5} -> {"ms": [per-run milliseconds]}
"""
import json
import sys
import time

import torch
import torchvision

torch.set_num_threads(2)
models = {}


def model_for(arch):
    if arch not in models:
        models[arch] = getattr(torchvision.models, arch)(num_classes=14).eval()
    return models[arch]


for line in sys.stdin:
    request = json.loads(line)
    try:
        model = model_for(request['arch'])
        x = torch.randn(request['batch'], 3, request['size'], request['size'])
        times = []
        with torch.inference_mode():
            for _ in range(request['runs']):
                start = time.perf_counter()
                model(x)
                times.append((time.perf_counter() - start) * 1000)
        print(json.dumps({'ms': times}), flush=True)
    except Exception as error:  # reported to the benchmark, which stops with it
        print(json.dumps({'error': repr(error)}), flush=True)
