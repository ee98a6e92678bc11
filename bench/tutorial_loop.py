"""Seed 000's training loop, copied faithfully: the baseline every benchmark ratio is against.

The code between the ``--- seed 000 ---`` markers is the tutorial's (RMSProp from
scratch on MNIST, MLP 784-200-10, batch 64, 5 epochs, lr 1e-3, alpha 0.9): torchvision
data with the per-sample ``data_tf`` transform, a shuffling ``DataLoader`` (no
workers), the per-parameter ``rmsprop`` function and its timing. What differs, and
why:

* the dataset class and folder come from the command line (Fashion-MNIST by default:
  MNIST's format and sizes), and ``download=False`` (the benchmark runs offline);
* ``torch.manual_seed`` and ``torch.set_num_threads`` first (reproducible, fixed threads);
* ``--epochs``, ``--batch-size`` and ``--max-steps`` (the batch-size-1 measurement
  runs a fraction of an epoch: the loop stops after ``max_steps`` updates);
* ``%matplotlib inline`` and the plot are dropped; the result is printed as one JSON line.

Usage: python bench/tutorial_loop.py --root ~/.cache/optbench/data [--dataset FashionMNIST]
"""

from __future__ import annotations

import argparse
import json

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--root", required=True, help="folder holding <dataset>/raw/ (torchvision layout)")
parser.add_argument("--dataset", default="FashionMNIST", choices=["FashionMNIST", "MNIST"])
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--batch-size", type=int, default=64)
parser.add_argument("--max-steps", type=int, default=0, help="stop after this many updates (0: no limit)")
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--seed", type=int, default=0)
args = parser.parse_args()

# --- seed 000 (imports) ---
import time

import numpy as np
import torch
from torch import nn
from torch.autograd import Variable
from torch.utils.data import DataLoader
from torchvision import datasets

# --- end ---

torch.manual_seed(args.seed)
torch.set_num_threads(args.threads)
DATASET = getattr(datasets, args.dataset)
max_steps = args.max_steps or float("inf")


# --- seed 000 ---
def data_tf(x):
    x = np.array(x, dtype='float32') / 255
    x = (x - 0.5) / 0.5 # 标准化，这个技巧之后会讲到
    x = x.reshape((-1,)) # 拉平
    x = torch.from_numpy(x)
    return x

train_set = DATASET(args.root, train=True, transform=data_tf, download=False) # 载入数据集，申明定义的数据变换
test_set = DATASET(args.root, train=False, transform=data_tf, download=False)

# 定义 loss 函数
criterion = nn.CrossEntropyLoss()


def rmsprop(parameters, sqrs, lr, alpha):
    eps = 1e-10
    for param, sqr in zip(parameters, sqrs):
        sqr[:] = alpha * sqr + (1 - alpha) * param.grad.data ** 2
        div = lr / torch.sqrt(sqr + eps) * param.grad.data
        param.data = param.data - div


train_data = DataLoader(train_set, batch_size=args.batch_size, shuffle=True)
# 使用 Sequential 定义 3 层神经网络
net = nn.Sequential(
    nn.Linear(784, 200),
    nn.ReLU(),
    nn.Linear(200, 10),
)

# 初始化梯度平方项
sqrs = []
for param in net.parameters():
    sqrs.append(torch.zeros_like(param.data))

# 开始训练
losses = []
idx = 0
epoch_losses = []  # (added: the printed epoch losses, for the JSON line)
start = time.time() # 记时开始
for e in range(args.epochs):
    train_loss = 0
    for im, label in train_data:
        im = Variable(im)
        label = Variable(label)
        # 前向传播
        out = net(im)
        loss = criterion(out, label)
        # 反向传播
        net.zero_grad()
        loss.backward()
        rmsprop(net.parameters(), sqrs, 1e-3, 0.9) # 学习率设为 0.001，alpha 设为 0.9
        # 记录误差
        train_loss += loss.data
        if idx % 30 == 0:
            losses.append(loss.data)
        idx += 1
        if idx >= max_steps:  # (added: --max-steps)
            break
    print('epoch: {}, Train Loss: {:.6f}'
          .format(e, train_loss / len(train_data)))
    epoch_losses.append(float(train_loss / len(train_data)))
    if idx >= max_steps:  # (added: --max-steps)
        break
end = time.time() # 计时结束
print('使用时间: {:.5f} s'.format(end - start))
# --- end seed 000 ---

print(json.dumps({"loop_s": end - start, "steps": idx, "epoch_losses": epoch_losses}))
