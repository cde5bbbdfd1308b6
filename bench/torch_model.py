"""PyTorch twin of the deeppacket models (src/model/dp_model.c).

Same architectures, same parameter names (state_dict keys == the tensor
names in our model files: conv1.weight, ..., fc1.weight, ..., out.bias),
same layer order (Linear -> Dropout -> ReLU for each hidden layer), so
weights can be exchanged both ways. Input: float [B, 1500] (bytes / 255).

Used by tools/make_model_fixtures.py (exactness fixtures), bench/bench_train.sh
(speed) and bench/torch_pipeline.py (accuracy parity).
"""
import numpy as np
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


M64 = (1 << 64) - 1
TRAIN_RNG_SALT = 0x7472616E2D726E67  # DP_TRAIN_RNG_SALT, src/train/dp_train_setup.c


class DpRng:
    """deeppacket's generator, bit for bit (src/util/dp_util.c): xoshiro256**
    seeded by splitmix64; below() is dp_rng_below (rejection, then modulo),
    shuffle() is dp_rng_shuffle_u32 (Fisher-Yates from the top), uniform()
    is dp_init_uniform and dropout_keep() draws dp_dropout_forward's masks
    (dp_rng_float >= p). `deeppacket train --seed S` draws from
    DpRng(S ^ TRAIN_RNG_SALT), in this order: for each SAE pre-training layer
    the decoder's weight then bias, then that layer's epoch orders; then the
    order at the start of each epoch, and per step the masks of fc1, fc2, ...
    ([B, out] row-major)."""

    def __init__(self, seed):
        x, s = seed & M64, []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & M64
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
            s.append(z ^ (z >> 31))
        self.s = s

    def u64(self, n=None):
        """One draw, or a list of n."""
        s0, s1, s2, s3 = self.s
        out = []
        for _ in range(1 if n is None else n):
            r = (s1 * 5) & M64
            r = ((((r << 7) | (r >> 57)) & M64) * 9) & M64
            t = (s1 << 17) & M64
            s2 ^= s0
            s3 ^= s1
            s1 ^= s2
            s0 ^= s3
            s2 ^= t
            s3 = ((s3 << 45) | (s3 >> 19)) & M64
            out.append(r)
        self.s = [s0, s1, s2, s3]
        return out[0] if n is None else out

    def below(self, n):
        limit = M64 - M64 % n
        while True:
            x = self.u64()
            if x < limit:
                return x % n

    def shuffle(self, a):
        for i in range(len(a), 1, -1):
            j = self.below(i)
            a[i - 1], a[j] = a[j], a[i - 1]
        return a

    def u24(self, n):
        """n draws of dp_rng_float's top 24 bits (dp_rng_float = u24 * 2^-24)."""
        return np.array(self.u64(n), dtype=np.uint64) >> np.uint64(40)

    def uniform(self, shape, bound):
        """dp_init_uniform: (2u - 1) * bound in float32, drawn in row-major order."""
        u = self.u24(int(np.prod(shape))).astype(np.float32) * np.float32(2.0 ** -24)
        return ((np.float32(2) * u - np.float32(1)) * np.float32(bound)).reshape(shape)

    def dropout_keep(self, n, p):
        """n keep flags (numpy bool) for dropout rate p (a float32 in C)."""
        return self.u24(n) >= float(np.float32(p)) * (1 << 24)  # u24 * 2^-24 >= p


def dropout(x, p, training, rng=None):
    """F.dropout, or with rng (a DpRng) deeppacket's masks and scale."""
    if not training or p <= 0:
        return x
    if rng is None:
        return F.dropout(x, p, True)
    keep = rng.dropout_keep(x.numel(), p).reshape(tuple(x.shape))
    scale = np.float32(1) / (np.float32(1) - np.float32(p))
    return x * torch.from_numpy(keep.astype(np.float32) * scale)


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
        self.masks = None  # optional DpRng: draw dropout masks as deeppacket does

    def forward(self, x):
        x = x.unsqueeze(1)
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = self.pool(x).flatten(1)
        for i in range(self.nhidden):
            x = F.relu(dropout(getattr(self, "fc%d" % (i + 1))(x), self.p, self.training, self.masks))
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
        self.masks = None

    def forward(self, x):
        for i in range(self.nhidden):
            x = F.relu(dropout(getattr(self, "fc%d" % (i + 1))(x), self.p, self.training, self.masks))
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
