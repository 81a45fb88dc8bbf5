#!/usr/bin/env python3
"""PyTorch side of the model benchmark (bench/models.ts): the reference's architectures and conv
types, timed the same way as str-train's, so the suite can print str-train / PyTorch ratios.

Architectures (STR-SPEC section 3): ResNet v1.5 (stride on the 3x3, fc = 1x1 conv without bias),
ResNet18 BasicBlock, MobileNetV1 (depthwise + pointwise, fc = 1x1 conv). The average pool is
adaptive (= the reference's AvgPool2d(7) at 224 px, and works at 32 px). Conv types (section 5):
DenseConv = nn.Conv2d; STRConv: W_hat = sign(W) * relu(|W| - sigmoid(s)); DNWConv: ChooseEdges
(sort, zero the k smallest, straight-through gradient); GMPConv: the same zeroing with ordinary
ops (masked gradient). Step = zero_grad, forward, label-smoothed cross-entropy, top-1/top-5
correct counts, backward, SGD (momentum 0.9, coupled weight decay), loss read back.

Protocol: one JSON object per line on stdin, one JSON result per line on stdout after '@@bench ':
  {"cmd": "info"}
  {"cmd": "run", "arch": "ResNet18", "conv": "STRConv", "size": 32, "batch": 32, "mode": "train",
   "steps": 10, "warmup": 2, "classes": 1000, "sInit": -3200, "pruneRate": 0.9,
   "device": "cpu" | "cuda", "precision": "fp32" | "default"}
On CUDA, "precision" chooses strict float32 (TF32 off for cuBLAS matmuls and cuDNN convolutions)
or PyTorch's own defaults (cuDNN convolutions may use TF32); the reply says which flags were in
force. Timing needs no extra synchronisation: every timed window ends with loss.item(), which
waits for the GPU. Runs until stdin closes. Usage: python3 bench/torch_models.py [--threads 2]
"""
import argparse
import json
import math
import resource
import sys
import time
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- conv types (STR-SPEC section 5)

class STRConv(nn.Conv2d):
    def __init__(self, *a, s_init=-3200.0, **k):
        super().__init__(*a, **k)
        self.sparseThreshold = nn.Parameter(torch.full((1, 1), float(s_init)))

    def forward(self, x):
        w = torch.sign(self.weight) * torch.relu(torch.abs(self.weight) - torch.sigmoid(self.sparseThreshold))
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


class ChooseEdges(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, prune_rate):
        output = weight.clone()
        _, idx = weight.flatten().abs().sort()
        p = int(prune_rate * weight.numel())
        flat = output.flatten()
        flat[idx[:p]] = 0
        return output

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None


class DNWConv(nn.Conv2d):
    def __init__(self, *a, prune_rate=0.9, **k):
        super().__init__(*a, **k)
        self.prune_rate = prune_rate

    def forward(self, x):
        w = ChooseEdges.apply(self.weight, self.prune_rate)
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


class GMPConv(nn.Conv2d):
    def __init__(self, *a, prune_rate=0.9, **k):
        super().__init__(*a, **k)
        self.curr_prune_rate = prune_rate

    def forward(self, x):
        _, idx = self.weight.flatten().abs().sort()
        p = int(self.curr_prune_rate * self.weight.numel())
        w = self.weight.clone()
        flat = w.view(-1)
        flat[idx[:p]] = 0
        return F.conv2d(x, w, self.bias, self.stride, self.padding, self.dilation, self.groups)


def conv_factory(kind, s_init, prune_rate):
    def make(cin, cout, k, stride=1, padding=None, groups=1):
        pad = (k - 1) // 2 if padding is None else padding
        args = (cin, cout, k)
        kw = dict(stride=stride, padding=pad, groups=groups, bias=False)
        if kind == 'DenseConv':
            return nn.Conv2d(*args, **kw)
        if kind == 'STRConv':
            return STRConv(*args, s_init=s_init, **kw)
        if kind == 'DNWConv':
            return DNWConv(*args, prune_rate=prune_rate, **kw)
        if kind == 'GMPConv':
            return GMPConv(*args, prune_rate=prune_rate, **kw)
        raise ValueError(f'unknown conv type {kind}')
    return make


# ---------------------------------------------------------------- models (STR-SPEC section 3)

