"""A bare preloaded training loop: the floor optbench's runner is measured against.

The data is normalised once into tensors (as ``data_tf`` does per sample); each epoch
is index slices of a seeded permutation; the loop is forward, loss, zero_grad,
backward, step, and a loss sum kept on the device. No logging, no evaluation, no files.

``--optim``: ``torch`` = torch.optim.RMSprop as one writes it (on the CPU that is
torch's single-tensor loop), ``torch-foreach`` = the same with ``foreach=True``,
``scratch`` = optbench's scratch RMSprop (the update optbench runs by default).
``--ftz`` calls ``torch.set_flush_denormal(True)`` before the first torch op, as
optbench's CLI does.

Usage: python bench/bare_loop.py --root ~/.cache/optbench/data --optim torch
"""

from __future__ import annotations

import argparse
import json
import time

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--root", required=True)
parser.add_argument("--dataset", default="FashionMNIST", choices=["FashionMNIST", "MNIST"])
parser.add_argument("--optim", default="torch", choices=["torch", "torch-foreach", "scratch"])
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--seed", type=int, default=0)
parser.add_argument("--ftz", action="store_true", help="torch.set_flush_denormal(True) first")
args = parser.parse_args()

import torch  # noqa: E402

if args.ftz:
    torch.set_flush_denormal(True)
torch.set_num_threads(args.threads)

from torch import nn  # noqa: E402
from torchvision import datasets  # noqa: E402

train = getattr(datasets, args.dataset)(args.root, train=True, download=False)
inputs = train.data.reshape(train.data.shape[0], -1).float().div_(255).sub_(0.5).div_(0.5)
targets = train.targets.long()
n = inputs.shape[0]

torch.manual_seed(args.seed)
model = nn.Sequential(nn.Linear(784, 200), nn.ReLU(), nn.Linear(200, 10))
hyper = dict(lr=1e-3, alpha=0.9, eps=1e-10)
if args.optim == "scratch":
    from optbench.optim import RMSprop

    optimizer = RMSprop(model.parameters(), **hyper)
else:
    optimizer = torch.optim.RMSprop(model.parameters(), **hyper, foreach=args.optim == "torch-foreach" or None)
criterion = nn.CrossEntropyLoss()
generator = torch.Generator().manual_seed(args.seed)

epoch_losses = []
start = time.perf_counter()
for _epoch in range(args.epochs):
    total = torch.zeros((), dtype=torch.float64)
    order = torch.randperm(n, generator=generator)
    steps = 0
    for first in range(0, n, args.batch_size):
        idx = order[first : first + args.batch_size]
        loss = criterion(model(inputs.index_select(0, idx)), targets.index_select(0, idx))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total += loss.detach()
        steps += 1
    epoch_losses.append(float(total) / steps)
loop_s = time.perf_counter() - start
print(json.dumps({"loop_s": loop_s, "epoch_losses": epoch_losses}))
