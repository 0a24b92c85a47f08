#!/usr/bin/python3
"""PyTorch reference for bench/explain.ts: prediction and a hook-based Grad-CAM of all 14 findings on one image,
end to end (decode -> preprocess -> model -> maps -> overlays resized to the image -> PNGs), timed inside Python.

Grad-CAM as pytorch-grad-cam computes it (activations and gradients captured by hooks on the target layer, the
class logit as the score, w_c = mean(G_c), ReLU(sum_c w_c A_c), min-max scaling, resize to the image,
show_cam_on_image's 50/50 blend with a jet colour map), made as fast as plain PyTorch allows: one forward pass,
parameters frozen and the hooked activation made a leaf, so each of the 14 backward passes covers only the head.
pytorch-grad-cam itself runs a forward and a full backward (parameters included) per call; `gradcam_literal`
measures that for comparison. Resizing uses torch's bilinear interpolation (OpenCV is not installed), PNGs are
written by PIL at zlib level 1 (OpenCV's imwrite default, and what our side uses).

The methods beyond the CAMs, one finding's map each (decode and preprocess included, no rendering), follow the
definitions of scripts/fixtures/make_attribution_parity.py, vectorised in torch, parameters frozen:
- fullgrad: one forward and backward with hooks on every Conv2d/BatchNorm2d with a bias; per layer |bias x
  gradient| scaled per channel, summed over channels, resized to the input (resizing is linear, so after the sum),
  plus |input gradient x input| per channel, scaled;
- guided-backprop: every ReLU/ReLU6 replaced by a guided function; one forward and backward;
- guided-gradcam: the Grad-CAM above (forward and head backward) scaled and resized, times guided-backprop;
- gradcam-ig: the Grad-CAM times the positive part of Integrated Gradients (32 path points in batches of 8,
  black baseline).

Protocol: one JSON request per line on stdin, one JSON reply per line on stdout (bench/lib.ts's PythonWorker).
  {"op": "setup", "arch": "densenet121", "size": 224, "image": "path.png"} -> {"ok": true}
  {"op": "predict"} | {"op": "gradcam", "pngs": true|false} | {"op": "gradcam_literal"} -> {"ms": ..., "bytes": ...}
  {"op": "method", "name": "fullgrad" | "guided-backprop" | "guided-gradcam" | "gradcam-ig", "finding": 0} -> {"ms": ...}
"""
import io
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from matplotlib import colormaps
from PIL import Image

torch.set_num_threads(2)
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
JET = (colormaps['jet'](np.arange(256) / 255.0)[:, :3] * 255).astype(np.float32)


class DenseNetWithReluModule(torch.nn.Module):
    """torchvision's DenseNet.forward with its functional ReLU as a module, the layer Grad-CAM reads."""

    def __init__(self, densenet):
        super().__init__()
        self.features = densenet.features
        self.relu = torch.nn.ReLU(inplace=False)
        self.classifier = densenet.classifier

    def forward(self, x):
        return self.classifier(torch.flatten(F.adaptive_avg_pool2d(self.relu(self.features(x)), (1, 1)), 1))


class Hooks:
    """The target layer's output (made a leaf that requires grad) and the gradient reaching it."""

    def __init__(self, module, leaf):
        self.activation = None
        self.gradient = None
        self.leaf = leaf
        module.register_forward_hook(self.forward_hook)

    def forward_hook(self, module, inputs, output):
        if self.leaf:
            output = output.detach().requires_grad_(True)
        self.activation = output
        output.register_hook(self.save_gradient)
        return output

    def save_gradient(self, grad):
        self.gradient = grad


class GuidedRectifier(torch.autograd.Function):
    """ReLU (upper = inf) or ReLU6 forward; backward passes positive gradients where the input was inside."""

    @staticmethod
    def forward(ctx, x, upper):
        ctx.save_for_backward(x)
        ctx.upper = upper
        return x.clamp(0, upper)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * ((x > 0) & (x < ctx.upper)).to(grad.dtype) * (grad > 0).to(grad.dtype), None