class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, conv, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = conv(inplanes, planes, 3, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv(planes, planes, 3)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(conv(inplanes, planes, 1, stride), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(out + res)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, conv, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = conv(inplanes, planes, 1)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv(planes, planes, 3, stride)  # v1.5: the stride is on the 3x3
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv(planes, planes * 4, 1)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(conv(inplanes, planes * 4, 1, stride), nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        res = x if self.downsample is None else self.downsample(x)
        return self.relu(out + res)


class ResNet(nn.Module):
    def __init__(self, conv, block, layers, num_classes):
        super().__init__()
        self.inplanes = 64
        self.conv1 = conv(3, 64, 7, 2)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages = []
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers)):
            blocks = []
            for j in range(n):
                blocks.append(block(conv, self.inplanes, planes, 2 if (i > 0 and j == 0) else 1))
                self.inplanes = planes * block.expansion
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = conv(512 * block.expansion, num_classes, 1)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.fc(self.avgpool(x))
        return x.view(x.size(0), -1)


DW_BLOCKS = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2),
             (512, 512, 1), (512, 512, 1), (512, 512, 1), (512, 512, 1), (512, 512, 1), (512, 1024, 2),
             (1024, 1024, 1)]


class MobileNetV1(nn.Module):
    def __init__(self, conv, num_classes):
        super().__init__()
        parts = [nn.Sequential(conv(3, 32, 3, 2), nn.BatchNorm2d(32), nn.ReLU(inplace=True))]
        for inp, oup, stride in DW_BLOCKS:
            parts.append(nn.Sequential(
                conv(inp, inp, 3, stride, groups=inp), nn.BatchNorm2d(inp), nn.ReLU(inplace=True),
                conv(inp, oup, 1), nn.BatchNorm2d(oup), nn.ReLU(inplace=True)))
        parts.append(nn.AdaptiveAvgPool2d(1))
        self.model = nn.Sequential(*parts)
        self.fc = conv(1024, num_classes, 1)

    def forward(self, x):
        x = self.fc(self.model(x))
        return x.view(x.size(0), -1)


def create(arch, conv_type, classes, s_init, prune_rate):
    conv = conv_factory(conv_type, s_init, prune_rate)
    if arch == 'ResNet18':
        return ResNet(conv, BasicBlock, [2, 2, 2, 2], classes)
    if arch == 'ResNet50':
        return ResNet(conv, Bottleneck, [3, 4, 6, 3], classes)
    if arch == 'MobileNetV1':
        return MobileNetV1(conv, classes)
    raise ValueError(f'unknown arch {arch}')


# ---------------------------------------------------------------- float32 precision (CUDA)

# PyTorch >= 2.9 has per-backend fp32_precision settings and refuses a mix of them with the older
# allow_tf32 flags, so exactly one of the two APIs is used: the new one where it exists.
def _has_new_tf32_api():
    try:  # torch.backends.cuda.matmul raises AssertionError, not AttributeError, for unknown names
        torch.backends.cuda.matmul.fp32_precision
        return hasattr(torch.backends.cudnn, 'conv')
    except (AttributeError, AssertionError):
        return False


_NEW_TF32_API = _has_new_tf32_api()


def _tf32_state():
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        if _NEW_TF32_API:
            return {'api': 'fp32_precision', 'matmul': torch.backends.cuda.matmul.fp32_precision,
                    'cudnnConv': torch.backends.cudnn.conv.fp32_precision}
        return {'api': 'allow_tf32', 'matmul': torch.backends.cuda.matmul.allow_tf32,
                'cudnnConv': torch.backends.cudnn.allow_tf32}


DEFAULT_TF32 = _tf32_state()  # PyTorch's defaults, read before anything changes them


