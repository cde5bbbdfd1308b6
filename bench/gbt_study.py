#!/usr/bin/python3
"""GBT studies on deeppacket's own flow rows, scored on a validation split
carved from the training side (each capture's latest 25% of its training
flows), so that the test set chooses nothing (docs/accuracy.md, "Closing
the gap": 2 and 4). Needs python3-numpy, python3-sklearn and XGBoost's
Python package (1.7 was used).

  make build/dump_flows
  build/dump_flows SPLIT/traffic_classification/train traffic /tmp/gs/cap-traffic-train
  bench/gbt_study.py /tmp/gs/cap-traffic-train features   # + TCP options, per-flow aggregates
  bench/gbt_study.py /tmp/gs/cap-traffic-train params     # one hyper-parameter changed at a time
"""
import sys, time
import numpy as np
import xgboost as xgb
from sklearn.metrics import f1_score

N = 10  # packets per flow row (dump_flows' default)


def tcp_options(raw):
    """Per packet: the first 20 TCP option bytes (timestamp values zeroed)
    and the parsed MSS, window scale, SACK-permitted, timestamp presence
    and option length."""
    n = raw.shape[0]
    O = np.zeros((n, N, 20), np.float32)
    P = np.zeros((n, N, 5), np.float32)
    for i in range(n):
        for j in range(N):
            v = raw[i, j]
            ver = v[0] >> 4
            ihl, proto = ((v[0] & 15) * 4, v[9]) if ver == 4 else (40, v[6]) if ver == 6 else (0, 0)
            if proto != 6:
                continue
            off = (v[ihl + 12] >> 4) * 4
            if off <= 20:
                continue
            ob = np.array(v[ihl + 20:ihl + off]).copy()
            k = 0
            while k + 1 < len(ob) and ob[k] != 0:
                if ob[k] == 1:
                    k += 1
                    continue
                kind, ln = ob[k], ob[k + 1]
                if ln < 2:
                    break
                if kind == 2 and ln == 4:
                    P[i, j, 0] = (int(ob[k + 2]) << 8 | ob[k + 3]) / 1500
                if kind == 3 and ln == 3:
                    P[i, j, 1] = (ob[k + 2] + 1) / 16
                P[i, j, 2] += kind == 4
                if kind == 8:
                    P[i, j, 3] = 1
                    ob[k + 2:k + ln] = 0
                k += ln
            P[i, j, 4] = (off - 20) / 40
            O[i, j, :min(20, len(ob))] = ob[:20] / 255
    return np.concatenate([O.reshape(n, -1), P.reshape(n, -1)], 1)


def aggregates(x):
    """Per flow: packets, packets and bytes per direction, largest and mean size."""
    B = x.reshape(len(x), N, -1)
    pres, d, s = B[:, :, 0], B[:, :, 1], B[:, :, 2]
    fw, bw = (d > 0) & (pres > 0), (d < 0) & (pres > 0)
    return np.stack([pres.sum(1), fw.sum(1), bw.sum(1), (s * fw).sum(1), (s * bw).sum(1), s.max(1),
                     (s * pres).sum(1) / np.maximum(pres.sum(1), 1)], 1)


def fit_score(X, y, val, params, rounds):
    yt = y[~val]
    c = np.bincount(yt, minlength=y.max() + 1).astype(float)
    w = len(yt) / ((c > 0).sum() * np.maximum(c[yt], 1))  # train --balance weight, on the fitted rows
    p = dict(objective='multi:softprob', num_class=int(y.max() + 1), max_depth=6, eta=0.1, colsample_bytree=0.8,
             tree_method='hist', nthread=1, seed=1, verbosity=0)
    p.update(params)
    b = xgb.train(p, xgb.DMatrix(X[~val], label=yt, weight=w), rounds)
    pr = b.predict(xgb.DMatrix(X[val])).argmax(1)
    return f1_score(y[val], pr, average='weighted'), f1_score(y[val], pr, average='macro')


def main():
    prefix, study = sys.argv[1], sys.argv[2]
    x, y = np.load(prefix + '.x.npy'), np.load(prefix + '.y.npy').astype(int)
    t, f = np.load(prefix + '.t.npy'), np.load(prefix + '.file.npy')
    val = np.zeros(len(y), bool)
    for c in np.unique(f):
        i = np.nonzero(f == c)[0]
        i = i[np.argsort(t[i], kind='stable')]
        val[i[len(i) - int(round(len(i) * 0.25)):]] = True
    if study == 'features':
        raw = np.load(prefix + '.raw.npy', mmap_mode='r').reshape(-1, N, 1500)
        runs = [('the flow rows', x, {}, 200),
                ('+ TCP options, parsed options, per-flow aggregates',
                 np.concatenate([x, tcp_options(raw), aggregates(x)], 1), {}, 200)]
    else:
        runs = [(str(p), x, p, r) for p, r in [({}, 200), ({'max_depth': 4}, 300), ({'max_depth': 8}, 200),
                                               ({'max_depth': 10, 'eta': 0.05}, 300), ({'eta': 0.05}, 400),
                                               ({'min_child_weight': 3}, 200), ({'colsample_bytree': 0.3}, 200),
                                               ({'subsample': 0.8}, 200)]]
    for name, X, params, rounds in runs:
        t0 = time.time()
        w, m = fit_score(X, y, val, params, rounds)
        print('%-55s rounds %3d  validation wF1 %.3f  macro F1 %.3f  %.0f s' % (name, rounds, w, m, time.time() - t0),
              flush=True)


if __name__ == '__main__':
    main()
