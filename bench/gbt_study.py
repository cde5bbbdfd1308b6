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
  bench/gbt_study.py /tmp/gs/cap-traffic-train tls [TEST_PREFIX]  # TLS handshake features
  bench/gbt_study.py /tmp/gs/cap-traffic-train vpn [TEST_PREFIX]  # a VPN-or-not booster beside
                                                                    # the traffic one (traffic task)
  bench/gbt_study.py /tmp/gs/cap-traffic-train rows [TEST_PREFIX]  # the rows as dumped (to compare
                          # dump_flows' N and K: build/dump_flows DIR TASK PREFIX N K)
  bench/gbt_study.py /tmp/gs/cap-traffic-train errors TEST_PREFIX [DATASET/files.tsv]
                          # where the GBT's test errors are (by capture and transport), the
                          # flows whose transport is not their label's, and a 1-NN check
  bench/gbt_study.py /tmp/gs/cap-traffic-train allpackets TEST_PREFIX SPLIT/traffic_classification
                     DATASET CAPTURE_DIR [SEEDS, e.g. 1,2,3]
                          # + each flow's first 10 packets of every kind (the handshakes and
                          # empty ACKs that preprocessing drops), read from the captures
  bench/gbt_study.py /tmp/gs/cap-traffic-train recency TEST_PREFIX [WEIGHTS, e.g. 0,4,10] [SEEDS]
                          # training flows weighted by their place in time within their capture
  bench/gbt_study.py /tmp/gs/cap-traffic-train ceiling TEST_PREFIX
                          # what the rows give at best: resubstitution, the test rows learnt
                          # from themselves in folds, with and without the training side
  bench/gbt_study.py /tmp/gs/cap-traffic-train selftrain TEST_PREFIX [THRESHOLDS, e.g. 0.9,0.97] [SEEDS]
                          # self-training on the unlabelled flows to classify (transductive)
  bench/gbt_study.py /tmp/gs/cap-traffic-train continue TEST_PREFIX
                          # the training side's booster updated with 4/5 of the later flows
                          # (training continuation, as train --model gbt --init), against
                          # retraining and a booster of the later flows alone; 5 folds
  bench/gbt_study.py /tmp/gs/cap-traffic-train stack TEST_PREFIX APP_PREFIX
                          # + the app task's out-of-fold probabilities (APP_PREFIX-train and
                          # -test: dump_flows of the app task's split sides)
  bench/gbt_study.py /tmp/gs/cap-traffic-train drift TEST_PREFIX [DROPS, e.g. 0,25,50,100] [SEEDS]
                          # adversarial validation: a booster told each capture's earlier flows
                          # from its later ones ranks the features by drift; the K most drifting
                          # are dropped (chosen on the fitted rows only, never the scored ones)
  bench/gbt_study.py /tmp/gs/cap-traffic-train forest|bagging|coarse|dart TEST_PREFIX [VARIANTS] [SEEDS]
                          # model families and coarser inputs (family_study): forest
                          # gbt,xrf:12:0.1:100,rf,et (XGBoost's random-forest mode, sklearn's
                          # random forest and extra trees); bagging bag:3:gbt,bag:3:gbt@q32+p2
                          # (3 GBT seeds' probabilities averaged); coarse gbt@q16,gbt@q32,
                          # gbt@log,gbt@p2 (sizes in 16/32-byte or log bins, payload bytes of
                          # the first 2 packets only); dart dart:0.1. VARIANTS '-' for these
                          # defaults, SEEDS default 1,2,3; TEST_PREFIX '-' scores validation
                          # only; GBT_STUDY_CACHE=DIR keeps each fit's probabilities for reuse
  bench/gbt_study.py /tmp/gs/cls-traffic-train novelty TEST_PREFIX [SEEDS, e.g. 1,2,3]
                          # which signal ranks the test flows the GBT gets wrong last (unknown
                          # applications): max probability, margin, entropy, kNN distances,
                          # IsolationForest, Mahalanobis, XGBoost leaf similarity, combinations;
                          # area under the risk-coverage curve and wF1 at 50/70/90% coverage
