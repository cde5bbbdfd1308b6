#!/usr/bin/python3
"""Independent oracle for `deeppacket test` reports (scikit-learn + numpy).

    check_report.py REPORT_DIR TEST_DIR [TRAIN_DIR|- [N [TASK]]]

REPORT_DIR: a report of `deeppacket test --save-logprobs` (with
`--train-set TRAIN_DIR --dup-packets N` when TRAIN_DIR is given); TEST_DIR:
the split or dataset folder it tested; TASK (app|traffic) defaults to the
report's. Recomputes from logprobs.npy / flows.npy and the test set's
labels and meta.npy: predictions, the confusion matrix, per-class
precision/recall/f1/support (sklearn, zero_division=0, labels = classes
with support or predictions), macro/weighted averages, accuracy, VPN vs
non-VPN accuracy, per-flow votes (summed log-probabilities; majority label)
or a flow model's verdicts (first packet's label), label conflicts, the
verdicts by probability threshold (coverage), missing
classes (by name), the scores without duplicate first-N size/direction
sequences; and checks report.md, report.html and confusion.csv against
report.json. Prints the mismatches and exits 1, or 0 when all agree.
Exits 0 with "SKIP" when numpy or scikit-learn is missing, or when a
folder named on the command line does not exist (e.g. no ../shared).
`make check` runs it on test_eval's and test_flowtrain's reports; see
docs/report-format.md.
"""
import os
import sys

if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    missing = [d for d in sys.argv[1:4] if d != '-' and not os.path.isdir(d)]
    if missing:
        print("SKIP: no folder", missing[0])
        sys.exit(0)
    try:
        import numpy  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as e:
        print("SKIP:", e)
        sys.exit(0)
import csv
import html
import json
import re
import numpy as np
from sklearn.metrics import (confusion_matrix, precision_recall_fscore_support,
                             accuracy_score, f1_score)

def load_set(d, task=None):
    """labels, meta, vectors, class names of a split folder or dataset folder"""
    if os.path.exists(os.path.join(d, 'labels.npy')):
        y = np.load(os.path.join(d, 'labels.npy')).astype(np.int64)
        names = [l.rstrip('\n').split('\t', 1)[1] for l in open(os.path.join(d, 'classes.tsv')) if l.strip()]
        meta = np.load(os.path.join(d, 'meta.npy')) if os.path.exists(os.path.join(d, 'meta.npy')) else None
        vec = np.load(os.path.join(d, 'vectors.npy'), mmap_mode='r')
        return y, meta, vec, names, None
    y = np.load(os.path.join(d, task + '.npy')).astype(np.int64)
    rows = np.nonzero(y >= 0)[0]
    meta = np.load(os.path.join(d, 'meta.npy'))[rows]
    vec = np.load(os.path.join(d, 'vectors.npy'), mmap_mode='r')
    return y[rows], meta, vec, None, rows

errs = []
def chk(what, got, want, tol=1e-12):
    if isinstance(want, (float, np.floating)):
        if got is None or abs(got - want) > tol:
            errs.append(f'{what}: report {got!r}, oracle {want!r}')
    elif got != want:
        errs.append(f'{what}: report {got!r}, oracle {want!r}')

def metrics(y, p, C):
    listed = sorted(set(np.unique(y).tolist()) | set(np.unique(p).tolist()))
    return listed

