#!/usr/bin/python3
"""One-step comparison at a trained state: loads the parameters that
tools/trace_train.c dumped before step K (P.params0) into the PyTorch twin,
computes loss and gradients of batch K in float32 and float64 and compares
them, tensor by tensor, with C's (P.grads); then applies torch.optim.Adam's
update to C's Adam state (P.m0, P.v0, step K+1) with C's gradients and
compares with C's result (P.params1, P.m1, P.v1).

  /usr/bin/python3 tools/trace_compare.py SPLIT_DIR INIT.dpm K PREFIX [THREADS]
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "bench"))
import torch_model as tm  # noqa: E402
from torch_pipeline import read_model  # noqa: E402


def main():
    split, init, k, pre = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    torch.set_num_threads(int(sys.argv[5]) if len(sys.argv) > 5 else 1)
    x = np.load(os.path.join(split, "vectors.npy"), mmap_mode="r")
    y = np.load(os.path.join(split, "labels.npy")).astype(np.int64)
    sd = read_model(init)
    names = list(sd.keys())
    shapes = [sd[n].shape for n in names]
    sizes = [int(np.prod(s)) for s in shapes]
    ld = lambda ext: np.fromfile(pre + "." + ext, dtype=np.float32)  # noqa: E731
    P, G = ld("params0"), ld("grads")
    offs = np.cumsum([0] + sizes)
    split_t = lambda a: {n: a[offs[i]:offs[i + 1]].reshape(shapes[i]) for i, n in enumerate(names)}  # noqa: E731
    idx = (np.arange(16 * k, 16 * k + 16, dtype=np.int64) * 7919) % len(y)
    grads = {}
    for dt in (torch.float32, torch.float64):
        m = tm.make("cnn", tm.TRAFFIC, sd["out.bias"].shape[0])
        m.load_state_dict({n: torch.from_numpy(v.copy()) for n, v in split_t(P).items()})
        m = m.to(dt)
        m.p = 0.0
        xb = torch.from_numpy(np.asarray(x[idx], dtype=np.float32) / np.float32(255.0)).to(dt)
        loss = F.cross_entropy(m(xb), torch.from_numpy(y[idx]))
        loss.backward()
        print("%s loss %.8f" % (dt, loss.item()))
        grads[dt] = {n: p.grad.double().numpy() for n, p in m.named_parameters()}
    Cg = split_t(G)
    print("%-14s %10s %12s %12s %12s %10s %10s" % ("tensor", "max|g64|", "C-64 max", "T32-64 max",
                                                 "C-64 relL2", "T32 relL2", "zeros C/64"))
    for n in names:
        g64 = grads[torch.float64][n]
        g32 = grads[torch.float32][n]
        c = Cg[n].astype(np.float64)
        nrm = np.linalg.norm(g64) or 1.0
        print("%-14s %10.3e %12.3e %12.3e %12.3e %10.3e %5d/%d" % (
            n, np.abs(g64).max(), np.abs(c - g64).max(), np.abs(g32 - g64).max(),
            np.linalg.norm(c - g64) / nrm, np.linalg.norm(g32 - g64) / nrm,
            int((c == 0).sum()), int((g64 == 0).sum())))
    # Adam: torch's update on C's state and gradients
    if os.path.exists(pre + ".m0"):
        p = torch.nn.Parameter(torch.from_numpy(P.copy()))
        opt = torch.optim.Adam([p], lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
        st = opt.state[p]
        st["step"] = torch.tensor(float(k))
        st["exp_avg"] = torch.from_numpy(ld("m0").copy())
        st["exp_avg_sq"] = torch.from_numpy(ld("v0").copy())
        p.grad = torch.from_numpy(G.copy())
        opt.step()
        after, mm, vv = ld("params1"), ld("m1"), ld("v1")
        d = p.detach().numpy() - after
        upd = np.abs(after - P).max()
        print("Adam (torch on C's state): max |param diff| %.3e (max update %.3e), "
              "max |m diff| %.3e, max |v diff| %.3e, params differing %d of %d" % (
                  np.abs(d).max(), upd, np.abs(st["exp_avg"].numpy() - mm).max(),
                  np.abs(st["exp_avg_sq"].numpy() - vv).max(), int((d != 0).sum()), d.size))


if __name__ == "__main__":
    main()
