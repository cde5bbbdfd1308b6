#!/usr/bin/python3
"""Writes tests/fixtures/model_{cnn_app,cnn_traffic,sae,flow,flow_flat}.bin:
PyTorch 1.13 reference values for tests/test_model.c and tests/test_train.c.

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

The flow fixtures (DP_MODEL_FLOW; bench/flow_model.py FlowNet, stages
"conv", "flat" and "mlp" (head 10 -> 8)) use a tiny architecture: N = 4 packets of F = 12
features, encoder 6 -> 5, conv 4 channels (kernel 3), head 8, 3 classes.
Their inputs are float rows "xf" [steps, B, N*F] (present flag 1 for the
first 1..N packets, all-zero blocks after), and "arch" is followed by
"ext" (int32 [8], dp_arch.ext).

Format: tools/fixture_format.py (shared with tools/make_nn_fixtures.py).

Run: /usr/bin/python3 tools/make_model_fixtures.py [NAME...]   (from the repo
root; NAMEs such as model_flow.bin write only those files)
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
import flow_model as fm  # noqa: E402
import fixture_format  # noqa: E402
import torch_model as tm  # noqa: E402

B = 4
STEPS = 10


def write(path, recs):
    fixture_format.write(path, recs)


def make_inputs(rng, nclasses):
    x = rng.integers(0, 256, size=(STEPS, B, tm.IN_LEN), dtype=np.uint8)
    # real vectors end in zero padding: zero a random tail of each row
    for s in range(STEPS):
        for b in range(B):
            x[s, b, rng.integers(40, tm.IN_LEN):] = 0
    y = rng.integers(0, nclasses, size=(STEPS, B)).astype(np.int32)
    return x, y


FLOW = dict(N=4, F=12, E1=6, E2=5, K=3, H=8, V=3)


def make_flow_inputs(rng, nclasses):
    N, F = FLOW["N"], FLOW["F"]
    x = rng.standard_normal((STEPS, B, N, F)).astype(np.float32)
    for s in range(STEPS):
        for b in range(B):
            n = rng.integers(1, N + 1)
            x[s, b, :, 0] = 1.0
            x[s, b, n:, :] = 0.0
    y = rng.integers(0, nclasses, size=(STEPS, B)).astype(np.int32)
    return x.reshape(STEPS, B, N * F), y


def fixture(path, kind, task, nclasses, seed, hidden, c=0):
    torch.manual_seed(seed)
    ext = np.zeros(8, dtype=np.int32)
    if kind == "cnn":
        model = tm.CNN(task, nclasses, c1=c, c2=c, hidden=hidden, dropout=0.0)
    elif kind == "flow":
        if len(hidden) == 2:  # the "mlp" stage: no per-packet encoder, fc1 -> fc2 -> out
            model = fm.FlowNet("mlp", FLOW["N"], FLOW["F"], nclasses, H=hidden[1], dropout=0.0, mlp1=hidden[0])
        else:
            model = fm.FlowNet("conv" if c else "flat", FLOW["N"], FLOW["F"], nclasses, E1=FLOW["E1"],
                               E2=FLOW["E2"], C=c, H=hidden[0], dropout=0.0)
            ext[2:6] = [FLOW["E1"], FLOW["E2"], c, FLOW["K"] if c else 0]
        ext[:2] = [FLOW["N"], FLOW["F"]]
    else:
        model = tm.SAE(nclasses, hidden=hidden, dropout=0.0)
    model.train()
    rng = np.random.default_rng(seed)
    if kind == "flow":
        x, y = make_flow_inputs(rng, nclasses)
    else:
        x, y = make_inputs(rng, nclasses)
    arch = np.zeros(6 + 8, dtype=np.int32)
    arch[:6] = [{"cnn": 0, "sae": 1, "flow": 2}[kind], task, nclasses, c, c, len(hidden)]
    arch[6:6 + len(hidden)] = hidden
    recs = [("arch", arch)] + ([("ext", ext)] if kind == "flow" else []) + [("xf" if kind == "flow" else "x", x),
                                                                           ("y", y)]
    for n, p in model.state_dict().items():
        recs.append(("init." + n, p.detach().numpy().astype(np.float32)))
    if kind == "flow":
        xf = torch.from_numpy(x)
    else:
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
        if n in ("out.bias", "fc1.bias") or kind == "flow":
            recs.append(("final." + n, p.detach().numpy().astype(np.float32)))
    write(path, recs)
    print("%s: %d bytes, losses %s" % (path, os.path.getsize(path), " ".join("%.5f" % v for v in losses)))


def main():
    torch.set_num_threads(1)
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
    jobs = [("model_cnn_app.bin", ("cnn", tm.APP, 15, 1, tm.CNN_HIDDEN), dict(c=2)),
            ("model_cnn_traffic.bin", ("cnn", tm.TRAFFIC, 11, 2, tm.CNN_HIDDEN), dict(c=4)),
            ("model_sae.bin", ("sae", tm.TRAFFIC, 11, 3, (40, 30, 20, 10, 5)), {}),
            ("model_flow.bin", ("flow", tm.TRAFFIC, FLOW["V"], 4, (FLOW["H"],)), dict(c=4)),
            ("model_flow_flat.bin", ("flow", tm.APP, FLOW["V"], 5, (FLOW["H"],)), dict(c=0)),
            ("model_flow_mlp.bin", ("flow", tm.TRAFFIC, FLOW["V"], 6, (10, FLOW["H"])), dict(c=0))]
    for name, args, kw in jobs:
        if len(sys.argv) == 1 or name in sys.argv[1:]:
            fixture(os.path.join(out, name), *args, **kw)


if __name__ == "__main__":
    main()