def check_eval(rep, y, p, names, tag):
    C = len(rep['classes'])
    chk(tag + ' nclasses', rep['nclasses'], C)
    cm = confusion_matrix(y, p, labels=list(range(C)))
    chk(tag + ' confusion', rep['confusion'], cm.tolist())
    chk(tag + ' n', rep['n'], len(y))
    chk(tag + ' correct', rep['correct'], int((y == p).sum()))
    if len(y):
        chk(tag + ' accuracy', rep['accuracy'], accuracy_score(y, p))
    listed = metrics(y, p, C)
    chk(tag + ' nlisted', rep['nlisted'], len(listed))
    if len(y) == 0:
        return
    P, R, F, S = precision_recall_fscore_support(y, p, labels=listed, zero_division=0)
    for i, c in enumerate(listed):
        k = rep['classes'][c]
        chk(f'{tag} class {c} precision', k['precision'], float(P[i]))
        chk(f'{tag} class {c} recall', k['recall'], float(R[i]))
        chk(f'{tag} class {c} f1', k['f1'], float(F[i]))
        chk(f'{tag} class {c} support', k['support'], int(S[i]))
        chk(f'{tag} class {c} listed', k['listed'], True)
    for c in range(C):
        if c not in listed:
            chk(f'{tag} class {c} listed', rep['classes'][c]['listed'], False)
    for avg, key in (('macro', 'macro_avg'), ('weighted', 'weighted_avg')):
        P, R, F, _ = precision_recall_fscore_support(y, p, labels=listed, average=avg, zero_division=0)
        chk(f'{tag} {key} precision', rep[key]['precision'], float(P))
        chk(f'{tag} {key} recall', rep[key]['recall'], float(R))
        chk(f'{tag} {key} f1', rep[key]['f1'], float(F))
        chk(f'{tag} {key} support', rep[key]['support'], len(y))
    if names:
        chk(tag + ' names', [k['name'] for k in rep['classes']], names)
    nm = [k['name'] for k in rep['classes']]
    isv = np.array([n.startswith('VPN') for n in nm])
    if isv.any() and not isv.all():
        chk(tag + ' vpn_accuracy', rep['vpn_accuracy'], accuracy_score(isv[y], isv[p]))
    else:
        chk(tag + ' vpn_accuracy', rep['vpn_accuracy'], None)

def dedup_eval(rep, y, p, tag):
    d = rep['without_duplicates']
    if d is None:
        return
    chk(tag + ' dedup n', d['n'], len(y))
    if not len(y):
        for k in ('accuracy', 'weighted_f1', 'macro_f1'):
            chk(tag + ' dedup ' + k + ' (no sample: undefined)', d[k], None)
    if len(y):
        listed = metrics(y, p, 0)
        chk(tag + ' dedup accuracy', d['accuracy'], accuracy_score(y, p))
        chk(tag + ' dedup weighted_f1', d['weighted_f1'], float(f1_score(y, p, labels=listed, average='weighted', zero_division=0)))
        chk(tag + ' dedup macro_f1', d['macro_f1'], float(f1_score(y, p, labels=listed, average='macro', zero_division=0)))

def check_coverage(rep, y, p, prob, tag):
    """The verdicts by probability: for each threshold, the samples whose
    verdict probability (float32, as the report computes it) is at least it."""
    cov = rep['coverage']
    want = [0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99]
    chk(tag + ' coverage thresholds', [r['min_prob'] for r in cov], want)
    prob = np.asarray(prob, dtype=np.float32)
    for r in cov:
        keep = prob >= r['min_prob']
        n = int(keep.sum())
        t = f"{tag} coverage {r['min_prob']}"
        chk(t + ' kept', r['kept'], n)
        chk(t + ' coverage', r['coverage'], n / len(y) if len(y) else 0.0)
        if not n:
            for k in ('accuracy', 'weighted_f1', 'macro_f1'):
                chk(t + ' ' + k + ' (none kept: undefined)', r[k], None)
            continue
        yk, pk = y[keep], p[keep]
        listed = metrics(yk, pk, 0)
        chk(t + ' accuracy', r['accuracy'], accuracy_score(yk, pk))
        chk(t + ' weighted_f1', r['weighted_f1'], float(f1_score(yk, pk, labels=listed, average='weighted', zero_division=0)))
        chk(t + ' macro_f1', r['macro_f1'], float(f1_score(yk, pk, labels=listed, average='macro', zero_division=0)))

def softmax_top(lp):
    """each row's best probability: 1 / sum(exp(lp - max)), in float64"""
    lp = np.asarray(lp, dtype=np.float64)
    return 1.0 / np.exp(lp - lp.max(1, keepdims=True)).sum(1)

def seqs(meta, vec, rows, N):
    """flow id -> tuple of first-N (size, dir)"""
    out = {}
    first = {}
    for i in range(len(meta)):
        m = meta[i]
        f = int(m['flow'])
        s = out.setdefault(f, [])
        if f not in first:
            first[f] = (int(m['ipver']), int(m['sport']), bytes(m['saddr']))
        if len(s) >= N:
            continue
        v = vec[rows[i] if rows is not None else i]
        ver = v[0] >> 4
        size = (int(v[2]) << 8 | int(v[3])) if ver == 4 else ((int(v[4]) << 8 | int(v[5])) + 40 if ver == 6 else 0)
        dr = first[f] == (int(m['ipver']), int(m['sport']), bytes(m['saddr']))
        s.append((size, int(dr)))
    return {f: tuple(s) for f, s in out.items()}