With TEST_PREFIX (dump_flows of the test side), the tls and vpn studies also
fit on the whole training side and score on the test set, as a check of what
validation chose (the test set is not used to choose).
"""
import re, struct, sys, time, zlib
import numpy as np
import xgboost as xgb
from sklearn.metrics import f1_score

N = 10  # packets per flow row (dump_flows' default)


def ip_header(v):
    """(IP header length, protocol) of one 1500-byte vector; protocol None if not IPv4/IPv6."""
    ver = v[0] >> 4
    return ((v[0] & 15) * 4, v[9]) if ver == 4 else (40, v[6]) if ver == 6 else (0, None)


def option_list(ob):
    """(kind, offset, length) of each TCP option in the option bytes ob, up to
    the end-of-list option or a malformed length; NOPs skipped."""
    k, out = 0, []
    while k + 1 < len(ob) and ob[k] != 0:
        if ob[k] == 1:
            k += 1
            continue
        if ob[k + 1] < 2:
            break
        out.append((ob[k], k, ob[k + 1]))
        k += ob[k + 1]
    return out


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
            ihl, proto = ip_header(v)
            if proto != 6:
                continue
            off = (v[ihl + 12] >> 4) * 4
            if off <= 20:
                continue
            ob = np.array(v[ihl + 20:ihl + off]).copy()
            for kind, k, ln in option_list(ob):
                if kind == 2 and ln == 4:
                    P[i, j, 0] = (int(ob[k + 2]) << 8 | ob[k + 3]) / 1500
                if kind == 3 and ln == 3:
                    P[i, j, 1] = (ob[k + 2] + 1) / 16
                P[i, j, 2] += kind == 4
                if kind == 8:
                    P[i, j, 3] = 1
                    ob[k + 2:k + ln] = 0
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


def transport_payload(v):
    """(IP protocol, transport payload bytes) of one 1500-byte vector, or (None, None)."""
    ihl, proto = ip_header(v)
    if proto == 6:
        return 6, bytes(v[ihl + (v[ihl + 12] >> 4) * 4:])
    if proto == 17:
        return 17, bytes(v[ihl + 8:])
    return proto, None


def tls_hellos(raw):
    """Per flow: its first TLS ClientHello and ServerHello records (None where
    absent), each with the 32-byte random and the session id cut out, so that
    what follows sits at the same offsets in every flow."""
    out = []
    for i in range(raw.shape[0]):
        hello = [None, None]
        for j in range(N):
            proto, p = transport_payload(raw[i, j])
            if proto != 6 or len(p) < 44 or p[0] != 0x16 or p[1] != 3 or p[5] not in (1, 2):
                continue
            if hello[p[5] - 1] is None:
                hello[p[5] - 1] = p[:11] + p[44 + p[43]:]
        out.append(hello)
    return out


def client_hello_fields(c):
    """(SNI host name, cipher suite bytes, extension types) of a cut ClientHello."""
    sni, ext = '', []
    try:
        n = int.from_bytes(c[11:13], 'big')
        ciphers, i = c[13:13 + n], 13 + n
        i += 1 + c[i]
        end = min(i + 2 + int.from_bytes(c[i:i + 2], 'big'), len(c))
        i += 2
        while i + 4 <= end:
            t, ln = int.from_bytes(c[i:i + 2], 'big'), int.from_bytes(c[i + 2:i + 4], 'big')
            if t == 0:
                sni = c[i + 9:i + 9 + int.from_bytes(c[i + 7:i + 9], 'big')].decode('latin1')
            ext.append(t)
            i += 4 + ln
        return sni, ciphers, ext
    except IndexError:
        return sni, b'', ext


def tls_features(raw, which, nb=64):
    """sni: presence, length and hashed tokens of the server name (labels,
    digits folded, and the last 2 and 3 labels); bytes: the first 128 bytes
    of each cut hello; ja3: hashed cipher list, extension list and the
    server's chosen cipher (a JA3/JA3S-like fingerprint) in nb buckets each."""
    H = tls_hellos(raw)
    h = lambda b: zlib.crc32(b) % nb
    if which == 'bytes':
        X = np.full((len(H), 256), -1, np.float32)
        for i, hello in enumerate(H):
            for k, c in enumerate(hello):
                if c is not None:
                    b = np.frombuffer(c[:128], np.uint8) / 255
                    X[i, k * 128:(k + 1) * 128] = 0
                    X[i, k * 128:k * 128 + len(b)] = b
        return X
    X = np.zeros((len(H), 2 + 2 * nb if which == 'sni' else 3 * nb), np.float32)
    for i, (ch, sh) in enumerate(H):
        sni, ciphers, ext = client_hello_fields(ch) if ch is not None else ('', b'', [])
        if which == 'sni':
            X[i, 0], X[i, 1] = (ch is not None) + (sni != ''), len(sni) / 64
            labels = sni.lower().split('.') if sni else []
            toks = [re.sub(r'\d+', '#', t) for t in re.split(r'[.-]', sni.lower()) if t]
            toks += ['S2:' + '.'.join(labels[-2:]), 'S3:' + '.'.join(labels[-3:])] if labels else []
            for t in toks:
                X[i, 2 + h(t.encode()) % (2 * nb)] = 1
        else:
            if ch is not None:
                X[i, h(ciphers)], X[i, nb + h(str(ext).encode())] = 1, 1
            if sh is not None and len(sh) >= 13:
                X[i, 2 * nb + h(sh[11:13])] = 1
    return X


VPN = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1])  # the traffic classes that are VPN ones


def fit(X, y, params=None, rounds=200, objective='multi:softprob', extra=None, init=None):
    c = np.bincount(y).astype(float)
    w = len(y) / ((c > 0).sum() * np.maximum(c[y], 1))  # train --balance weight
    if extra is not None:  # per-row factors on top of the class weights
        w = w * extra
    p = dict(objective=objective, max_depth=6, eta=0.1, colsample_bytree=0.8, tree_method='hist', nthread=1,
             seed=1, verbosity=0)
    if objective == 'multi:softprob':
        p['num_class'] = int(y.max() + 1)
    p.update(params or {})
    return xgb.train(p, xgb.DMatrix(X, label=y, weight=w), rounds, xgb_model=init)


def scores(y, P):
    pr = P.argmax(1)
    return (f1_score(y, pr, average='weighted'), f1_score(y, pr, average='macro'),
            (VPN[pr] == VPN[y]).mean() if y.max() < len(VPN) else float('nan'))


def vpn_study(x, y, val, xt, yt):
    """The traffic booster alone, and its probabilities re-weighted by a
    binary VPN-or-not booster: p(c) = p(c | c's side) q(c's side)^a p(c's side)^(1-a)."""
    for tag, (xa, ya, xb, yb) in [('validation', (x[~val], y[~val], x[val], y[val])), ('test', (x, y, xt, yt))]:
        if xb is None:
            continue
        P = fit(xa, ya).predict(xgb.DMatrix(xb))
        q = fit(xa, VPN[ya], objective='binary:logistic').predict(xgb.DMatrix(xb))
        side = np.stack([P[:, VPN == 0].sum(1), P[:, VPN == 1].sum(1)], 1)
        Q = np.stack([1 - q, q], 1)
        print('%-10s binary booster alone: VPN vs non-VPN %.3f' % (tag, ((q > 0.5) == VPN[yb]).mean()))
        for a in (0, 0.5, 1):
            Pa = P / np.maximum(side[:, VPN], 1e-12) * Q[:, VPN] ** a * side[:, VPN] ** (1 - a)
            print('%-10s a = %.1f  wF1 %.3f  macro F1 %.3f  VPN vs non-VPN %.3f' % (tag, a, *scores(yb, Pa)),
                  flush=True)


