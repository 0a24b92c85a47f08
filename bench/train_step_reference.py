#!/usr/bin/python3
"""PyTorch side of bench/train-step.ts: one process per configuration, driven over stdin so that the TypeScript
benchmark can alternate our steps with PyTorch's. Commands (one per line): `step` runs one timed step and prints
its milliseconds; `rss` prints the peak resident set size in MiB; `quit` ends.

Modes: `train` (train mode, BCEWithLogitsLoss, AdamW, as our training-step graph) and `explain` (densenet121 only;
eval mode: logits, input gradient, last feature map and its gradient for one class).
Architectures: densenet121 (default) and swin_t; swin_t's stochastic depth is switched off (p = 0), as our graph
has none, so both sides do the same work.

nchw | channels_last: the model's and the input's memory format. OpenMP reads OMP_WAIT_POLICY at start-up, so the
benchmark starts one process per layout and wait policy.

Usage: /usr/bin/python3 bench/train_step_reference.py MODE SIZE BATCH nchw|channels_last [densenet121|swin_t]
"""
import resource
import sys
import time

import torch
import torchvision
from torchvision.ops import StochasticDepth


def main():
    mode, size, batch, layout = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    architecture = sys.argv[5] if len(sys.argv) > 5 else 'densenet121'
    torch.set_num_threads(2)
    torch.manual_seed(0)
    memory_format = torch.channels_last if layout == 'channels_last' else torch.contiguous_format
    model = getattr(torchvision.models, architecture)(num_classes=14).to(memory_format=memory_format)
    for module in model.modules():
        if isinstance(module, StochasticDepth):
            module.p = 0.0
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=memory_format)
    targets = (torch.rand(batch, 14) < 0.3).float()
    if mode == 'train':
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        loss_fn = torch.nn.BCEWithLogitsLoss()

        def step():
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), targets)
            loss.backward()
            optimizer.step()
            return float(loss)
    else:
        model.eval()

        def step():
            image = x.clone().requires_grad_(True)
            features = model.features(image)
            logits = model.classifier(torch.flatten(torch.nn.functional.adaptive_avg_pool2d(torch.relu(features), 1), 1))
            grads = torch.autograd.grad(logits[:, 3].sum(), [image, features])
            return float(logits.sum() + grads[0].sum() + grads[1].sum())

    print('ready', flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command == 'step':
            start = time.perf_counter()
            step()
            print(f'{(time.perf_counter() - start) * 1000:.3f}', flush=True)
        elif command == 'rss':
            print(f'{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f}', flush=True)
        elif command == 'quit':
            break


if __name__ == '__main__':
    main()