def oracle_main():
    rdir, tdir = sys.argv[1], sys.argv[2]
    trdir = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != '-' else None
    N = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    task = sys.argv[5] if len(sys.argv) > 5 else None
    pj = os.path.join(rdir, 'report.json')
    fj = os.path.join(rdir, 'flow_report.json')
    frep = json.load(open(fj)) if os.path.exists(fj) else None
    prep = json.load(open(pj)) if os.path.exists(pj) else None
    task = task or (prep or frep)['task']
    y, meta, vec, names, rows = load_set(tdir, task)
    C = (prep or frep)['nclasses']
    # label mapping by name for dataset folders / subset: the report's class names
    if names is not None:
        rn = [k['name'] for k in (prep or frep)['classes']]
        m = {i: rn.index(n) for i, n in enumerate(names) if n in rn}
        y = np.array([m[v] for v in y])
        names = None
    else:
        lt = [l.rstrip('\n').split('\t') for l in open(os.path.join(tdir, 'labels.tsv'))]
        hdr = lt[0]
        idc, nc = hdr.index(task + '_id'), hdr.index(task + '_name')
        dsn = {}
        for r in lt[1:]:
            if len(r) > nc and r[idc] != '':
                dsn[int(r[idc])] = r[nc]
        rn = [k['name'] for k in (prep or frep)['classes']]
        y = np.array([rn.index(dsn[v]) for v in y])
    present = set(np.unique(y).tolist())
    rn = [k['name'] for k in (prep or frep)['classes']]
    missing = [rn[c] for c in range(C) if c not in present and rn[c]]
    dups = None
    if trdir:
        yt, mt, vt, _, rt = load_set(trdir, task)
        trs = set(seqs(mt, vt, rt, N).values())
        tes = seqs(meta, vec, rows, N)
        dups = {f for f, s in tes.items() if s in trs}
        print(f'oracle: {len(dups)} of {len(tes)} test flows are duplicates')
    if prep:
        lp = np.load(os.path.join(rdir, 'logprobs.npy'))
        p = lp.argmax(1)
        chk('predictions.npy', np.load(os.path.join(rdir, 'predictions.npy')).tolist(), p.tolist())
        check_eval(prep, y, p, names, 'packet')
        check_coverage(prep, y, p, np.exp(lp.max(1)), 'packet')
        chk('packet missing', prep['missing_classes'], missing)
        if dups is not None:
            keep = np.array([int(f) not in dups for f in meta['flow']])
            d = prep['without_duplicates']
            chk('packet dedup dropped', d['dropped_flows'], len(dups))
            chk('packet dedup test_flows', d['test_flows'], len(set(meta['flow'].tolist())))
            dedup_eval(prep, y[keep], p[keep], 'packet')
        if frep:
            fl = meta['flow']
            ids, inv = np.unique(fl, return_inverse=True)
            sums = np.zeros((len(ids), C))
            np.add.at(sums, inv, lp.astype(np.float64))
            fp = sums.argmax(1)
            ft = np.array([np.bincount(y[inv == k], minlength=C).argmax() for k in range(len(ids))])
            conf = sum(len(np.unique(y[inv == k])) > 1 for k in range(len(ids)))
            chk('flow label_conflicts', frep['label_conflicts'], int(conf))
            chk('flow packets', frep['packets'], len(y))
            fr = np.load(os.path.join(rdir, 'flows.npy'))
            chk('flows.npy ids', fr['flow'].tolist(), ids.tolist())
            chk('flows.npy label', fr['label'].tolist(), ft.tolist())
            chk('flows.npy pred', fr['pred'].tolist(), fp.tolist())
            chk('flows.npy packets', fr['packets'].tolist(), np.bincount(inv).tolist())
            check_eval(frep, ft, fp, names, 'flow')
            check_coverage(frep, ft, fp, softmax_top(sums / np.bincount(inv)[:, None]), 'flow')
            chk('flow missing', frep['missing_classes'], missing)
            if dups is not None:
                keep = np.array([int(f) not in dups for f in ids])
                dedup_eval(frep, ft[keep], fp[keep], 'flow')
    elif frep:  # flow model
        fr = np.load(os.path.join(rdir, 'flows.npy'))
        flp = os.path.join(rdir, 'flow_logprobs.npy')
        fl = meta['flow']
        ids, first, cnt = np.unique(fl, return_index=True, return_counts=True)
        chk('flows.npy ids', fr['flow'].tolist(), ids.tolist())
        chk('flows.npy label (first packet)', fr['label'].tolist(), y[first].tolist())
        chk('flows.npy packets', fr['packets'].tolist(), cnt.tolist())
        if os.path.exists(flp):
            chk('flows.npy pred vs flow_logprobs', fr['pred'].tolist(), np.load(flp).argmax(1).tolist())
        ft, fp = y[first], fr['pred'].astype(np.int64)
        _, inv = np.unique(fl, return_inverse=True)
        conf = sum(len(np.unique(y[inv == k])) > 1 for k in range(len(ids)))
        chk('flow label_conflicts', frep['label_conflicts'], int(conf))
        check_eval(frep, ft, fp, names, 'flowmodel')
        if os.path.exists(flp):
            check_coverage(frep, ft, fp, softmax_top(np.load(flp)), 'flowmodel')
        chk('flow packets', frep['packets'], len(y))
        chk('flow missing', frep['missing_classes'], missing)
        if dups is not None:
            keep = np.array([int(f) not in dups for f in ids])
            d = frep['without_duplicates']
            chk('flow dedup dropped', d['dropped_flows'], len(dups))
            dedup_eval(frep, ft[keep], fp[keep], 'flowmodel')
    return rdir