def errors_study(x, y, xt, yt, test_prefix, files_tsv):
    """Fit on the whole training side, predict the test side; print the missed
    flows by capture and transport, the score without TCP flows labelled
    VoIP / UDP flows labelled File Transfer (the traffic task's ids), and the
    test flows identical to a training flow (L1 distance 0)."""
    pr = fit(x, y).predict(xgb.DMatrix(xt)).argmax(1)
    raw = np.load(test_prefix + '.raw.npy', mmap_mode='r').reshape(-1, N, 1500)
    ft = np.load(test_prefix + '.file.npy')
    names = {}
    if files_tsv:
        for line in open(files_tsv).read().splitlines()[1:]:
            cols = line.split('\t')
            names[int(cols[0])] = cols[1]
    proto = np.array([transport_payload(raw[i, 0])[0] or 0 for i in range(len(yt))])
    err = pr != yt
    print('wF1 %.3f, %d of %d test flows missed' % (f1_score(yt, pr, average='weighted'), err.sum(), len(yt)))
    keys = sorted({(int(f), int(p)) for f, p in zip(ft, proto)}, key=lambda k: -(err & (ft == k[0]) & (proto == k[1])).sum())
    for f, p in keys[:10]:
        m = (ft == f) & (proto == p)
        print('  %-30s %-4s missed %3d of %3d' % (names.get(f, f), {6: 'tcp', 17: 'udp'}.get(p, p), (err & m).sum(), m.sum()))
    voip_tcp, ft_udp = np.isin(yt, [4, 10]) & (proto == 6), np.isin(yt, [2, 6]) & (proto == 17)
    print('TCP flows labelled VoIP: %d (%d missed); UDP flows labelled File Transfer: %d (%d missed)' %
          (voip_tcp.sum(), (err & voip_tcp).sum(), ft_udp.sum(), (err & ft_udp).sum()))
    keep = ~(voip_tcp | ft_udp)
    print('wF1 without them: %.3f (%d flows)' % (f1_score(yt[keep], pr[keep], average='weighted'), keep.sum()))
    same = conflict = 0
    for a in range(0, len(xt), 100):
        d = np.abs(xt[a:a + 100, None, :] - x[None, :, :]).sum(2)
        z = d.min(1) == 0
        same += z.sum()
        conflict += (z & (y[d.argmin(1)] != yt[a:a + 100])).sum()
    print('test flows identical to a training flow: %d, %d of them with another label' % (same, conflict))


def read_pcap(path):
    """The frames of a classic pcap file (any byte order), as bytes."""
    b = open(path, 'rb').read()
    e = '<' if struct.unpack('<I', b[:4])[0] in (0xa1b2c3d4, 0xa1b23c4d) else '>'
    off, out = 24, []
    while off + 16 <= len(b):
        cap = struct.unpack(e + 'I', b[off + 8:off + 12])[0]
        out.append(b[off + 16:off + 16 + cap])
        off += 16 + cap
    return out


def packet_header(p):
    """Of one raw-IP (link type 101) IPv4 frame: the flow key (protocol and the
    two ports in order) and the header values the study adds per packet:
    source port, IP length, TCP flags, payload length, window, MSS, window
    scale, SACK-permitted, timestamp option, TCP header length. None if not IPv4."""
    if len(p) < 20 or p[0] >> 4 != 4:
        return None
    ihl, proto = (p[0] & 15) * 4, p[9]
    iplen, t = struct.unpack('>H', p[2:4])[0] or len(p), p[(p[0] & 15) * 4:]
    if proto not in (6, 17) or len(t) < (20 if proto == 6 else 8):
        return (proto, 0, 0), (0, iplen, 0, 0, 0, 0, 0, 0, 0, 0)
    sp, dp = struct.unpack('>HH', t[:4])
    if proto == 17:
        return (17, min(sp, dp), max(sp, dp)), (sp, iplen, 0, max(iplen - ihl - 8, 0), 0, 0, 0, 0, 0, 8)
    doff, o = (t[12] >> 4) * 4, t[20:(t[12] >> 4) * 4]
    mss = ws = sack = ts = 0
    for kind, k, ln in option_list(o):
        if kind == 2 and ln == 4 and k + 4 <= len(o):
            mss = struct.unpack('>H', o[k + 2:k + 4])[0]
        ws, sack, ts = (o[k + 2] + 1 if kind == 3 and k + 2 < len(o) else ws), sack or kind == 4, ts or kind == 8
    return (6, min(sp, dp), max(sp, dp)), (sp, iplen, t[13], max(iplen - ihl - doff, 0),
                                           struct.unpack('>H', t[14:16])[0], mss, ws, sack, ts, doff)


def all_packets(ids, meta, files, capdir, cache):
    """Per flow (ids: dump_flows' flow ids; meta: the split side's meta.npy):
    its first N packets of every kind in its capture (same protocol and
    ports; iscx-sample's addresses are zero), 12 floats each (present,
    direction, IP length, flags, payload length, window, MSS, window scale,
    SACK-permitted, timestamps, TCP header length, has payload), then the
    counts of its packets and of those with payload among them."""
    first = {}
    for r in meta:
        f = int(r['flow'])
        if f not in first or r['index'] < first[f][1]:
            first[f] = (int(r['file']), int(r['index']))
    X = np.zeros((len(ids), N * 12 + 2), np.float32)
    for i, f in enumerate(ids):
        fi, idx = first[int(f)]
        if fi not in cache:
            hs = [packet_header(p) for p in read_pcap(capdir + '/' + files[fi])]
            by = {}
            for h in hs:
                if h is not None:
                    by.setdefault(h[0], []).append(h[1])
            cache[fi] = (hs, by)
        hs, by = cache[fi]
        pts = by[hs[idx][0]]
        c0 = pts[0][0]
        for j, (sp, iplen, fl, pl, win, mss, ws, sack, ts, hl) in enumerate(pts[:N]):
            X[i, j * 12:(j + 1) * 12] = [1, 1 if sp == c0 else -1, iplen / 1500, fl / 255, pl / 1500, win / 65535,
                                         mss / 1500, ws / 16, sack, ts, hl / 60, pl > 0]
        X[i, -2], X[i, -1] = min(len(pts), 64) / 10, min(sum(p[3] > 0 for p in pts), 64) / 10
    return X


