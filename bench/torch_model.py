"""PyTorch twin of the deeppacket models (src/model/dp_model.c).

Same architectures, same parameter names (state_dict keys == the tensor
names in our model files: conv1.weight, ..., fc1.weight, ..., out.bias),
same layer order (Linear -> Dropout -> ReLU for each hidden layer), so
weights can be exchanged both ways. Input: float [B, 1500] (bytes / 255).

Used by tools/make_model_fixtures.py (exactness fixtures), bench/bench_train.sh
(speed) and bench/torch_pipeline.py (accuracy parity).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

APP, TRAFFIC = 0, 1
CNN_CONV = {APP: ((4, 3), (5, 1)), TRAFFIC: ((5, 3), (4, 3))}
CNN_HIDDEN = (200, 100, 50)
SAE_HIDDEN = (400, 300, 200, 100, 50)
IN_LEN = 1500


def conv_len(L, k, s):
    return (L - k) // s + 1 if L >= k else 0


class CNN(nn.Module):
    def __init__(self, task, nclasses, c1=200, c2=200, hidden=CNN_HIDDEN, dropout=0.05, pool=2):
        super().__init__()
        (k1, s1), (k2, s2) = CNN_CONV[task]
        self.conv1 = nn.Conv1d(1, c1, k1, s1)
        self.conv2 = nn.Conv1d(c1, c2, k2, s2)
        self.pool = nn.MaxPool1d(pool)
        L3 = conv_len(conv_len(IN_LEN, k1, s1), k2, s2) // pool
        dims = [c2 * L3] + list(hidden)
        for i in range(len(hidden)):
            setattr(self, "fc%d" % (i + 1), nn.Linear(dims[i], dims[i + 1]))
        self.out = nn.Linear(dims[-1], nclasses)
        self.nhidden = len(hidden)
        self.p = dropout

    def forward(self, x):
        x = x.unsqueeze(1)
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = self.pool(x).flatten(1)
        for i in range(self.nhidden):
            x = F.relu(F.dropout(getattr(self, "fc%d" % (i + 1))(x), self.p, self.training))
        return self.out(x)


class SAE(nn.Module):
    def __init__(self, nclasses, hidden=SAE_HIDDEN, dropout=0.05):
        super().__init__()
        dims = [IN_LEN] + list(hidden)
        for i in range(len(hidden)):
            setattr(self, "fc%d" % (i + 1), nn.Linear(dims[i], dims[i + 1]))
        self.out = nn.Linear(dims[-1], nclasses)
        self.nhidden = len(hidden)
        self.p = dropout

    def forward(self, x):
        for i in range(self.nhidden):
            x = F.relu(F.dropout(getattr(self, "fc%d" % (i + 1))(x), self.p, self.training))
        return self.out(x)


def make(kind, task, nclasses, **kw):
    return CNN(task, nclasses, **kw) if kind == "cnn" else SAE(nclasses, **kw)


def bench(kind, task, nclasses, batch, steps, threads, vectors=None):
    """Training samples/s (forward + backward + Adam, dropout on) and
    inference packets/s (eval, no_grad) on random bytes, one untimed
    warm-up step each: the same protocol as `deeppacket train --bench`.
    With vectors (the vectors.npy of a dataset or split folder), the
    inference batches are its rows, the same rows as `deeppacket train
    --bench -d DIR`: batch s is rows [start, start + batch),
    start = s * batch mod (n - batch + 1)."""
    import time
    torch.set_num_threads(threads)
    torch.manual_seed(9876)
    m = make(kind, task, nclasses)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, 256, (batch, IN_LEN), generator=g, dtype=torch.uint8)
    y = torch.randint(0, nclasses, (batch,), generator=g)
    m.train()
    for s in range(steps + 1):
        if s == 1:
            t0 = time.perf_counter()
        xf = x.float() / 255.0
        loss = F.cross_entropy(m(xf), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    tr = steps * batch / (time.perf_counter() - t0)
    m.eval()
    if vectors is not None:
        import numpy as np
        v = np.load(vectors, mmap_mode="r")
        n = v.shape[0]
    with torch.no_grad():
        for s in range(steps + 1):
            if s == 1:
                t0 = time.perf_counter()
            if vectors is not None:
                start = s * batch % (n - batch + 1)
                x = torch.from_numpy(np.array(v[start:start + batch]))
            F.log_softmax(m(x.float() / 255.0), 1)
    inf = steps * batch / (time.perf_counter() - t0)
    return tr, inf


if __name__ == "__main__":
    import argparse
    import os
    ap = argparse.ArgumentParser(description="PyTorch speed of the deeppacket models")
    ap.add_argument("--model", choices=["cnn", "sae"], default="cnn")
    ap.add_argument("--task", choices=["app", "traffic"], required=True)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--vectors", help="inference batches from this folder's vectors.npy (default: random bytes)")
    a = ap.parse_args()
    task = APP if a.task == "app" else TRAFFIC
    vec = os.path.join(a.vectors, "vectors.npy") if a.vectors else None
    tr, inf = bench(a.model, task, 15 if task == APP else 11, a.batch, a.steps, a.threads, vec)
    print("%s %s batch %d threads %d: train %.1f samples/s, inference %.1f packets/s" %
          (a.model, a.task, a.batch, a.threads, tr, inf))
