#!/usr/bin/python3
"""PyTorch side of tools/trace_train.c: the same CNN (bench/torch_model.py)
from the same initial weights (a deeppacket model file), the same
deterministic batches (batch s = rows (16*s + b) * 7919 mod n), dropout off,
Adam (1e-3, 0.9, 0.999, 1e-8); prints "step loss" per line.

  /usr/bin/python3 tools/trace_train.py SPLIT_DIR INIT.dpm STEPS [--threads N] [--dtype float32|float64]
      [--dump-step K --dump-prefix P]   (writes P.params0/.grads/.params1 like the C tool, as float32)
      [-p PERTURB | -q SPREAD]  (nudge 10 / a quarter of the initial weights by one ulp, as
      trace_train -p / -q: trajectories that differ by rounding noise, for the chaotic spread)
"""
import argparse
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "bench"))
import torch_model as tm  # noqa: E402
from torch_pipeline import read_model  # noqa: E402


def flat(tensors):
    return np.concatenate([t.detach().to(torch.float32).reshape(-1).numpy() for t in tensors])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("split")
    ap.add_argument("init")
    ap.add_argument("steps", type=int)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    ap.add_argument("--dump-step", type=int, default=-1)
    ap.add_argument("--dump-prefix")
    ap.add_argument("-q", "--spread", type=int, default=0,
                    help="nudge about a quarter of all weights by one ulp, as trace_train -q")
    ap.add_argument("-p", "--perturb", type=int, default=0,
                    help="nudge 10 initial weights by one ulp, as trace_train -p (chaos spread)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    dt = torch.float32 if a.dtype == "float32" else torch.float64
    x = np.load(os.path.join(a.split, "vectors.npy"), mmap_mode="r")
    y = np.load(os.path.join(a.split, "labels.npy")).astype(np.int64)
    n = len(y)
    sd = read_model(a.init)
    ncls = sd["out.bias"].shape[0]
    if a.perturb > 0 or a.spread > 0:
        names = list(sd.keys())
        fl = np.concatenate([sd[k].reshape(-1) for k in names])
        for i in range(10 if a.perturb > 0 else 0):
            j = (a.perturb * 1000003 + i * 1037489) % fl.size
            fl[j] = np.nextafter(fl[j], np.float32(np.inf), dtype=np.float32)
        if a.spread > 0:
            j = np.arange(fl.size, dtype=np.uint64)
            sel = (((j * np.uint64(2654435761) + np.uint64(a.spread * 40503)) >> np.uint64(7)) & np.uint64(3)) == 0
            fl[sel] = np.nextafter(fl[sel], np.float32(np.inf), dtype=np.float32)
        off = 0
        for k in names:
            sd[k] = fl[off:off + sd[k].size].reshape(sd[k].shape).copy()
            off += sd[k].size
    # the task from conv1's kernel (app: 4, traffic: 5; bench/torch_model.py CNN_CONV)
    task = tm.APP if sd["conv1.weight"].shape[-1] == 4 else tm.TRAFFIC
    model = tm.make("cnn", task, ncls)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in sd.items()})
    model = model.to(dt)
    model.train()
    model.p = 0.0
    params = list(model.parameters())  # state_dict order == the C tensor order
    opt = torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    for s in range(a.steps):
        idx = (np.arange(16 * s, 16 * s + 16, dtype=np.int64) * 7919) % n
        xb = torch.from_numpy(np.asarray(x[idx], dtype=np.float32) / np.float32(255.0)).to(dt)
        yb = torch.from_numpy(y[idx])
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        if s == a.dump_step:
            flat(params).tofile(a.dump_prefix + ".params0")
            flat([p.grad for p in params]).tofile(a.dump_prefix + ".grads")
        opt.step()
        if s == a.dump_step:
            flat(params).tofile(a.dump_prefix + ".params1")
        print("%d %.7f" % (s, loss.item()), flush=True)


if __name__ == "__main__":
    main()