def allpackets_study(x, y, val, xt, yt, split_dir, dataset, capdir, seeds='1'):
    """The flow rows, the rows plus every flow's first N packets of every kind,
    and those alone, for each seed of the comma-separated list: validation,
    then the test set as a check."""
    files = {int(c[0]): c[1] for c in (l.split('\t') for l in open(dataset + '/files.tsv').read().splitlines()[1:])}
    cache, A = {}, {}
    for side, ids in (('train', np.load(sys.argv[1] + '.id.npy')), ('test', np.load(sys.argv[3] + '.id.npy'))):
        A[side] = all_packets(ids, np.load('%s/%s/meta.npy' % (split_dir, side)), files, capdir, cache)
    for seed in (int(v) for v in seeds.split(',')):
        for name, X, XT in (('the flow rows', x, xt), ('+ all packets', np.concatenate([x, A['train']], 1),
                                                        np.concatenate([xt, A['test']], 1)),
                            ('all packets alone', A['train'], A['test'])):
            t0, p = time.time(), {'seed': seed}
            line = 'seed %d %-18s validation wF1 %.3f macro F1 %.3f VPN %.3f' % (seed, name, *scores(
                y[val], fit(X[~val], y[~val], p).predict(xgb.DMatrix(X[val]))))
            line += ' | test wF1 %.3f macro F1 %.3f VPN %.3f' % scores(yt, fit(X, y, p).predict(xgb.DMatrix(XT)))
            print(line + '  %.0f s' % (time.time() - t0), flush=True)


def capture_rank(f, t, mask):
    """Per row of mask: its flow's place in time among its capture's rows of
    mask, 0 (earliest) to 1 (latest); 0 outside mask."""
    r = np.zeros(len(f))
    for c in np.unique(f[mask]):
        i = np.nonzero((f == c) & mask)[0]
        i = i[np.argsort(t[i], kind='stable')]
        r[i] = np.arange(len(i)) / max(len(i) - 1, 1)
    return r


def recency_study(x, y, val, xt, yt, f, t, weights='0,1,4,10', seeds='1'):
    """Training flows weighted by recency, 1 + A x their place in time within
    their capture (0 earliest, 1 latest), on top of the class weights: the
    later sessions a model meets are closer to the latest training ones."""
    for seed in (int(v) for v in seeds.split(',')):
        for a in (float(v) for v in weights.split(',')):
            t0, p = time.time(), {'seed': seed}
            rv = 1 + a * capture_rank(f, t, ~val)[~val]
            line = 'seed %d A %4.1f validation wF1 %.3f macro F1 %.3f VPN %.3f' % (seed, a, *scores(
                y[val], fit(x[~val], y[~val], p, extra=rv).predict(xgb.DMatrix(x[val]))))
            if xt is not None:
                ra = 1 + a * capture_rank(f, t, np.ones(len(y), bool))
                line += ' | test wF1 %.3f macro F1 %.3f VPN %.3f' % scores(yt, fit(x, y, p, extra=ra).predict(
                    xgb.DMatrix(xt)))
            print(line + '  %.0f s' % (time.time() - t0), flush=True)


def app_probs(Xfit, afit, Xother, k=4):
    """Out-of-fold app-task probabilities (15 classes, k folds) of the Xfit rows, and those of
    a model fitted on all of Xfit's app-labelled rows (afit >= 0) for the Xother rows."""
    def app_fit(X, a):
        c = np.bincount(a, minlength=15).astype(float)
        w = len(a) / ((c > 0).sum() * np.maximum(c[a], 1))
        p = dict(objective='multi:softprob', num_class=15, max_depth=6, eta=0.1, colsample_bytree=0.8,
                 tree_method='hist', nthread=2, seed=1, verbosity=0)
        return xgb.train(p, xgb.DMatrix(X, label=a, weight=w), 200)
    oof, lab, folds = np.zeros((len(Xfit), 15), np.float32), afit >= 0, np.arange(len(Xfit)) % k
    for j in range(k):
        oof[folds == j] = app_fit(Xfit[lab & (folds != j)], afit[lab & (folds != j)]).predict(
            xgb.DMatrix(Xfit[folds == j]))
    return oof, app_fit(Xfit[lab], afit[lab]).predict(xgb.DMatrix(Xother))


def stack_study(x, y, val, xt, yt, prefix, test_prefix, app_prefix):
    """The traffic rows plus the app task's probabilities (stacked, out of fold): the app labels
    of the non-VPN flows as a second source of supervision."""
    ids, idt = np.load(prefix + '.id.npy'), np.load(test_prefix + '.id.npy')
    amap = {}
    for side in ('train', 'test'):
        for i, c in zip(np.load(app_prefix + '-%s.id.npy' % side), np.load(app_prefix + '-%s.y.npy' % side)):
            amap[int(i)] = int(c)
    app = np.array([amap.get(int(i), -1) for i in ids])
    print('%d of %d training flows have an app label' % ((app >= 0).sum(), len(app)), flush=True)
    print('validation, rows only:   wF1 %.3f macro F1 %.3f VPN %.3f' % scores(y[val], fit(x[~val], y[~val]).predict(
        xgb.DMatrix(x[val]))), flush=True)
    oof, pv = app_probs(x[~val], app[~val], x[val])
    print('validation, + app probs: wF1 %.3f macro F1 %.3f VPN %.3f' % scores(y[val], fit(
        np.concatenate([x[~val], oof], 1), y[~val]).predict(xgb.DMatrix(np.concatenate([x[val], pv], 1)))),
        flush=True)
    oof, pt = app_probs(x, app, xt)
    print('test, + app probs:       wF1 %.3f macro F1 %.3f VPN %.3f' % scores(yt, fit(
        np.concatenate([x, oof], 1), y).predict(xgb.DMatrix(np.concatenate([xt, pt], 1)))), flush=True)


def oof_predict(xa, ya, xb, yb, folds=5, seed=1):
    """Out-of-fold probabilities for the rows of xb: each fold of xb
    (stratified) predicted by a booster fitted on xa plus the other folds
    of xb (xa may have no rows)."""
    from sklearn.model_selection import StratifiedKFold
    P = np.zeros((len(yb), int(max(ya.max() if len(ya) else 0, yb.max()) + 1)), np.float32)
    k = StratifiedKFold(folds, shuffle=True, random_state=seed)
    for fit_i, out_i in k.split(xb, yb):
        X = np.concatenate([xa, xb[fit_i]])
        Y = np.concatenate([ya, yb[fit_i]])
        p = fit(X, Y).predict(xgb.DMatrix(xb[out_i]))
        P[out_i, :p.shape[1]] = p
    return P


