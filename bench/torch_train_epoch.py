#!/usr/bin/python3
"""PyTorch CPU reference for bench/train-epoch.ts: one epoch of the default recipe on the same cached images.

Reads one JSON request per line on stdin, answers one JSON line on stdout:
  {"cache": path, "size": 224, "slots": [...], "targets": [[...]], "posWeight": [...], "batch": 32, "lr": 3e-4,
   "layout": "nchw" | "channels_last"} -> {"seconds": s, "images": n, "loss": mean loss}
The work matches ours: uint8 model pixels from the cache file, a random affine (rotation, translation, scale,
bilinear) plus brightness/contrast per image, ImageNet normalisation to 3 channels, torchvision's mobilenet_v2 with
a 14-output head, BCEWithLogitsLoss(pos_weight), AdamW, all parameters trained, BatchNorm in training mode.
layout "channels_last": model and each batch in torch.channels_last memory format (PyTorch's channels-last
tutorial), which changes the convolution kernels PyTorch runs. OpenMP's wait policy (OMP_WAIT_POLICY) is read at
start-up, so the benchmark starts one process per policy.
"""
import json
import math
import random
import sys
import time

import numpy as np
import torch
import torchvision
import torchvision.transforms.functional as TF

torch.set_num_threads(2)
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def augment(image, rng):
    angle = rng.uniform(-7, 7)
    size = image.shape[-1]
    translate = [int(round(rng.uniform(-0.05, 0.05) * size)), int(round(rng.uniform(-0.05, 0.05) * size))]
    scale = rng.uniform(0.93, 1.07)
    out = TF.affine(image, angle=angle, translate=translate, scale=scale, shear=[0.0], interpolation=TF.InterpolationMode.BILINEAR)
    out = TF.adjust_brightness(out, rng.uniform(0.9, 1.1))
    return TF.adjust_contrast(out, rng.uniform(0.9, 1.1))


def epoch(request):
    size = request['size']
    pixels = np.memmap(request['cache'], dtype=np.uint8, mode='r')
    plane = size * size
    model = torchvision.models.mobilenet_v2(num_classes=len(request['posWeight']))
    layout = request.get('layout', 'nchw')
    if layout not in ('nchw', 'channels_last'):
        raise ValueError(f'unknown layout {layout!r}')
    memory_format = torch.channels_last if layout == 'channels_last' else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    model.train()
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(request['posWeight']))
    optimizer = torch.optim.AdamW(model.parameters(), lr=request['lr'], weight_decay=1e-4)
    slots = request['slots']
    targets = torch.tensor(request['targets'], dtype=torch.float32)
    rng = random.Random(0)
    losses = []
    start = time.perf_counter()
    for first in range(0, len(slots), request['batch']):
        chunk = slots[first:first + request['batch']]
        batch = torch.stack([augment(torch.from_numpy(np.array(pixels[s * plane:(s + 1) * plane])).view(1, size, size), rng) for s in chunk])
        x = ((batch.float().div(255).expand(-1, 3, -1, -1) - MEAN) / STD).contiguous(memory_format=memory_format)
        optimizer.zero_grad()
        loss = loss_fn(model(x), targets[first:first + len(chunk)])
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return {'seconds': time.perf_counter() - start, 'images': len(slots), 'loss': sum(losses) / len(losses)}


for line in sys.stdin:
    try:
        print(json.dumps(epoch(json.loads(line))), flush=True)
    except Exception as error:  # reported to the benchmark, which stops with it
        print(json.dumps({'error': repr(error)}), flush=True)
