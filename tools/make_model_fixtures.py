#!/usr/bin/python3
"""Writes tests/fixtures/model_{cnn_app,cnn_traffic,sae}.bin: PyTorch 1.13
reference values for tests/test_model.c and tests/test_train.c.

Each fixture holds the initial weights (PyTorch default init, exported so
that C starts from exactly the same point), 10 batches of input bytes and
labels, and what PyTorch computes from them with dropout off (p = 0):
logits, log-softmax, the mean cross-entropy and every parameter gradient of
batch 0, then the losses of ten Adam(1e-3, 0.9, 0.999, 1e-8) steps, one per
batch.

Sizes are reduced to keep the fixtures small (< 3 MB together); only the
channel count of the CNNs is reduced (app: 2 filters per conv, traffic: 4),
kernels, strides, pooling and the 200-100-50 head are the real ones. The
SAE has no channels: its hidden widths are cut tenfold (40-30-20-10-5); the
input stays 1500 wide. The full-size shapes are checked in test_model.c by
parameter count.

Format (little-endian): "DPFIX001", u32 count, then count records of
u16 name length, name, u8 dtype ('f' float32, 'i' int32, 'u' uint8),
u32 ndim, u32 shape[ndim], raw data.

Run: /usr/bin/python3 tools/make_model_fixtures.py   (from the repo root)
"""
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
import torch_model as tm  # noqa: E402

B = 4
STEPS = 10


def write(path, recs):
    with open(path + ".tmp", "wb") as f:
        f.write(b"DPFIX001")
        f.write(struct.pack("<I", len(recs)))
        for name, arr in recs:
            arr = np.ascontiguousarray(arr)
            dt = {np.dtype(np.float32): b"f", np.dtype(np.int32): b"i", np.dtype(np.uint8): b"u"}[arr.dtype]
            nb = name.encode()
            f.write(struct.pack("<H", len(nb)) + nb + dt + struct.pack("<I", arr.ndim))
            f.write(struct.pack("<%dI" % arr.ndim, *arr.shape))
            f.write(arr.astype(arr.dtype.newbyteorder("<")).tobytes())
    os.replace(path + ".tmp", path)


def make_inputs(rng, nclasses):
    x = rng.integers(0, 256, size=(STEPS, B, tm.IN_LEN), dtype=np.uint8)
    # real vectors end in zero padding: zero a random tail of each row
    for s in range(STEPS):
        for b in range(B):
            x[s, b, rng.integers(40, tm.IN_LEN):] = 0
    y = rng.integers(0, nclasses, size=(STEPS, B)).astype(np.int32)
    return x, y


def fixture(path, kind, task, nclasses, seed, hidden, c=0):
    torch.manual_seed(seed)
    if kind == "cnn":
        model = tm.CNN(task, nclasses, c1=c, c2=c, hidden=hidden, dropout=0.0)
    else:
        model = tm.SAE(nclasses, hidden=hidden, dropout=0.0)
    model.train()
    rng = np.random.default_rng(seed)
    x, y = make_inputs(rng, nclasses)
    arch = np.zeros(6 + 8, dtype=np.int32)
    arch[:6] = [0 if kind == "cnn" else 1, task, nclasses, c, c, len(hidden)]
    arch[6:6 + len(hidden)] = hidden
    recs = [("arch", arch), ("x", x), ("y", y)]
    for n, p in model.state_dict().items():
        recs.append(("init." + n, p.detach().numpy().astype(np.float32)))
    xf = torch.from_numpy(x.astype(np.float32) / np.float32(255.0))
    yt = torch.from_numpy(y.astype(np.int64))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    losses = []
    for s in range(STEPS):
        opt.zero_grad()
        logits = model(xf[s])
        loss = F.cross_entropy(logits, yt[s])
        loss.backward()
        if s == 0:
            recs.append(("logits", logits.detach().numpy()))
            recs.append(("logprobs", F.log_softmax(logits, 1).detach().numpy()))
            recs.append(("loss", np.array([loss.item()], dtype=np.float32)))
            for n, p in model.named_parameters():
                recs.append(("grad." + n, p.grad.detach().numpy().astype(np.float32)))
        losses.append(loss.item())
        opt.step()
    recs.append(("adam_losses", np.array(losses, dtype=np.float32)))
    for n, p in model.state_dict().items():
        if n == "out.bias" or n == "fc1.bias":
            recs.append(("final." + n, p.detach().numpy().astype(np.float32)))
    write(path, recs)
    print("%s: %d bytes, losses %s" % (path, os.path.getsize(path), " ".join("%.5f" % v for v in losses)))


def main():
    torch.set_num_threads(1)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
    fixture(os.path.join(out, "model_cnn_app.bin"), "cnn", tm.APP, 15, 1, tm.CNN_HIDDEN, c=2)
    fixture(os.path.join(out, "model_cnn_traffic.bin"), "cnn", tm.TRAFFIC, 11, 2, tm.CNN_HIDDEN, c=4)
    fixture(os.path.join(out, "model_sae.bin"), "sae", tm.TRAFFIC, 11, 3, (40, 30, 20, 10, 5))


if __name__ == "__main__":
    main()