def ceiling_study(x, y, xt, yt):
    """What the flow rows can give at best, on the test set's later
    sessions: fitted on the training side (what every table reports), on
    the training side and the test rows themselves (resubstitution: how far
    the rows separate the classes at all), on the test rows alone in 5
    folds (later sessions learnt from later sessions), on the training side
    plus 4 of 5 folds of the test rows; and, for comparison, the training
    side in 5 folds (earlier sessions learnt from earlier sessions)."""
    rows = [('training side -> test (the reported number)', lambda: fit(x, y).predict(xgb.DMatrix(xt)), yt),
            ('training side + test -> test (resubstitution)',
             lambda: fit(np.concatenate([x, xt]), np.concatenate([y, yt])).predict(xgb.DMatrix(xt)), yt),
            ('test alone, 5 folds', lambda: oof_predict(x[:0], y[:0], xt, yt), yt),
            ('training side + 4/5 of test -> 1/5, 5 folds', lambda: oof_predict(x, y, xt, yt), yt),
            ('training side alone, 5 folds', lambda: oof_predict(x[:0], y[:0], x, y), y)]
    for name, run, truth in rows:
        t0 = time.time()
        print('%-46s wF1 %.3f macro F1 %.3f VPN %.3f  %.0f s' % (name, *scores(truth, run()), time.time() - t0),
              flush=True)


def continue_study(x, y, xt, yt, seed=1):
    """The training side's booster, then 5 folds of the later flows: each
    fold's 4/5 used to update it (50 or 100 more trees, XGBoost's training
    continuation), to train a booster alone, or added to the training side
    for a new one; each scored on the fold's other 1/5."""
    from sklearn.model_selection import KFold
    K = int(max(y.max(), yt.max()) + 1)  # a fold may lack a class: the boosters keep all K
    t0, p = time.time(), {'seed': seed, 'num_class': K}
    base = fit(x, y, p)
    P = {k: np.zeros((len(yt), K)) for k in ('base', 'cont50', 'cont100', 'new_only', 'retrain')}
    for a, b in KFold(5, shuffle=True, random_state=seed).split(xt):
        P['base'][b] = base.predict(xgb.DMatrix(xt[b]))
        for n in (50, 100):
            P['cont%d' % n][b] = fit(xt[a], yt[a], p, rounds=n, init=base).predict(xgb.DMatrix(xt[b]))
        P['new_only'][b] = fit(xt[a], yt[a], p).predict(xgb.DMatrix(xt[b]))
        P['retrain'][b] = fit(np.concatenate([x, xt[a]]), np.concatenate([y, yt[a]]), p).predict(xgb.DMatrix(xt[b]))
    for k, v in P.items():
        print('%-9s wF1 %.3f macro F1 %.3f VPN %.3f' % (k, *scores(yt, v)), flush=True)
    print('%.0f s' % (time.time() - t0))


def selftrain_study(x, y, val, xt, yt, thresholds='0.9,0.97', seeds='1'):
    """Self-training on the unlabelled flows of the period to classify: fit,
    predict them, add those predicted with probability >= a threshold as
    rows labelled with the prediction, refit, predict again. Transductive
    (it uses the flows' features, never their labels), as a deployment
    could with the traffic it is shown. Validation: the unlabelled flows are
    the validation ones; test: the test set's. One line per seed."""
    for seed in map(int, seeds.split(',')):
        sp = dict(seed=seed)
        for tag, (xa, ya, xb, yb) in [('validation', (x[~val], y[~val], x[val], y[val])), ('test', (x, y, xt, yt))]:
            P = fit(xa, ya, sp).predict(xgb.DMatrix(xb))
            print('seed %d %-10s plain          wF1 %.3f macro F1 %.3f VPN %.3f' % (seed, tag, *scores(yb, P)),
                  flush=True)
            for th in map(float, thresholds.split(',')):
                keep = P.max(1) >= th
                pl = P.argmax(1)
                Q = fit(np.concatenate([xa, xb[keep]]), np.concatenate([ya, pl[keep]]), sp).predict(xgb.DMatrix(xb))
                print('seed %d %-10s self-train %.2f wF1 %.3f macro F1 %.3f VPN %.3f  (%d of %d flows added, %.3f '
                      'of them right)' % (seed, tag, th, *scores(yb, Q), keep.sum(), len(yb),
                                          (pl[keep] == yb[keep]).mean()), flush=True)


def drift_rank(X, f, t):
    """The features ordered by how well they tell each capture's later half
    of X's flows from its earlier half (total gain of a binary booster),
    most drifting first: adversarial validation within X's own rows."""
    late = capture_rank(f, t, np.ones(len(X), bool)) >= 0.5
    b = fit(X, late.astype(int), objective='binary:logistic', rounds=100)
    gain = b.get_score(importance_type='total_gain')
    g = np.zeros(X.shape[1])
    for k, v in gain.items():
        g[int(k[1:])] = v
    return np.argsort(-g, kind='stable'), g


def drift_study(x, y, val, xt, yt, f, t, drops='0,25,50,100', seeds='1'):
    """Drops the K features that drift most within the fitted rows (drift_rank
    on them alone: validation ranks on the training side minus validation,
    test on the whole training side), then fits and scores."""
    rank_v, gv = drift_rank(x[~val], f[~val], t[~val])
    rank_t, gt = drift_rank(x, f, t) if xt is not None else (None, None)
    print('drift ranking: top features %s (share of gain in the top 25: %.2f)' % (
        rank_v[:10].tolist(), gv[rank_v[:25]].sum() / max(gv.sum(), 1e-12)), flush=True)
    for seed in map(int, seeds.split(',')):
        for k in map(int, drops.split(',')):
            t0, p = time.time(), {'seed': seed}
            kv = np.setdiff1d(np.arange(x.shape[1]), rank_v[:k])
            line = 'seed %d drop %4d validation wF1 %.3f macro F1 %.3f VPN %.3f' % (seed, k, *scores(
                y[val], fit(x[~val][:, kv], y[~val], p).predict(xgb.DMatrix(x[val][:, kv]))))
            if xt is not None:
                kt = np.setdiff1d(np.arange(x.shape[1]), rank_t[:k])
                line += ' | test wF1 %.3f macro F1 %.3f VPN %.3f' % scores(yt, fit(x[:, kt], y, p).predict(
                    xgb.DMatrix(xt[:, kt])))
            print(line + '  %.0f s' % (time.time() - t0), flush=True)