def f4(x):
    return '%.4f' % x


def tables_main(rdir):
    """report.md, report.html and confusion.csv against report.json"""
    for pre in ('', 'flow_'):
        jp = os.path.join(rdir, pre + 'report.json')
        if not os.path.exists(jp): continue
        j = json.load(open(jp))
        md = open(os.path.join(rdir, pre + 'report.md')).read().splitlines()
        cut = next((i for i, l in enumerate(md) if l.startswith('verdicts by probability')), len(md))
        rows = [l for l in md[:cut] if l.startswith('| ') and not l.startswith('| label')]
        listed = [k for k in j['classes'] if k['listed']]
        chk(pre+'md rows', len(rows), len(listed) + 1)
        def cells(l):
            parts = re.split(r'(?<!\\)\|', l)[1:-1]
            return [p.strip().replace('\\|', '|') for p in parts]
        for k, l in zip(listed, rows):
            c = cells(l)
            chk(pre+'md '+k['name'], c, [k['name'], f4(k['recall']), f4(k['precision']), f4(k['f1']), str(k['support'])])
        w = j['weighted_avg']
        chk(pre+'md wtd', cells(rows[-1]), ['Wtd. Average', f4(w['recall']), f4(w['precision']), f4(w['f1']), str(w['support'])])
        txt = '\n'.join(md)
        unit = 'flows' if j['level'] == 'flow' else 'packets'
        chk(pre+'md acc', f"accuracy: {f4(j['accuracy'])} ({j['correct']} of {j['n']} {unit})" in txt, True)
        m = j['macro_avg']
        chk(pre+'md macro', f"macro average: recall {f4(m['recall'])}, precision {f4(m['precision'])}, f1-score {f4(m['f1'])} ({j['nlisted']} classes)" in txt, True)
        if j['vpn_accuracy'] is not None:
            chk(pre+'md vpn', f"VPN vs non-VPN accuracy: {f4(j['vpn_accuracy'])}" in txt, True)
        d = j['without_duplicates']
        if d:
            tail = (f"on the other {d['n']} {unit}: accuracy {f4(d['accuracy'])}, weighted f1-score {f4(d['weighted_f1'])}, macro f1-score {f4(d['macro_f1'])}"
                    if d['n'] else f"no {unit} left to score")
            s = f"without duplicate sequences: {d['dropped_flows']} of {d['test_flows']} test flows dropped (first {d['sequence_packets']} packets' sizes and directions occur in {d['train_set']}); " + tail
            chk(pre+'md dedup', s in txt, True)
        if j['missing_classes']:
            chk(pre+'md missing', f"not in the test set ({len(j['missing_classes'])} of the model's classes): " + ', '.join(j['missing_classes']) in txt, True)
        if j.get('label_conflicts'):
            chk(pre+'md conflicts', f"({j['label_conflicts']} flows hold packets of more than one label:" in txt, True)
        cov = j['coverage']
        def cov_cells(r):
            if not r['kept']:
                return ['%.2f' % r['min_prob'], '0', f4(r['coverage']), '-', '-', '-']
            return ['%.2f' % r['min_prob'], str(r['kept']), f4(r['coverage']), f4(r['accuracy']), f4(r['weighted_f1']), f4(r['macro_f1'])]
        crow = [cells(l) for l in md[cut:] if l.startswith('| ') and not l.startswith('| min prob')]
        chk(pre+'md coverage', crow, [cov_cells(r) for r in cov])
        # csv
        r = list(csv.reader(open(os.path.join(rdir, pre + 'confusion.csv'))))
        chk(pre+'csv header', r[0][1:], [k['name'] for k in j['classes']])
        chk(pre+'csv', [[int(x) for x in row[1:]] for row in r[1:]], j['confusion'])
        # html
        h = open(os.path.join(rdir, 'report.html')).read()
        sec = re.search(r'<section id="%s-level">(.*?)</section>' % j['level'], h, re.S).group(1)
        sc = re.search(r'<table class="scores">(.*?)</table>', sec, re.S).group(1)
        trs = re.findall(r'<tr[^>]*><td>(.*?)</td><td class="n">(.*?)</td><td class="n">(.*?)</td><td class="n">(.*?)</td><td class="n">(.*?)</td></tr>', sc)
        trs = [[html.unescape(x) for x in t] for t in trs]
        chk(pre+'html rows', len(trs), len(listed) + 2)
        ct = re.search(r'<table class="coverage">(.*?)</table>', sec, re.S).group(1)
        ctr = re.findall(r'<tr>' + '<td class="n">(.*?)</td>' * 6 + '</tr>', ct)
        chk(pre+'html coverage', [list(t) for t in ctr], [cov_cells(r) for r in cov])
        for k, t in zip(listed, trs):
            chk(pre+'html '+k['name'], t, [k['name'], f4(k['recall']), f4(k['precision']), f4(k['f1']), str(k['support'])])
        chk(pre+'html macro', trs[-2], ['Macro Average', f4(m['recall']), f4(m['precision']), f4(m['f1']), str(m['support'])])
        chk(pre+'html wtd', trs[-1], ['Wtd. Average', f4(w['recall']), f4(w['precision']), f4(w['f1']), str(w['support'])])
        cf = re.search(r'<table class="confusion">(.*?)</table>', sec, re.S).group(1)
        body = cf.split('<tbody>')[1]
        hr = [[int(x) for x in re.findall(r'<td class="n[^"]*">(\d+)</td>', tr)] for tr in re.findall(r'<tr>(.*?)</tr>', body)]
        ids = [k['id'] for k in listed]
        chk(pre+'html confusion', hr, [[j['confusion'][a][b] for b in ids] for a in ids])
        facts = dict((html.unescape(a), html.unescape(b)) for a, b in re.findall(r'<tr><th>(.*?)</th><td>(.*?)</td></tr>', sec))
        chk(pre+'html acc', facts.get('accuracy'), f"{f4(j['accuracy'])} ({j['correct']} of {j['n']})")
        chk(pre+'html wf1', facts.get('weighted f1-score'), f4(w['f1']))
        chk(pre+'html mf1', facts.get('macro f1-score'), f"{f4(m['f1'])} ({j['nlisted']} classes)")
        if j['vpn_accuracy'] is not None:
            chk(pre+'html vpn', facts.get('VPN vs non-VPN accuracy'), f4(j['vpn_accuracy']))
        if d:
            s = (f"on the other {d['n']} {unit}: accuracy {f4(d['accuracy'])}, weighted f1-score {f4(d['weighted_f1'])}, macro f1-score {f4(d['macro_f1'])}"
                 if d['n'] else f"no {unit} left to score")
            chk(pre+'html dedup', s in sec, True)
            chk(pre+'html dedup2', f"{d['dropped_flows']} of {d['test_flows']} test flows dropped" in sec, True)
        ev = facts.get('evaluated')
        chk(pre+'html evaluated', ev, f"{j['n']} {unit}" + (f" ({j['packets']} packets)" if j.get('packets') else ''))


if __name__ == "__main__":
    rdir = oracle_main()
    tables_main(rdir)
    for e in errs[:40]:
        print('MISMATCH', e)
    print(f'{rdir}: {len(errs)} mismatches')
    sys.exit(1 if errs else 0)