class GuidedModule(torch.nn.Module):
    def __init__(self, upper):
        super().__init__()
        self.upper = upper

    def forward(self, x):
        return GuidedRectifier.apply(x, self.upper)


def guided(module):
    for name, child in module.named_children():
        if isinstance(child, (torch.nn.ReLU, torch.nn.ReLU6)):
            setattr(module, name, GuidedModule(6.0 if isinstance(child, torch.nn.ReLU6) else float('inf')))
        else:
            guided(child)
    return module


state = {}


def fresh(arch, weights):
    """A copy of the model with frozen parameters and rectifiers not in place (hooks see their inputs)."""
    base = getattr(torchvision.models, arch)(num_classes=14)
    model = DenseNetWithReluModule(base) if arch == 'densenet121' else base
    model.load_state_dict(weights)
    for p in model.parameters():
        p.requires_grad_(False)
    for m in model.modules():
        if isinstance(m, (torch.nn.ReLU, torch.nn.ReLU6)):
            m.inplace = False
    return model.eval()


class BiasHooks:
    """FullGrad's layers: every Conv2d/BatchNorm2d with a bias, its bias and the gradient at its output."""

    def __init__(self, model):
        self.layers = [m for m in model.modules() if type(m) in (torch.nn.Conv2d, torch.nn.BatchNorm2d) and m.bias is not None]
        self.biases = [(m.bias - m.running_mean * m.weight / torch.sqrt(m.running_var + m.eps)) if isinstance(m, torch.nn.BatchNorm2d) else m.bias for m in self.layers]
        self.gradients = [None] * len(self.layers)
        for k, m in enumerate(self.layers):
            m.register_forward_hook(self.hook_of(k))

    def hook_of(self, k):
        def hook(module, inputs, output):
            output.register_hook(lambda g: self.gradients.__setitem__(k, g))
        return hook


def setup(arch, size, image):
    torch.manual_seed(0)
    base = getattr(torchvision.models, arch)(num_classes=14).eval()
    model = DenseNetWithReluModule(base).eval() if arch == 'densenet121' else base
    layer = model.relu if arch == 'densenet121' else model.features
    literal = DenseNetWithReluModule(getattr(torchvision.models, arch)(num_classes=14)).eval() if arch == 'densenet121' else getattr(torchvision.models, arch)(num_classes=14).eval()
    literal.load_state_dict(model.state_dict())
    for p in model.parameters():
        p.requires_grad_(False)
    weights = model.state_dict()
    full = fresh(arch, weights)
    state.update(model=model, hooks=Hooks(layer, leaf=True), literal=literal,
                 literal_hooks=Hooks(literal.relu if arch == 'densenet121' else literal.features, leaf=False), size=size, image=image,
                 plain=fresh(arch, weights), guided=guided(fresh(arch, weights)), fullgrad=full, bias_hooks=BiasHooks(full))