def coarse_rows(x, spec):
    """The flow rows with coarser inputs (spec: '+'-joined, 'none' for the rows
    as they are): qB sizes in bins of B bytes, log sizes in quarter-octave bins
    (the IP and UDP length fields, which repeat the size exactly, are zeroed in
    both), pK the payload bytes of the first K packets only."""
    B = x.reshape(len(x), N, -1).copy()
    for s in spec.split('+'):
        if s == 'none':
            continue
        if s[0] == 'p':
            B[:, int(s[1:]):, 44:] = 0
            continue
        n = B[:, :, 2] * 1500
        n = 2 ** (np.round(np.log2(np.maximum(n, 1)) * 4) / 4) if s == 'log' else np.ceil(n / int(s[1:])) * int(s[1:])
        B[:, :, 2] = np.where(B[:, :, 0] > 0, n, 0) / 1500
        B[:, :, [6, 7, 28, 29]] = 0  # IPv4 total length, UDP length (TCP's bytes there are masked)
    return B.reshape(len(x), -1)


def family_probs(model, X, y, XS, seed):
    """Probabilities for the rows XS of one model fitted on (X, y): gbt (the
    C GBT's settings), xrf:D:C:K (XGBoost's random forest: one round of K
    trees per class, depth D, eta 1, subsample 0.63, colsample_bynode C),
    rf[:F] / et[:F] (sklearn's random forest / extra trees, 500 trees, a
    share F of the features per split (default: their square root),
    class_weight balanced), dart:R (the GBT as DART,
    rate_drop R, skip_drop 0.5), sub:S (the GBT with subsample S)."""
    kind, *a = model.split(':')
    p = {'seed': seed}
    if kind in ('rf', 'et'):
        from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
        m = (RandomForestClassifier if kind == 'rf' else ExtraTreesClassifier)(
            500, max_features=float(a[0]) if a else 'sqrt', class_weight='balanced', n_jobs=1,
            random_state=seed).fit(X, y)
        P = np.zeros((len(XS), int(y.max() + 1)))
        P[:, m.classes_] = m.predict_proba(XS)
        return P
    if kind == 'xrf':
        p.update(num_parallel_tree=int(a[2]), max_depth=int(a[0]), eta=1, subsample=0.63, colsample_bytree=1,
                 colsample_bynode=float(a[1]))
        return fit(X, y, p, rounds=1).predict(xgb.DMatrix(XS))
    if kind == 'dart':
        p.update(booster='dart', rate_drop=float(a[0]), skip_drop=0.5)
    if kind == 'sub':
        p.update(subsample=float(a[0]))
    return fit(X, y, p).predict(xgb.DMatrix(XS))


def family_study(x, y, val, xt, yt, prefix, variants, seeds='1,2,3'):
    """Model families and coarser inputs, one line per variant and seed
    (validation, then the whole training side scored on the test set), then
    each variant's mean and standard deviation over the seeds. A variant is
    MODEL[@COARSE] (family_probs, coarse_rows); bag:B:MODEL is B fits of
    MODEL averaged (seed s bags the seeds (s-1)B+1 .. sB, so bag:3:gbt with
    seeds 1,2,3 uses the GBT's seeds 1-9). With GBT_STUDY_CACHE set to a
    folder, each single fit's probabilities are kept there and reused."""
    import os
    cache, tag = os.environ.get('GBT_STUDY_CACHE'), os.path.basename(prefix)
    if cache:
        os.makedirs(cache, exist_ok=True)

    def probs(model, spec, seed, side):
        path = cache and '%s/%s-%s@%s-s%d-%s.npy' % (cache, tag, model.replace(':', '_'), spec, seed, side)
        if path and os.path.exists(path):
            return np.load(path)
        X = coarse_rows(x, spec)
        XS = coarse_rows(xt, spec) if side == 'test' else X[val]
        P = family_probs(model, *((X, y) if side == 'test' else (X[~val], y[~val])), XS, seed)
        if path:
            np.save(path, P)
        return P

    res = {}
    for v in variants.split(','):
        name, spec = (v.split('@') + ['none'])[:2]
        bag = name.split(':', 2) if name.startswith('bag:') else None
        for seed in map(int, seeds.split(',')):
            t0, line = time.time(), 'seed %d %-22s' % (seed, v)
            for side, truth in (('val', y[val]), ('test', yt)):
                if side == 'test' and xt is None:
                    continue
                B = int(bag[1]) if bag else 1
                P = np.mean([probs(bag[2], spec, (seed - 1) * B + k + 1, side) for k in range(B)], 0) if bag else \
                    probs(name, spec, seed, side)
                s = scores(truth, P)
                res.setdefault(v, {}).setdefault(side, []).append(s)
                line += ' %s wF1 %.3f macro F1 %.3f VPN %.3f' % ('validation' if side == 'val' else '| test', *s)
            print(line + '  %.0f s' % (time.time() - t0), flush=True)
    ms = lambda v: '%.3f' % v[0] if len(v) == 1 else '%.3f ± %.3f' % (np.mean(v), np.std(v, ddof=1))  # VPN: nan on app
    print('means over seeds %s: variant | validation wF1, macro F1, VPN | test wF1, macro F1, VPN' % seeds)
    for v, r in res.items():
        print('%-22s | %s | %s' % (v, ', '.join(ms([s[k] for s in r['val']]) for k in range(3)),
                                   ', '.join(ms([s[k] for s in r.get('test', [])]) for k in range(3))
                                   if 'test' in r else '-'), flush=True)


