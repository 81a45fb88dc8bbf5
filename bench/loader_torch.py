#!/usr/bin/env python3
"""torchvision ImageFolder + PIL DataLoader throughput, the baseline for bench/loader.ts.

Same transforms as the reference (STR-SPEC section 10): train = RandomResizedCrop + flip +
ToTensor + Normalize, val = Resize + CenterCrop + ToTensor + Normalize. Prints one JSON object.

usage: loader_torch.py ROOT [--workers 1 2] [--transforms train val] [--batch-size 32] [--epochs 2]
                        [--image-size 224 --val-resize 256]
ROOT holds train/ and val/ class folders. Each config runs `epochs` epochs; the first is warm-up
(page cache, worker start) and the rest are timed. Workers persist across epochs (like the
str-train decode threads; the reference restarts them each epoch, a cost that vanishes on ImageNet
but would dominate here). CPU time counts this process and its workers (read from /proc).
Debian: apt-get install python3-torchvision.
"""
import argparse
import json
import resource
import sys
import threading
import time

import torch
import torchvision
from torchvision import datasets, transforms


def rss_bytes():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def children_cpu_seconds():
    import os
    me = os.getpid()
    total = 0.0
    try:
        with open(f'/proc/{me}/task/{me}/children') as f:
            kids = [int(p) for p in f.read().split()]
    except OSError:
        return 0.0
    tick = os.sysconf('SC_CLK_TCK')
    for pid in kids:
        try:
            with open(f'/proc/{pid}/stat') as f:
                fields = f.read().rsplit(')', 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        except OSError:
            pass
    return total


def children_rss_bytes(pids):
    total = 0
    for pid in pids:
        try:
            with open(f'/proc/{pid}/statm') as f:
                total += int(f.read().split()[1]) * resource.getpagesize()
        except OSError:
            pass
    return total


def run(root, split, workers, batch_size, epochs, image_size, val_resize):
    normalize = transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
    if split == 'train':
        tf = transforms.Compose([transforms.RandomResizedCrop(image_size), transforms.RandomHorizontalFlip(),
                                 transforms.ToTensor(), normalize])
    else:
        tf = transforms.Compose([transforms.Resize(val_resize), transforms.CenterCrop(image_size),
                                 transforms.ToTensor(), normalize])
    ds = datasets.ImageFolder(f'{root}/{split}', tf)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=(split == 'train'),
                                         num_workers=workers, pin_memory=False,
                                         persistent_workers=workers > 0)
    peak = [0]
    stop = threading.Event()

    def sample():
        # The process tree's resident memory: this process plus its worker processes.
        import os
        me = os.getpid()
        while not stop.is_set():
            kids = []
            try:
                with open(f'/proc/{me}/task/{me}/children') as f:
                    kids = [int(p) for p in f.read().split()]
            except OSError:
                pass
            peak[0] = max(peak[0], rss_bytes() + children_rss_bytes(kids))
            time.sleep(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    rates = []
    cpu = 0.0
    timed = 0
    for e in range(epochs):
        n = 0
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        k0 = children_cpu_seconds()  # persistent workers exist from the warm-up epoch on
        t = time.perf_counter()
        for images, labels in loader:
            n += images.shape[0]
        dt = time.perf_counter() - t
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        k1 = children_cpu_seconds()
        if e > 0 or epochs == 1:
            rates.append(n / dt)
            cpu += (r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime) + (k1 - k0)
            timed += n
    stop.set()
    th.join()
    rates.sort()
    return {'imagesPerSec': rates[len(rates) // 2], 'epochs': rates, 'cpuMsPerImage': 1000 * cpu / timed,
            'peakRssBytes': peak[0], 'images': len(ds)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('root')
    ap.add_argument('--workers', type=int, nargs='+', default=[1, 2])
    ap.add_argument('--transforms', nargs='+', default=['train', 'val'], choices=['train', 'val'])
    ap.add_argument('--batch-size', type=int, default=32)
    ap.add_argument('--epochs', type=int, default=2)
    ap.add_argument('--image-size', type=int, default=224)
    ap.add_argument('--val-resize', type=int, default=256)
    a = ap.parse_args()
    out = {'torch': torch.__version__, 'torchvision': torchvision.__version__, 'results': []}
    try:
        import PIL
        out['pillow'] = PIL.__version__
    except ImportError:
        pass
    for w in a.workers:
        for split in a.transforms:
            r = run(a.root, split, w, a.batch_size, a.epochs, a.image_size, a.val_resize)
            r.update({'workers': w, 'transform': split})
            out['results'].append(r)
            print(f"torch {split} workers={w}: {r['imagesPerSec']:.0f} img/s", file=sys.stderr)
    print(json.dumps(out))


if __name__ == '__main__':
    main()
