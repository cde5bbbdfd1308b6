#!/usr/bin/python3
"""PyTorch reference run for the accuracy parity check (docs/accuracy.md).

Trains the PyTorch twin (bench/torch_model.py) on a split folder written by
`deeppacket split` (vectors.npy, labels.npy, classes.tsv, read with numpy
only) with the settings of `deeppacket train` (Adam 1e-3/0.9/0.999/1e-8,
batch 16, reshuffled every epoch, dropout 0.05, early stopping with patience
3 on the epoch's mean training loss, at most --epochs; SAE: greedy
pre-training of every hidden layer as an autoencoder for --pretrain-epochs
epochs, then fine-tuning), then evaluates on the test folder and prints the
per-class table and the support-weighted F1 (sklearn semantics,
zero_division = 0) plus one JSON line. With --rng deeppacket the epoch
orders and dropout masks are those of `deeppacket train --seed S` (bit for
bit; bench/torch_model.py DpRng), so from the same --init weights the two
runs differ only by float rounding.

  /usr/bin/python3 bench/torch_pipeline.py --train SPLIT/traffic_classification/train \
      --test SPLIT/traffic_classification/test --task traffic --epochs 5 --threads 2
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_model as tm  # noqa: E402


def load(d):
    x = np.load(os.path.join(d, "vectors.npy"), mmap_mode="r")
    y = np.load(os.path.join(d, "labels.npy")).astype(np.int64)
    names = []
    with open(os.path.join(d, "classes.tsv")) as f:
        for line in f:
            line = line.rstrip("\n")
            if line and not line.startswith("#"):
                names.append(line.split("\t", 1)[1])
    return x, y, names


def read_model(path):
    """Reads a deeppacket model file (docs/model-format.md) -> {name: array}."""
    import struct
    b = open(path, "rb").read()
    if b[:8] != b"DPMODEL\0":
        raise SystemExit("%s: not a deeppacket model file" % path)
    pos = 8 + 4 + 4 * 4 + 4 * 7 + 4 + 4 * 8 + 4 + 4 * 6 + 4 * 6 + 8 * 2
    ncls = struct.unpack_from("<I", b, 20)[0]
    for _ in range(ncls):
        n = struct.unpack_from("<H", b, pos)[0]
        pos += 2 + n
    nt = struct.unpack_from("<I", b, pos)[0]
    pos += 4
    table = []
    for _ in range(nt):
        n = struct.unpack_from("<H", b, pos)[0]
        name = b[pos + 2:pos + 2 + n].decode()
        pos += 2 + n
        nd = struct.unpack_from("<I", b, pos)[0]
        shape = struct.unpack_from("<%dI" % nd, b, pos + 4)
        pos += 4 + 4 * nd
        off, numel = struct.unpack_from("<QQ", b, pos)
        pos += 16
        table.append((name, shape, off, numel))
    nparams = struct.unpack_from("<Q", b, pos)[0]
    data = np.frombuffer(b, dtype="<f4", count=nparams, offset=pos + 8)
    return {name: data[off:off + numel].reshape(shape).copy() for name, shape, off, numel in table}


def batch(x, idx):
    return torch.from_numpy(np.asarray(x[idx], dtype=np.float32) / np.float32(255.0))


def epoch_perm(n, g, dprng):
    if dprng:
        return np.array(dprng.shuffle(list(range(n))), dtype=np.int64)
    return torch.randperm(n, generator=g).numpy()


def pretrain(model, x, n, args, g, dprng):
    """Greedy layer-wise SAE pre-training (as src/train/dp_train_sae.c)."""
    for L in range(model.nhidden):
        enc = getattr(model, "fc%d" % (L + 1))
        dec = torch.nn.Linear(enc.out_features, enc.in_features)
        if dprng:
            bound = 1.0 / np.sqrt(enc.out_features)
            with torch.no_grad():
                dec.weight.copy_(torch.from_numpy(dprng.uniform(tuple(dec.weight.shape), bound)))
                dec.bias.copy_(torch.from_numpy(dprng.uniform(tuple(dec.bias.shape), bound)))
        opt = torch.optim.Adam(list(enc.parameters()) + list(dec.parameters()), lr=args.lr)
        for e in range(args.pretrain_epochs):
            perm = epoch_perm(n, g, dprng)
            tot = 0.0
            for s in range(0, n, args.batch):
                xb = batch(x, perm[s:s + args.batch])
                with torch.no_grad():
                    for k in range(L):
                        xb = F.relu(getattr(model, "fc%d" % (k + 1))(xb))
                rec = dec(F.relu(enc(xb)))
                loss = F.mse_loss(rec, xb)
                opt.zero_grad()
                loss.backward()
                opt.step()
                tot += loss.item() * len(xb)
            print("pre-train layer %d epoch %d: mse %.6f" % (L + 1, e + 1, tot / n), file=sys.stderr)


def train(model, x, y, args):
    g = torch.Generator().manual_seed(args.seed)
    n = len(y)
    dprng = None
    if args.rng == "deeppacket":
        # the draws of `deeppacket train --seed S`: decoders, epoch orders, dropout masks
        dprng = tm.DpRng(args.seed ^ tm.TRAIN_RNG_SALT)
        model.masks = dprng
    if args.model == "sae" and args.pretrain_epochs > 0:
        pretrain(model, x, n, args, g, dprng)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8)
    best, bad = float("inf"), 0
    t0 = time.time()
    for e in range(args.epochs):
        model.train()
        perm = epoch_perm(n, g, dprng)
        tot, corr, te = 0.0, 0, time.time()
        for s in range(0, n, args.batch):
            idx = perm[s:s + args.batch]
            xb, yb = batch(x, idx), torch.from_numpy(y[idx])
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += loss.item() * len(idx)
            corr += (logits.argmax(1) == yb).sum().item()
        mean = tot / n
        print("epoch %d/%d: loss %.4f acc %.4f, %.0f samples/s" % (e + 1, args.epochs, mean, corr / n,
                                                                   n / (time.time() - te)), file=sys.stderr)
        if mean < best:
            best, bad = mean, 0
        else:
            bad += 1
            if bad >= 3:
                print("early stop", file=sys.stderr)
                break
    return time.time() - t0


def report(y, pred, names):
    V = len(names)
    rows, wf1 = [], 0.0
    for c in range(V):
        tp = int(((pred == c) & (y == c)).sum())
        sup = int((y == c).sum())
        npred = int((pred == c).sum())
        p = tp / npred if npred else 0.0
        r = tp / sup if sup else 0.0
        f1 = 2 * p * r / (p + r) if p + r else 0.0
        rows.append((names[c], r, p, f1, sup))
        wf1 += f1 * sup
    return rows, wf1 / len(y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--task", choices=["app", "traffic"], required=True)
    ap.add_argument("--model", choices=["cnn", "sae"], default="cnn")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--pretrain-epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=9876)
    ap.add_argument("--dropout", type=float, default=0.05, help="hidden-layer dropout (deeppacket train --dropout)")
    ap.add_argument("--rng", choices=["torch", "deeppacket"], default="torch",
                    help="draw epoch orders and dropout masks from torch's generator, or exactly as "
                    "`deeppacket train --seed S` does (with --init, both runs then see the same "
                    "batches, masks and SAE decoders: only float rounding differs)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--init", help="start from the weights of this deeppacket model file "
                    "(e.g. `deeppacket train --epochs 0`: the C initialisation)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x, y, names = load(args.train)
    model = tm.make(args.model, tm.APP if args.task == "app" else tm.TRAFFIC, len(names), dropout=args.dropout)
    if args.init:
        sd = {k: torch.from_numpy(v) for k, v in read_model(args.init).items()}
        model.load_state_dict(sd)
        print("initial weights from %s" % args.init, file=sys.stderr)
    secs = train(model, x, y, args)
    xt, yt, _ = load(args.test)
    model.eval()
    preds = []
    with torch.no_grad():
        for s in range(0, len(yt), 256):
            preds.append(model(batch(xt, np.arange(s, min(s + 256, len(yt))))).argmax(1).numpy())
    pred = np.concatenate(preds)
    rows, wf1 = report(yt, pred, names)
    print("| label | recall | precision | f1-score | support |")
    print("|---|---|---|---|---|")
    for n, r, p, f, s in rows:
        print("| %s | %.4f | %.4f | %.4f | %d |" % (n, r, p, f, s))
    print("weighted F1 %.4f, accuracy %.4f" % (wf1, float((pred == yt).mean())))
    print(json.dumps({"task": args.task, "model": args.model, "weighted_f1": round(wf1, 4),
                      "accuracy": round(float((pred == yt).mean()), 4), "train_seconds": round(secs, 1),
                      "epochs": args.epochs, "train_rows": int(len(y)), "test_rows": int(len(yt))}))


if __name__ == "__main__":
    main()