def knn_dist(D, k):
    """Per row of the distance matrix D: the mean distance to its k nearest columns."""
    k = min(k, D.shape[1])
    return np.partition(D, k - 1, axis=1)[:, :k].mean(1)


def risk_coverage(y, pr, conf, rng, covs=(0.5, 0.7, 0.9)):
    """The flows ranked by conf (most confident first, ties in random order):
    the area under the risk-coverage curve (the error rate of the k most
    confident flows, averaged over k = 1..n) and the weighted F1 of the most
    confident 50%, 70%, 90%."""
    o = np.lexsort((rng.random(len(y)), -conf))
    err = (pr[o] != y[o]).astype(float)
    aurc = (np.cumsum(err) / np.arange(1, len(y) + 1)).mean()
    return [aurc] + [f1_score(y[o[:k]], pr[o[:k]], average='weighted')
                     for k in (int(np.ceil(c * len(y))) for c in covs)]


def novelty_signals(x, y, xt, P, booster):
    """Per test flow, every signal of novelty_study (higher: more confident),
    and the seconds each took (the kNN ones share the distance matrices)."""
    from scipy.spatial.distance import cdist
    from sklearn.covariance import LedoitWolf
    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest
    sig, secs = {}, {}

    def timed(name, f):
        t0 = time.time()
        sig[name] = f()
        secs[name] = time.time() - t0

    pr, Ps = P.argmax(1), np.sort(P, 1)
    sig['max prob'], sig['margin p1-p2'] = Ps[:, -1], Ps[:, -1] - Ps[:, -2]
    sig['-entropy'] = (P * np.log(np.maximum(P, 1e-12))).sum(1)
    mu, sd = x.mean(0), x.std(0)
    keep = sd > 1e-6  # the features constant in training say nothing
    Z, Zt = (x[:, keep] - mu[keep]) / sd[keep], (xt[:, keep] - mu[keep]) / sd[keep]
    t0 = time.time()
    D2, D1 = cdist(Zt, Z), cdist(Zt, Z, 'cityblock')
    t_dist = time.time() - t0
    for k in (1, 5):
        sig['-kNN L2 k=%d' % k], sig['-kNN L1 k=%d' % k] = -knn_dist(D2, k), -knn_dist(D1, k)
    secs['kNN distance matrices (L1, L2)'] = t_dist
    own = np.zeros(len(xt))  # the predicted class's training flows only
    other = np.zeros(len(xt))  # the other classes' (trust score: other / own)
    for c in np.unique(pr):
        m = pr == c
        own[m], other[m] = knn_dist(D2[m][:, y == c], 5), knn_dist(D2[m][:, y != c], 5)
    sig['-kNN L2 k=5, predicted class'], sig['trust (other / predicted class)'] = -own, other / np.maximum(own, 1e-9)
    timed('IsolationForest', lambda: IsolationForest(n_estimators=200, random_state=1).fit(Z).score_samples(Zt))

    def mahalanobis():  # PCA to 50 dimensions, one shrunk covariance, the predicted class's mean
        pca = PCA(50, random_state=1).fit(Z)
        A, At = pca.transform(Z), pca.transform(Zt)
        means = np.stack([A[y == c].mean(0) if (y == c).any() else np.full(A.shape[1], 1e9)
                          for c in range(P.shape[1])])
        prec = LedoitWolf().fit(A - means[y]).precision_
        d = At - means[pr]
        return -np.einsum('ij,jk,ik->i', d, prec, d)
    timed('-Mahalanobis (PCA 50), predicted class', mahalanobis)

    def leaf_similarity():  # share of the trees in which two flows share a leaf; the 5 most alike training flows
        from scipy.sparse import csr_matrix
        L, Lt = (booster.predict(xgb.DMatrix(a), pred_leaf=True).astype(np.int64) for a in (x, xt))
        width = np.maximum(L.max(0), Lt.max(0)) + 1
        off = np.concatenate([[0], np.cumsum(width)[:-1]])
        hot = lambda M: csr_matrix((np.ones(M.size, np.float32), (np.repeat(np.arange(len(M)), M.shape[1]),
                                                                    (M + off).ravel())), (len(M), width.sum()))
        H = hot(L)
        S, Str = (hot(Lt) @ H.T).toarray() / L.shape[1], (H @ H.T).toarray() / L.shape[1]
        np.fill_diagonal(Str, -np.inf)  # leave one out
        return -knn_dist(1 - S, 5), np.sort(-knn_dist(1 - Str, 5))
    t0 = time.time()
    sig['leaf similarity (XGBoost, k=5)'], ref_leaf = leaf_similarity()
    secs['leaf similarity (XGBoost, k=5)'] = time.time() - t0
    # combinations: max prob x the novelty's percentile among the training flows' own (leave one out: the
    # share of training flows less typical than the test flow), as a model could store it
    Dtr = cdist(Z, Z)
    np.fill_diagonal(Dtr, np.inf)
    ref = np.sort(-knn_dist(Dtr, 5))
    pct = lambda s, r: np.searchsorted(r, s, 'right') / len(r)
    sig['max prob x kNN L2 k=5 percentile'] = Ps[:, -1] * pct(sig['-kNN L2 k=5'], ref)
    sig['min(max prob, kNN L2 k=5 percentile)'] = np.minimum(Ps[:, -1], pct(sig['-kNN L2 k=5'], ref))
    sig['max prob x leaf-similarity percentile'] = Ps[:, -1] * pct(sig['leaf similarity (XGBoost, k=5)'], ref_leaf)
    return sig, secs, ref, pct