def decode():
    """The gray image as uint8 [H, W] and the model input [1, 3, size, size]."""
    gray = Image.open(state['image']).convert('L')
    size = state['size']
    resized = np.asarray(gray.resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0
    x = ((torch.from_numpy(resized).expand(1, 3, size, size) - MEAN) / STD).contiguous()
    return np.asarray(gray), x


def predict():
    _, x = decode()
    with torch.inference_mode():
        return torch.sigmoid(state['model'](x))


def overlay_png(gray, cam):
    """show_cam_on_image: heatmap (jet) and image blended 50/50, written as PNG."""
    h, w = gray.shape
    big = F.interpolate(cam[None, None], size=(h, w), mode='bilinear', align_corners=False)[0, 0].numpy()
    heat = JET[np.clip(big * 255, 0, 255).astype(np.uint8)]
    blended = 0.5 * heat + 0.5 * gray[:, :, None].astype(np.float32)
    out = io.BytesIO()
    Image.fromarray(blended.astype(np.uint8)).save(out, 'PNG', compress_level=1)
    return len(out.getvalue())


def scaled_cam(activation, gradient):
    weights = gradient.mean(dim=(1, 2))
    cam = torch.relu((weights[:, None, None] * activation).sum(dim=0))
    cam = cam - cam.min()
    return cam / (cam.max() + 1e-7)


def gradcam(pngs):
    gray, x = decode()
    model, hooks = state['model'], state['hooks']
    logits = model(x)
    probabilities = torch.sigmoid(logits.detach())
    written = 0
    for c in range(14):
        logits[0, c].backward(retain_graph=c < 13)
        cam = scaled_cam(hooks.activation[0].detach(), hooks.gradient[0])
        if pngs:
            written += overlay_png(gray, cam)
    return written, probabilities


def gradcam_literal():
    """What pytorch-grad-cam does per finding: a forward and a full backward (parameters included) each."""
    gray, x = decode()
    model, hooks = state['literal'], state['literal_hooks']
    written = 0
    for c in range(14):
        model.zero_grad()
        logits = model(x)
        logits[0, c].backward()
        written += overlay_png(gray, scaled_cam(hooks.activation[0].detach(), hooks.gradient[0]))
    return written


def unit(maps):
    """pytorch-grad-cam's scale_cam_image per map of [n, h, w]."""
    maps = maps - maps.amin(dim=(1, 2), keepdim=True)
    return maps / (1e-7 + maps.amax(dim=(1, 2), keepdim=True))


def resized(maps, size):
    return F.interpolate(maps[:, None], size=size, mode='bilinear', align_corners=False)[:, 0]


def input_gradient(model, x, c):
    x = x.clone().requires_grad_(True)
    model(x)[:, c].sum().backward()
    return x.grad


def cam_on_input(x, c):
    model, hooks = state['model'], state['hooks']
    model(x)[0, c].backward()
    cam = torch.relu((hooks.gradient[0].mean(dim=(1, 2))[:, None, None] * hooks.activation[0].detach()).sum(dim=0))
    return unit(resized(unit(cam[None]), x.shape[-2:]))[0]


def fullgrad(x, c):
    hooks = state['bias_hooks']
    g = input_gradient(state['fullgrad'], x, c)[0]
    total = unit((g * x[0]).abs()).sum(dim=0)
    for bias, gradient in zip(hooks.biases, hooks.gradients):
        total += resized(unit((bias[:, None, None] * gradient[0]).abs()).sum(dim=0)[None], x.shape[-2:])[0]
    return total


def integrated_gradients(x, c, steps=32, batch=8):
    baseline = ((0 - MEAN) / STD).expand_as(x)
    total = torch.zeros_like(x[0])
    alphas = (torch.arange(steps, dtype=x.dtype) + 0.5) / steps
    for first in range(0, steps, batch):
        a = alphas[first:first + batch].view(-1, 1, 1, 1)
        total += input_gradient(state['plain'], baseline + a * (x - baseline), c).sum(dim=0)
    return ((x - baseline)[0] * total / steps).sum(dim=0)


def method(name, c):
    _, x = decode()
    if name == 'fullgrad':
        return fullgrad(x, c)
    if name == 'guided-backprop':
        return input_gradient(state['guided'], x, c)[0].abs().amax(dim=0)
    if name == 'guided-gradcam':
        return input_gradient(state['guided'], x, c)[0].abs().amax(dim=0) * cam_on_input(x, c)
    if name == 'gradcam-ig':
        return cam_on_input(x, c) * integrated_gradients(x, c).clamp(min=0)
    raise ValueError(f'unknown method {name}')


for line in sys.stdin:
    request = json.loads(line)
    try:
        op = request['op']
        if op == 'setup':
            setup(request['arch'], request['size'], request['image'])
            print(json.dumps({'ok': True}), flush=True)
            continue
        start = time.perf_counter()
        written = 0
        if op == 'predict':
            predict()
        elif op == 'gradcam':
            written, _ = gradcam(request['pngs'])
        elif op == 'gradcam_literal':
            written = gradcam_literal()
        elif op == 'method':
            method(request['name'], request['finding'])
        else:
            raise ValueError(f'unknown op {op}')
        print(json.dumps({'ms': (time.perf_counter() - start) * 1000, 'bytes': written}), flush=True)
    except Exception as error:  # reported to the benchmark, which stops with it
        print(json.dumps({'error': repr(error)}), flush=True)
