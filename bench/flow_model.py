#!/usr/bin/python3
"""Prototype of the neural flow classifier (issue 10, item 4): computes the
shared per-flow features (README "flow features"; docs/accuracy.md) from a
preprocessed dataset folder and compares sequence stages on two time splits.

  /usr/bin/python3 bench/flow_model.py --data /work/data/iscx-ds \
      --stages mlp,flat,conv,gru,attn --tasks traffic,app --splits file,class \
      --masks default,none --seeds 1,2,3

Splits: `file` = per capture file the latest 20% of its flows (by first
packet time) go to test; `class` = per class the latest 20% of its flows
(iscx-sample's synthetic clock orders captures by name, so this puts whole
unseen captures in test). Prints one line per run and a mean table.

Stages (all share the per-packet encoder Linear(F,E1)+ReLU+Linear(E1,E2)+ReLU,
masked by the present flag, except `mlp`):
  mlp   flat MLP over the raw [N*F] row (no shared encoder): 256-128-out
  flat  encoder, flatten [N*E2], Linear(N*E2,H)+ReLU, dropout, out
  conv  encoder, conv1d k3 'same' C channels + ReLU, flatten, Linear(N*C,H)+ReLU, dropout, out
  pool  encoder, conv1d k3 'same' + ReLU, max and mean over present packets, dropout, out
  gru   encoder, GRU(E2,H) over the present packets, last state, dropout, out
  attn  encoder + position embedding, one TransformerEncoderLayer, masked mean, dropout, out
Uses one thread (the machine is shared).
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as Fn

MASK_DEFAULT = ("ports", "ipid", "ttl", "checksum", "seq", "tcpts")


def mask_vector(v, fields):
    """Zeroes the masked fields of one 1500-byte IPv4/IPv6 vector, in place."""
    ver = v[0] >> 4
    if ver == 4:
        ihl = (v[0] & 15) * 4
        proto = v[9]
        frag = ((int(v[6]) & 0x1F) << 8 | int(v[7])) != 0
        if "ipid" in fields:
            v[4:6] = 0
        if "ttl" in fields:
            v[8] = 0
        if "checksum" in fields:
            v[10:12] = 0
        th = ihl
    else:
        proto = v[6]
        frag = False
        if "ipid" in fields:
            v[1] &= 0xF0
            v[2:4] = 0
        if "ttl" in fields:
            v[7] = 0
        th = 40
    if frag or th + 8 > len(v):
        return proto, th, frag
    if proto in (6, 17) and "ports" in fields:
        v[th:th + 4] = 0
    if proto == 17 and "checksum" in fields:
        v[th + 6:th + 8] = 0
    if proto == 6 and th + 20 <= len(v):
        if "seq" in fields:
            v[th + 4:th + 12] = 0
        if "window" in fields:
            v[th + 14:th + 16] = 0
        if "checksum" in fields:
            v[th + 16:th + 18] = 0
        if "tcpts" in fields:
            end = min(th + (v[th + 12] >> 4) * 4, len(v))
            o = th + 20
            while o < end:
                k = v[o]
                if k == 0:
                    break
                if k == 1:
                    o += 1
                    continue
                if o + 1 >= end or v[o + 1] < 2:
                    break
                ln = v[o + 1]
                if k == 8 and ln == 10 and o + 10 <= end:
                    v[o + 2:o + 10] = 0
                o += ln
    return proto, th, frag


def packet_features(v, proto, th, frag, K):
    """[4 + 40 + K] features of one masked vector ([0], [1], [3] set by the caller)."""
    f = np.zeros(44 + K, dtype=np.float32)
    if v[0] >> 4 == 4:
        ln = int(v[2]) << 8 | int(v[3])
        f[4:24] = v[0:20] / 255.0
    else:
        ln = (int(v[4]) << 8 | int(v[5])) + 40
        f[4:12] = v[0:8] / 255.0
    if ln == 0:
        ln = 1500
    f[2] = ln / 1500.0
    if frag:
        ps = th
    elif proto == 6:
        f[24:44] = v[th:th + 20] / 255.0
        ps = th + (v[th + 12] >> 4) * 4
    elif proto == 17:
        f[24:44] = v[th:th + 20] / 255.0
        ps = th + 20
    else:
        ps = th
    if K:
        p = v[ps:ps + K]
        f[44:44 + len(p)] = p / 255.0
    return f


def build_flows(data, N, K, mask, groups=None):
    """-> X [flows, N, F], app [flows], traffic [flows], file [flows], t0 [flows]."""
    meta = np.load(os.path.join(data, "meta.npy"))
    vec = np.load(os.path.join(data, "vectors.npy"), mmap_mode="r")
    app = np.load(os.path.join(data, "app.npy"))
    tra = np.load(os.path.join(data, "traffic.npy"))
    order = np.lexsort((meta["index"], meta["file"], meta["time"]))
    fields = set()
    if mask == "default":
        fields = set(MASK_DEFAULT)
    elif mask == "all":
        fields = set(MASK_DEFAULT) | {"window"}
    elif mask != "none":
        fields = set(mask.split(","))
    flows = {}
    for i in order:
        fid = int(meta["flow"][i])
        fl = flows.get(fid)
        if fl is None:
            fl = flows[fid] = {"rows": [], "first": i}
        if len(fl["rows"]) < N:
            fl["rows"].append(i)
    ids = sorted(flows, key=lambda k: (meta["time"][flows[k]["first"]], flows[k]["first"]))
    F = 44 + K
    X = np.zeros((len(ids), N, F), dtype=np.float32)
    for r, fid in enumerate(ids):
        rows = flows[fid]["rows"]
        f0 = rows[0]
        s0 = (bytes(meta["saddr"][f0]), int(meta["sport"][f0]))
        prev = None
        for j, i in enumerate(rows):
            v = np.array(vec[i], dtype=np.uint8)
            proto, th, frag = mask_vector(v, fields)
            f = packet_features(v, proto, th, frag, K)
            f[0] = 1.0
            f[1] = 1.0 if (bytes(meta["saddr"][i]), int(meta["sport"][i])) == s0 else -1.0
            t = float(meta["time"][i])
            f[3] = 0.0 if prev is None else np.log1p(1000.0 * max(t - prev, 0.0)) / 10.0
            prev = t
            X[r, j] = f
    if groups:
        keep = np.zeros(F, dtype=bool)
        keep[0] = True
        if "sizes" in groups:
            keep[1:3] = True
        if "time" in groups:
            keep[3] = True
        if "header" in groups:
            keep[4:44] = True
        if "payload" in groups:
            keep[44:] = True
        X[:, :, ~keep] = 0
    firsts = [flows[k]["first"] for k in ids]
    return (X, app[firsts].astype(np.int64), tra[firsts].astype(np.int64), meta["file"][firsts].astype(np.int64),
            meta["time"][firsts])


def time_split(groups, t0, frac=0.2):
    """Boolean test mask: in each group the latest frac of its flows (flows are in time order)."""
    test = np.zeros(len(groups), dtype=bool)
    for g in np.unique(groups):
        idx = np.nonzero(groups == g)[0]
        idx = idx[np.argsort(t0[idx], kind="stable")]
        n = int(round(frac * len(idx)))
        if n:
            test[idx[-n:]] = True
    return test


class FlowNet(nn.Module):
    def __init__(self, stage, N, F, V, E1=64, E2=32, C=32, H=128, dropout=0.2, mlp1=256):
        super().__init__()
        self.stage = stage
        self.N = N
        if stage == "mlp":
            self.fc1 = nn.Linear(N * F, mlp1)
            self.fc2 = nn.Linear(mlp1, H)
            self.drop = nn.Dropout(dropout)
            self.out = nn.Linear(H, V)
            return
        self.enc1 = nn.Linear(F, E1)
        self.enc2 = nn.Linear(E1, E2)
        self.drop = nn.Dropout(dropout)
        if stage == "flat":
            self.fc1 = nn.Linear(N * E2, H)
            self.out = nn.Linear(H, V)
        elif stage == "conv":
            self.conv = nn.Conv1d(E2, C, 3, padding=1)
            self.fc1 = nn.Linear(N * C, H)
            self.out = nn.Linear(H, V)
        elif stage == "pool":
            self.conv = nn.Conv1d(E2, C, 3, padding=1)
            self.out = nn.Linear(2 * C, V)
        elif stage == "gru":
            self.gru = nn.GRU(E2, H, batch_first=True)
            self.out = nn.Linear(H, V)
        elif stage == "attn":
            self.pos = nn.Parameter(torch.zeros(N, E2))
            self.att = nn.TransformerEncoderLayer(E2, 4, 2 * E2, dropout=0.0, batch_first=True)
            self.out = nn.Linear(E2, V)

    def forward(self, x):  # x [B, N, F] or [B, N*F]
        B = x.shape[0]
        x = x.reshape(B, self.N, -1)
        if self.stage == "mlp":
            h = Fn.relu(self.fc1(x.reshape(B, -1)))
            h = self.drop(Fn.relu(self.fc2(h)))
            return self.out(h)
        present = x[:, :, 0:1]
        e = Fn.relu(self.enc2(Fn.relu(self.enc1(x)))) * present  # [B, N, E2]
        if self.stage == "flat":
            return self.out(self.drop(Fn.relu(self.fc1(e.reshape(B, -1)))))
        if self.stage == "conv":
            c = Fn.relu(self.conv(e.transpose(1, 2)))  # [B, C, N]
            return self.out(self.drop(Fn.relu(self.fc1(c.transpose(1, 2).reshape(B, -1)))))
        if self.stage == "pool":
            c = Fn.relu(self.conv(e.transpose(1, 2))) * present.transpose(1, 2)
            cnt = present.sum(1).clamp(min=1)  # [B, 1]
            mx = c.max(2).values
            mean = c.sum(2) / cnt
            return self.out(self.drop(torch.cat([mx, mean], 1)))
        if self.stage == "gru":
            lens = present[:, :, 0].sum(1).clamp(min=1).long()
            pk = nn.utils.rnn.pack_padded_sequence(e, lens.cpu(), batch_first=True, enforce_sorted=False)
            _, h = self.gru(pk)
            return self.out(self.drop(h[0]))
        if self.stage == "attn":
            pad = present[:, :, 0] == 0
            pad[:, 0] = False
            a = self.att(e + self.pos, src_key_padding_mask=pad) * present
            return self.out(self.drop(a.sum(1) / present.sum(1).clamp(min=1)))
        raise ValueError(self.stage)


def f1s(y, p, V):
    from sklearn.metrics import f1_score
    labels = np.unique(y)
    return (f1_score(y, p, labels=labels, average="weighted", zero_division=0),
            f1_score(y, p, labels=labels, average="macro", zero_division=0))


def train_eval(X, y, test, stage, seed, V, args):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tr = np.nonzero(~test)[0]
    N, F = X.shape[1], X.shape[2]
    model = FlowNet(stage, N, F, V, E1=args.e1, E2=args.e2, C=args.c, H=args.h, dropout=args.dropout)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    cnt = np.bincount(y[tr], minlength=V).astype(np.float64)
    w = None
    if args.balance == "weight":
        w = torch.tensor(np.where(cnt > 0, len(tr) / (V * np.maximum(cnt, 1)), 0.0), dtype=torch.float32)
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y)
    for ep in range(args.epochs):
        model.train()
        perm = rng.permutation(tr)
        for s in range(0, len(perm), args.batch):
            b = perm[s:s + args.batch]
            opt.zero_grad()
            loss = Fn.cross_entropy(model(Xt[b]), yt[b], weight=w)
            loss.backward()
            opt.step()
    model.eval()
    te = np.nonzero(test)[0]
    with torch.no_grad():
        pred = model(Xt[te]).argmax(1).numpy()
    return y[te], pred


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="/work/data/iscx-ds")
    ap.add_argument("--stages", default="mlp,flat,conv,pool,gru,attn")
    ap.add_argument("--tasks", default="traffic,app")
    ap.add_argument("--splits", default="file,class")
    ap.add_argument("--masks", default="default")
    ap.add_argument("--features", default="", help="groups kept (sizes,time,header,payload); default all")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--packets", type=int, default=10)
    ap.add_argument("--payload-bytes", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--e1", type=int, default=64)
    ap.add_argument("--e2", type=int, default=32)
    ap.add_argument("--c", type=int, default=32)
    ap.add_argument("--h", type=int, default=128)
    ap.add_argument("--dropout", type=float, default=0.2)
    ap.add_argument("--balance", default="weight", choices=("none", "weight"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    names = {}
    with open(os.path.join(args.data, "labels.tsv")) as f:
        next(f)
        for line in f:
            c = line.rstrip("\n").split("\t")
            names[int(c[3])] = c[4]
    vpn = np.array([names.get(i, "").startswith("VPN") for i in range(max(names) + 1)])
    results = {}
    for mask in args.masks.split(";") if ";" in args.masks else args.masks.split(":"):
        t = time.time()
        groups = set(args.features.split(",")) if args.features else None
        X, app, tra, fil, t0 = build_flows(args.data, args.packets, args.payload_bytes, mask, groups)
        print("# mask %s: %d flows, features [%d, %d, %d] in %.1fs" % (mask, len(X), *X.shape, time.time() - t),
              flush=True)
        for task in args.tasks.split(","):
            y = tra if task == "traffic" else app
            ok = y >= 0
            Xk, yk, fk, tk, trk = X[ok], y[ok], fil[ok], t0[ok], tra[ok]
            V = int(yk.max()) + 1
            for split in args.splits.split(","):
                test = time_split(fk if split == "file" else yk, tk)
                for stage in args.stages.split(","):
                    for seed in [int(s) for s in args.seeds.split(",")]:
                        t = time.time()
                        yt, p = train_eval(Xk, yk, test, stage, seed, V, args)
                        wf, mf = f1s(yt, p, V)
                        vacc = float(np.mean(vpn[yt] == vpn[p])) if task == "traffic" else float("nan")
                        print("mask=%s task=%s split=%s stage=%s seed=%d weighted=%.3f macro=%.3f vpn=%.3f "
                              "train=%d test=%d %.0fs" % (mask, task, split, stage, seed, wf, mf, vacc,
                                                          int((~test).sum()), int(test.sum()), time.time() - t),
                              flush=True)
                        results.setdefault((mask, task, split, stage), []).append((wf, mf, vacc))
    print("\n| mask | task | split | stage | weighted F1 | macro F1 | VPN/non-VPN acc |")
    print("|---|---|---|---|---|---|---|")
    for k, v in results.items():
        a = np.array(v)
        print("| %s | %s | %s | %s | %.3f ± %.3f | %.3f ± %.3f | %s |" % (
            *k, a[:, 0].mean(), a[:, 0].std(), a[:, 1].mean(), a[:, 1].std(),
            "-" if k[1] != "traffic" else "%.3f" % a[:, 2].mean()))


if __name__ == "__main__":
    sys.exit(main())