def set_precision(precision):
    """'fp32': TF32 off for matmuls and convolutions; 'default': PyTorch's defaults. Returns the flags."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        if precision == 'fp32':
            if _NEW_TF32_API:
                torch.backends.cuda.matmul.fp32_precision = 'ieee'
                torch.backends.cudnn.conv.fp32_precision = 'ieee'
            else:
                torch.backends.cuda.matmul.allow_tf32 = False
                torch.backends.cudnn.allow_tf32 = False
        elif precision == 'default':
            if _NEW_TF32_API:
                torch.backends.cuda.matmul.fp32_precision = DEFAULT_TF32['matmul']
                torch.backends.cudnn.conv.fp32_precision = DEFAULT_TF32['cudnnConv']
            else:
                torch.backends.cuda.matmul.allow_tf32 = DEFAULT_TF32['matmul']
                torch.backends.cudnn.allow_tf32 = DEFAULT_TF32['cudnnConv']
        else:
            raise ValueError(f"precision must be 'fp32' or 'default', got {precision!r}")
    return _tf32_state()


# ---------------------------------------------------------------- timing

def peak_rss_bytes():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def rss_bytes():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def topk_correct(logits, labels):
    top5 = logits.topk(5, 1).indices
    hit = top5.eq(labels.view(-1, 1))
    return hit[:, :1].sum(), hit.sum()


def run(req):
    torch.manual_seed(0)
    classes = req.get('classes', 1000)
    batch, size = req['batch'], req['size']
    device = torch.device(req.get('device', 'cpu'))
    cuda = device.type == 'cuda'
    precision = set_precision(req.get('precision', 'fp32')) if cuda else None
    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    model = create(req['arch'], req['conv'], classes, req.get('sInit', -3200.0), req.get('pruneRate', 0.9)).to(device)
    criterion = nn.CrossEntropyLoss(label_smoothing=req.get('labelSmoothing', 0.1))
    x = torch.randn(batch, 3, size, size, device=device)
    y = (torch.arange(batch) % classes).to(device)
    train = req['mode'] == 'train'
    if train:
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=req.get('lr', 1e-3), momentum=0.9,
                              weight_decay=req.get('weightDecay', 5e-5))

        def step():
            opt.zero_grad()
            logits = model(x)
            loss = criterion(logits, y)
            topk_correct(logits.detach(), y)
            loss.backward()
            opt.step()
            return loss.detach()
    else:
        model.eval()

        def step():
            # like the reference's validate(): loss and accuracy read back every batch
            with torch.no_grad():
                logits = model(x)
                loss = criterion(logits, y)
                c1, c5 = topk_correct(logits, y)
                c1.item(), c5.item()
                return loss

    def steps(n):
        # n steps, the last loss read back (the host sync; every step when window = 1)
        for _ in range(n):
            loss = step()
        return loss.item()

    warm = req.get('warmup', 1)
    for _ in range(warm):
        steps(1)
    rss_after_warmup = rss_bytes()
    window = max(1, req.get('window', 1))
    times = []
    loss = float('nan')
    t_end = time.perf_counter() + req.get('maxSeconds', 1e9)
    done = 0
    while done < req['steps']:
        t0 = time.perf_counter()
        loss = steps(window)
        times.append((time.perf_counter() - t0) * 1000 / window)
        done += window
        if time.perf_counter() > t_end and len(times) >= req.get('minSteps', 1):
            break
    out = {'stepMs': times, 'warmup': warm, 'loss': loss, 'finite': math.isfinite(loss),
           'rssAfterWarmupBytes': rss_after_warmup, 'rssBytes': rss_bytes(), 'peakRssBytes': peak_rss_bytes(),
           'params': sum(p.numel() for p in model.parameters())}
    if cuda:
        out['precision'] = precision
        out['gpuPeakBytes'] = torch.cuda.max_memory_allocated()
        out['gpuBytes'] = torch.cuda.memory_allocated()
    del model
    if train:
        del opt
    if cuda:
        torch.cuda.empty_cache()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--threads', type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        try:
            if req['cmd'] == 'info':
                res = {'torch': torch.__version__, 'threads': torch.get_num_threads(),
                       'python': sys.version.split()[0], 'mkldnn': torch.backends.mkldnn.is_available(),
                       'cuda': torch.cuda.is_available()}
                if res['cuda']:
                    p = torch.cuda.get_device_properties(0)
                    res.update({'device': torch.cuda.get_device_name(0), 'cudaVersion': torch.version.cuda,
                                'cudnn': torch.backends.cudnn.version(), 'multiprocessors': p.multi_processor_count,
                                'gpuMemoryBytes': p.total_memory, 'defaultTf32': DEFAULT_TF32,
                                'cudnnBenchmark': torch.backends.cudnn.benchmark})
            elif req['cmd'] == 'run':
                res = run(req)
            else:
                raise ValueError(f"unknown cmd {req['cmd']}")
            res['ok'] = True
        except Exception as e:  # reported to the orchestrator, which records it and goes on
            res = {'ok': False, 'error': f'{type(e).__name__}: {e}'}
        sys.stdout.write('@@bench ' + json.dumps(res) + '\n')
        sys.stdout.flush()


if __name__ == '__main__':
    main()
