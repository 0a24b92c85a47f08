"""Side-by-side reference for bench/eval.ts: scikit-learn, NumPy and SciPy doing the same evaluation work.

Run by bench/eval.ts through bench/lib.ts's PythonWorker (Debian's /usr/bin/python3): one JSON request per line
on stdin, one JSON reply per line on stdout. Loading the data and imports are outside the timings.

  load      {"scores": PATH, "labels": PATH, "n": N, "c": C}   float64 and uint8 [N, C] files
  metrics   roc_auc_score + average_precision_score per class
  delong    DeLong variances per class: the Sun & Xu fast algorithm (as yandexdataschool/roc_comparison), with
            SciPy's rankdata for the midranks instead of that code's Python loop (same numbers, much faster)
  sklearn_bootstrap  {"resamples": B, "seed": S}  per resample: indices drawn with replacement, roc_auc_score per class
  numpy_bootstrap    {"resamples": B, "seed": S}  vectorised: draw counts per resample (bincount), then per class one
            pass over the sorted scores (tie groups by reduceat) for all resamples at once, in chunks
"""
import json
import sys
import time

import numpy as np
import scipy
import scipy.stats
import sklearn
from sklearn.metrics import average_precision_score, roc_auc_score

state = {}


def load(req):
    n, c = req['n'], req['c']
    state['scores'] = np.fromfile(req['scores'], dtype=np.float64).reshape(n, c)
    state['labels'] = np.fromfile(req['labels'], dtype=np.uint8).reshape(n, c)
    return {'versions': {'sklearn': sklearn.__version__, 'numpy': np.__version__, 'scipy': scipy.__version__}}


def metrics(_):
    s, y = state['scores'], state['labels']
    start = time.perf_counter()
    aurocs = [float(roc_auc_score(y[:, j], s[:, j])) for j in range(s.shape[1])]
    aps = [float(average_precision_score(y[:, j], s[:, j])) for j in range(s.shape[1])]
    return {'ms': (time.perf_counter() - start) * 1000, 'aurocs': aurocs, 'aps': aps}


def delong_variance(y, s):
    positives = s[y == 1]
    negatives = s[y == 0]
    m, n = len(positives), len(negatives)
    tx = scipy.stats.rankdata(positives)
    ty = scipy.stats.rankdata(negatives)
    tz = scipy.stats.rankdata(np.concatenate([positives, negatives]))
    auc = tz[:m].sum() / m / n - (m + 1.0) / 2.0 / n
    v01 = (tz[:m] - tx) / n
    v10 = 1.0 - (tz[m:] - ty) / m
    return auc, np.cov(v01) / m + np.cov(v10) / n


def delong(_):
    s, y = state['scores'], state['labels']
    start = time.perf_counter()
    out = [delong_variance(y[:, j], s[:, j]) for j in range(s.shape[1])]
    ms = (time.perf_counter() - start) * 1000
    return {'ms': ms, 'aucs': [float(a) for a, _ in out], 'variances': [float(v) for _, v in out]}


def percentile_interval(values):
    kept = values[~np.isnan(values)]
    return [float(np.percentile(kept, 2.5)), float(np.percentile(kept, 97.5))]


def sklearn_bootstrap(req):
    s, y = state['scores'], state['labels']
    n, c = s.shape
    rng = np.random.default_rng(req['seed'])
    start = time.perf_counter()
    values = np.full((req['resamples'], c), np.nan)
    for r in range(req['resamples']):
        idx = rng.integers(0, n, n)
        ys, ss = y[idx], s[idx]
        for j in range(c):
            if 0 < ys[:, j].sum() < n:
                values[r, j] = roc_auc_score(ys[:, j], ss[:, j])
    ms = (time.perf_counter() - start) * 1000
    return {'ms': ms, 'intervals': [percentile_interval(values[:, j]) for j in range(c)]}


def numpy_bootstrap(req):
    s, y = state['scores'], state['labels']
    n, c = s.shape
    B = req['resamples']
    rng = np.random.default_rng(req['seed'])
    start = time.perf_counter()
    counts = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(B)]).astype(np.float64)
    values = np.empty((B, c))
    for j in range(c):
        order = np.argsort(s[:, j], kind='stable')
        sorted_scores = s[order, j]
        positive = y[order, j] == 1
        starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
        for lo in range(0, B, 100):
            w = counts[lo:lo + 100][:, order]
            group_pos = np.add.reduceat(w * positive, starts, axis=1)
            group_neg = np.add.reduceat(w * ~positive, starts, axis=1)
            neg_below = np.cumsum(group_neg, axis=1) - group_neg
            twice = np.sum(group_pos * (2 * neg_below + group_neg), axis=1)
            p = group_pos.sum(axis=1)
            q = group_neg.sum(axis=1)
            with np.errstate(invalid='ignore', divide='ignore'):
                values[lo:lo + 100, j] = np.where((p > 0) & (q > 0), twice / (2 * p * q), np.nan)
    ms = (time.perf_counter() - start) * 1000
    return {'ms': ms, 'intervals': [percentile_interval(values[:, j]) for j in range(c)]}


OPS = {'load': load, 'metrics': metrics, 'delong': delong, 'sklearn_bootstrap': sklearn_bootstrap, 'numpy_bootstrap': numpy_bootstrap}

for line in sys.stdin:
    request = json.loads(line)
    try:
        reply = OPS[request['op']](request)
    except Exception as error:  # reported to the benchmark, which stops
        reply = {'error': f'{type(error).__name__}: {error}'}
    sys.stdout.write(json.dumps(reply) + '\n')
    sys.stdout.flush()