def novelty_study(x, y, xt, yt, seeds='1,2,3'):
    """Which signal says a test flow is new: for the GBT's verdicts (fitted on
    the whole training side, the C GBT's settings, one fit per seed), each
    signal ranks the test flows from most to least confident; scored by the
    area under the risk-coverage curve (AURC, risk = error rate, lower is
    better) and the weighted F1 of the most confident 50/70/90%. Reference
    rows: random order (AURC = the error rate) and the oracle (errors last).
    Every signal uses the training rows and the test flow's row only, never a
    test label. Means ± standard deviation over the seeds."""
    res, allf = {}, []
    for seed in map(int, seeds.split(',')):
        t0 = time.time()
        booster = fit(x, y, {'seed': seed, 'num_class': int(max(y.max(), yt.max()) + 1)})
        P = booster.predict(xgb.DMatrix(xt))
        t_fit = time.time() - t0
        pr = P.argmax(1)
        sig, secs, ref, pct = novelty_signals(x, y, xt, P, booster)
        rng = np.random.default_rng(seed)
        allf.append((1 - (pr == yt).mean(), f1_score(yt, pr, average='weighted')))
        res.setdefault('(random order)', []).append(risk_coverage(yt, pr, rng.random(len(yt)), rng))
        res.setdefault('(oracle: errors last)', []).append(risk_coverage(yt, pr, (pr == yt).astype(float), rng))
        for name, s in sig.items():
            res.setdefault(name, []).append(risk_coverage(yt, pr, s, rng))
        # a novelty threshold as the model could store it: the training flows' own 5-NN distance percentile
        for q in (0.01, 0.05):
            new = pct(sig['-kNN L2 k=5'], ref) < q
            res.setdefault('kNN L2 k=5 below training %d%%: flows flagged' % (100 * q), []).append(
                [new.mean(), (pr[new] != yt[new]).mean() if new.any() else float('nan'),
                 (pr[~new] != yt[~new]).mean(), float('nan')])
        print('seed %d: fit %.0f s, error rate %.3f, wF1 %.3f, %s' % (
            seed, t_fit, (pr != yt).mean(), f1_score(yt, pr, average='weighted'),
            ', '.join('%s %.1f s' % (k, v) for k, v in secs.items())), flush=True)
    ms = lambda v: '%.3f' % v[0] if len(v) == 1 else '%.3f ± %.3f' % (np.mean(v), np.std(v, ddof=1))
    a = np.array(allf)
    print('%d training flows, %d test flows, seeds %s: all flows kept, error rate %s, wF1 %s' % (
        len(y), len(yt), seeds, ms(a[:, 0]), ms(a[:, 1])))
    print('| signal | AURC | wF1 at 50% | wF1 at 70% | wF1 at 90% |')
    print('|---|---:|---:|---:|---:|')
    for name, r in res.items():
        if 'flagged' in name:
            continue
        r = np.array(r)
        print('| %s | %s |' % (name, ' | '.join(ms(r[:, i]) for i in range(4))))
    print('| novelty threshold | share of test flows flagged | their error rate | error rate of the rest |')
    print('|---|---:|---:|---:|')
    for name, r in res.items():
        if 'flagged' in name:
            r = np.array(r)
            print('| %s | %s |' % (name.replace(': flows flagged', ''), ' | '.join(ms(r[:, i]) for i in range(3))))


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
    xt = yt = raw_t = None
    if len(sys.argv) > 3 and sys.argv[3] != '-':  # '-': no test set (validation only)
        xt, yt = np.load(sys.argv[3] + '.x.npy'), np.load(sys.argv[3] + '.y.npy').astype(int)
        if study not in ('rows', 'allpackets', 'forest', 'bagging', 'coarse', 'dart', 'recency', 'stack', 'ceiling',
                         'selftrain', 'drift', 'continue', 'novelty'):
            raw_t = np.load(sys.argv[3] + '.raw.npy', mmap_mode='r').reshape(-1, N, 1500)
    if study == 'vpn':
        return vpn_study(x, y, val, xt, yt)
    if study == 'ceiling':
        return ceiling_study(x, y, xt, yt)
    if study == 'continue':
        return continue_study(x, y, xt, yt)
    if study == 'novelty':
        return novelty_study(x, y, xt, yt, *sys.argv[4:5])
    if study == 'selftrain':
        return selftrain_study(x, y, val, xt, yt, *sys.argv[4:6])
    if study == 'stack':
        return stack_study(x, y, val, xt, yt, prefix, sys.argv[3], sys.argv[4])
    families = {'forest': 'gbt,xrf:12:0.1:100,rf,et', 'bagging': 'bag:3:gbt,bag:3:gbt@q32+p2',
                'coarse': 'gbt@q16,gbt@q32,gbt@log,gbt@p2', 'dart': 'dart:0.1'}
    if study in families:
        v = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] != '-' else families[study]
        return family_study(x, y, val, xt, yt, prefix, v, *sys.argv[5:6])
    if study == 'drift':
        return drift_study(x, y, val, xt, yt, f, t, *sys.argv[4:6])
    if study == 'recency':
        return recency_study(x, y, val, xt, yt, f, t, *sys.argv[4:6])
    if study == 'allpackets':
        return allpackets_study(x, y, val, xt, yt, *sys.argv[4:8])
    if study == 'errors':
        return errors_study(x, y, xt, yt, sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else None)
    if study == 'rows':
        t0 = time.time()
        line = 'validation wF1 %.3f macro F1 %.3f VPN %.3f' % scores(y[val], fit(x[~val], y[~val]).predict(
            xgb.DMatrix(x[val])))
        if xt is not None:
            line += ' | test wF1 %.3f macro F1 %.3f VPN %.3f' % scores(yt, fit(x, y).predict(xgb.DMatrix(xt)))
        print(line + '  %d features  %.0f s' % (x.shape[1], time.time() - t0), flush=True)
        return
    if study == 'tls':
        raw = np.load(prefix + '.raw.npy', mmap_mode='r').reshape(-1, N, 1500)
        for which in ('none', 'sni', 'bytes', 'ja3'):
            t0 = time.time()
            add = lambda r: np.zeros((len(r), 0), np.float32) if which == 'none' else tls_features(r, which)
            X = np.concatenate([x, add(raw)], 1)
            line = '+ %-5s validation wF1 %.3f macro F1 %.3f VPN %.3f' % (which, *scores(y[val], fit(
                X[~val], y[~val]).predict(xgb.DMatrix(X[val]))))
            if xt is not None:
                line += ' | test wF1 %.3f macro F1 %.3f VPN %.3f' % scores(yt, fit(X, y).predict(
                    xgb.DMatrix(np.concatenate([xt, add(raw_t)], 1))))
            print(line + '  %.0f s' % (time.time() - t0), flush=True)
        return
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
