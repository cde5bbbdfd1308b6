#!/usr/bin/python3
"""Writes the reference fixtures for tests/test_nn.c from PyTorch (1.13).

Usage (from the repository root):  /usr/bin/python3 tools/make_nn_fixtures.py [outdir]
outdir defaults to tests/fixtures. Deterministic (seeded); rerunning gives
the same files. Python is only used here, never at run time.

Files: tests/fixtures/nn_<layer>.bin for layer in conv1d, maxpool1d, linear,
relu, xent, mse, adam, seqconv. Each file holds several cases; case i's tensors are
named "c<i>.<name>" and "ncases" (int32 [1]) says how many there are.

Format: tools/fixture_format.py (shared with tools/make_model_fixtures.py);
integer tensors are int32 ('i'), the rest float32 ('f').

Per layer (shapes as in src/nn/dp_nn.h; "shape" is an int32 vector):
  conv1d:    shape [B,C,L,OC,K,S]; inp, weight, bias, out, dout, dinp, dweight, dbias
             (gradients of sum(out * dout) via autograd)
  maxpool1d: shape [B,C,L,P]; inp, out, idx (int32 argmax within the row), dout, dinp
  linear:    shape [B,C,OC]; inp, weight, bias, out, dout, dinp, dweight, dbias
  relu:      shape [n]; inp, out, dout, dinp
  xent:      shape [B,V]; logits, labels (int32), loss [1], probs, logsoftmax, dlogits
             (F.cross_entropy, mean reduction)
  mse:       shape [n]; pred, target, loss [1], dpred (F.mse_loss, mean)
  seqconv:   shape [B,N,C,OC,K]; inp [B,N,C] (channels-last), weight [OC,C,K], bias, out [B,N,OC],
             dout, dinp, dweight, dbias: F.conv1d(inp.transpose(1,2), padding=K//2).transpose(1,2)
  adam:      shape [n, steps]; hyper [lr, beta1, beta2, eps]; p0 [n] initial params,
             grads [steps, n] (gradient fed at each step), params [steps, n]
             (torch.optim.Adam parameters after each step)
The real CNN shapes are used with reduced channel counts so that all files
together stay well under 2 MB (1.3 MB). Dropout has no fixture: PyTorch's
random stream cannot be reproduced, so tests/test_nn.c checks its keep rate,
scaling and mask/backward consistency instead.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

import fixture_format

torch.set_num_threads(1)
torch.manual_seed(1234)


class Writer:
    def __init__(self):
        self.items = []

    def add(self, name, t):
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu().numpy()
        a = np.asarray(t)
        a = a.astype(np.int32) if a.dtype.kind in "iu" else a.astype(np.float32)
        if a.ndim == 0:
            a = a.reshape(1)
        self.items.append((name, a))

    def save(self, path):
        size = fixture_format.write(path, self.items)
        print("%-32s %8d bytes, %d tensors" % (path, size, len(self.items)))


def uniform(*shape, bound=1.0):
    return (torch.rand(*shape) * 2 - 1) * bound


def conv1d(outdir):
    w = Writer()
    cases = [
        (2, 3, 20, 4, 3, 1),     # small, direct path (C*K = 9)
        (2, 3, 23, 5, 4, 3),     # stride with a remainder
        (3, 6, 30, 7, 3, 2),     # C*K = 18: BLAS path
        (2, 1, 1500, 8, 4, 3),   # app conv1 shape, OC reduced 200 -> 8
        (2, 1, 1500, 8, 5, 3),   # traffic conv1 shape, OC reduced
        (2, 16, 499, 12, 5, 1),  # app conv2 shape, C/OC reduced 200 -> 16/12
        (2, 16, 499, 12, 4, 3),  # traffic conv2 shape, C/OC reduced
        (1, 2, 5, 3, 5, 1),      # L == K: one output
    ]
    for i, (B, C, L, OC, K, S) in enumerate(cases):
        bound = 1.0 / (C * K) ** 0.5
        x = torch.randn(B, C, L, requires_grad=True)
        wt = uniform(OC, C, K, bound=bound).requires_grad_()
        b = uniform(OC, bound=bound).requires_grad_()
        y = F.conv1d(x, wt, b, stride=S)
        dy = torch.randn_like(y)
        (y * dy).sum().backward()
        p = "c%d." % i
        w.add(p + "shape", np.array([B, C, L, OC, K, S]))
        for n, t in [("inp", x), ("weight", wt), ("bias", b), ("out", y), ("dout", dy),
                     ("dinp", x.grad), ("dweight", wt.grad), ("dbias", b.grad)]:
            w.add(p + n, t)
    w.add("ncases", np.array([len(cases)]))
    w.save(os.path.join(outdir, "nn_conv1d.bin"))


def maxpool1d(outdir):
    w = Writer()
    cases = [(2, 3, 11, 2, False), (2, 8, 495, 2, False), (2, 8, 166, 2, False),
             (3, 2, 17, 3, False), (2, 3, 12, 2, True), (1, 2, 10, 4, True)]
    for i, (B, C, L, P, ties) in enumerate(cases):
        if ties:
            x = torch.randint(-2, 3, (B, C, L)).float()
        else:
            x = torch.randn(B, C, L)
        x.requires_grad_()
        y, idx = F.max_pool1d(x, P, return_indices=True)
        dy = torch.randn_like(y)
        (y * dy).sum().backward()
        p = "c%d." % i
        w.add(p + "shape", np.array([B, C, L, P]))
        for n, t in [("inp", x), ("out", y), ("idx", idx.int()), ("dout", dy), ("dinp", x.grad)]:
            w.add(p + n, t)
    w.add("ncases", np.array([len(cases)]))
    w.save(os.path.join(outdir, "nn_maxpool1d.bin"))


def linear(outdir):
    w = Writer()
    cases = [(4, 37, 11), (2, 100, 50), (3, 1000, 20), (16, 200, 100), (1, 5, 1)]
    for i, (B, C, OC) in enumerate(cases):
        bound = 1.0 / C ** 0.5
        x = torch.randn(B, C, requires_grad=True)
        wt = uniform(OC, C, bound=bound).requires_grad_()
        b = uniform(OC, bound=bound).requires_grad_()
        y = F.linear(x, wt, b)
        dy = torch.randn_like(y)
        (y * dy).sum().backward()
        p = "c%d." % i
        w.add(p + "shape", np.array([B, C, OC]))
        for n, t in [("inp", x), ("weight", wt), ("bias", b), ("out", y), ("dout", dy),
                     ("dinp", x.grad), ("dweight", wt.grad), ("dbias", b.grad)]:
            w.add(p + n, t)
    w.add("ncases", np.array([len(cases)]))
    w.save(os.path.join(outdir, "nn_linear.bin"))


def relu(outdir):
    w = Writer()
    cases = [37, 1000]
    for i, n in enumerate(cases):
        x = torch.randn(n)
        x[::7] = 0.0  # exact zeros: gradient is 0 there (as PyTorch)
        x.requires_grad_()
        y = F.relu(x)
        dy = torch.randn_like(y)
        (y * dy).sum().backward()
        p = "c%d." % i
        w.add(p + "shape", np.array([n]))
        for nm, t in [("inp", x), ("out", y), ("dout", dy), ("dinp", x.grad)]:
            w.add(p + nm, t)
    w.add("ncases", np.array([len(cases)]))
    w.save(os.path.join(outdir, "nn_relu.bin"))


def xent(outdir):
    w = Writer()
    cases = [(5, 7, 1.0), (16, 17, 3.0), (4, 2, 1.0), (8, 12, 40.0), (1, 1, 1.0)]
    for i, (B, V, scale) in enumerate(cases):
        z = (torch.randn(B, V) * scale).requires_grad_()
        lab = torch.randint(0, V, (B,))
        loss = F.cross_entropy(z, lab)
        loss.backward()
        p = "c%d." % i
        w.add(p + "shape", np.array([B, V]))
        w.add(p + "logits", z)
        w.add(p + "labels", lab.int())
        w.add(p + "loss", loss.reshape(1))
        w.add(p + "probs", F.softmax(z, dim=1))
        w.add(p + "logsoftmax", F.log_softmax(z, dim=1))
        w.add(p + "dlogits", z.grad)
    w.add("ncases", np.array([len(cases)]))
    w.save(os.path.join(outdir, "nn_xent.bin"))


def mse(outdir):
    w = Writer()
    cases = [100, 4 * 1500, 3]
    for i, n in enumerate(cases):
        pred = torch.randn(n, requires_grad=True)
        tgt = torch.rand(n)
        loss = F.mse_loss(pred, tgt)
        loss.backward()
        p = "c%d." % i
        w.add(p + "shape", np.array([n]))
        for nm, t in [("pred", pred), ("target", tgt), ("loss", loss.reshape(1)), ("dpred", pred.grad)]:
            w.add(p + nm, t)
    w.add("ncases", np.array([len(cases)]))
    w.save(os.path.join(outdir, "nn_mse.bin"))


def adam(outdir):
    w = Writer()
    cases = [(50, 10, (1e-3, 0.9, 0.999, 1e-8)), (33, 10, (1e-2, 0.8, 0.99, 1e-6))]
    for i, (n, steps, (lr, b1, b2, eps)) in enumerate(cases):
        p0 = torch.randn(n) * 0.01  # small params: float rounding ~1e-9, steps ~lr
        param = torch.nn.Parameter(p0.clone())
        opt = torch.optim.Adam([param], lr=lr, betas=(b1, b2), eps=eps)
        grads = torch.randn(steps, n)
        grads[:, 0] = 0.0          # a parameter that never gets gradient
        grads[3:, 1] *= 1e-6       # tiny gradients: eps matters
        hist = []
        for s in range(steps):
            opt.zero_grad()
            param.grad = grads[s].clone()
            opt.step()
            hist.append(param.detach().clone())
        p = "c%d." % i
        w.add(p + "shape", np.array([n, steps]))
        w.add(p + "hyper", np.array([lr, b1, b2, eps], dtype=np.float32))
        w.add(p + "p0", p0)
        w.add(p + "grads", grads)
        w.add(p + "params", torch.stack(hist))
    w.add("ncases", np.array([len(cases)]))
    w.save(os.path.join(outdir, "nn_adam.bin"))


def seqconv(outdir):
    w = Writer()
    cases = [(2, 5, 3, 4, 3), (3, 10, 6, 5, 5), (1, 1, 2, 3, 3), (2, 4, 3, 2, 1), (4, 10, 32, 32, 3)]
    for i, (B, N, C, OC, K) in enumerate(cases):
        bound = 1.0 / (C * K) ** 0.5
        x = torch.randn(B, N, C, requires_grad=True)
        wt = uniform(OC, C, K, bound=bound).requires_grad_()
        b = uniform(OC, bound=bound).requires_grad_()
        y = F.conv1d(x.transpose(1, 2), wt, b, padding=K // 2).transpose(1, 2)
        dy = torch.randn_like(y)
        (y * dy).sum().backward()
        p = "c%d." % i
        w.add(p + "shape", np.array([B, N, C, OC, K]))
        for n, t in [("inp", x), ("weight", wt), ("bias", b), ("out", y), ("dout", dy),
                     ("dinp", x.grad), ("dweight", wt.grad), ("dbias", b.grad)]:
            w.add(p + n, t)
    w.add("ncases", np.array([len(cases)]))
    w.save(os.path.join(outdir, "nn_seqconv.bin"))


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures"
    os.makedirs(outdir, exist_ok=True)
    for fn in (conv1d, maxpool1d, linear, relu, xent, mse, adam, seqconv):
        fn(outdir)


if __name__ == "__main__":
    main()
