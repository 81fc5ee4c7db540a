"""scikit-learn side of bench/train-vs-sklearn.ts: one (dataset, algorithm) row per process, so that
the process's peak RSS (VmHWM) belongs to that row alone.

Usage: python3 bench/sklearn_fit.py SPLIT.json ALGORITHM SEEDS
SPLIT.json holds {"name", "task", "cols", "train", "test"}: `train`/`test` are files of float64
rows (cols features then the target; NaN = missing), the exact split the TypeScript side trains on.
ALGORITHM is random_forest (100 trees, n_jobs=$SK_N_JOBS, default 2) or hist_gradient_boosting
(library defaults). Fits once per seed 0..SEEDS-1 and prints one JSON object
{"scores": [...], "fitSeconds": [...], "cpuSeconds": [...], "maxRssMiB" (VmHWM), "sklearn"}
(score = accuracy or R2 on the test rows; cpuSeconds = process CPU time of the fit, all threads).
"""
import json
import os
import resource
import sys
import time

import numpy as np
import sklearn
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.metrics import accuracy_score, r2_score


def peak_rss_mib():
    """VmHWM of this process. Not ru_maxrss: Linux carries that over fork and exec from the parent,
    so a child started by a big bench process would report the parent's size."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    split_file, algo, seeds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    with open(split_file) as f:
        meta = json.load(f)
    cols = meta["cols"] + 1
    train = np.fromfile(meta["train"]).reshape(-1, cols)
    test = np.fromfile(meta["test"]).reshape(-1, cols)
    xtr, ytr, xte, yte = train[:, :-1], train[:, -1], test[:, :-1], test[:, -1]
    cls = meta["task"] == "classification"
    out = {"scores": [], "fitSeconds": [], "cpuSeconds": []}
    for seed in range(seeds):
        if algo == "random_forest":
            model = (RandomForestClassifier if cls else RandomForestRegressor)(
                n_estimators=100, n_jobs=int(os.environ.get("SK_N_JOBS", "2")), random_state=seed
            )
        else:
            model = (HistGradientBoostingClassifier if cls else HistGradientBoostingRegressor)(random_state=seed)
        t0 = time.perf_counter()
        c0 = time.process_time()
        model.fit(xtr, ytr)
        out["fitSeconds"].append(time.perf_counter() - t0)
        out["cpuSeconds"].append(time.process_time() - c0)
        pred = model.predict(xte)
        out["scores"].append(float(accuracy_score(yte, pred) if cls else r2_score(yte, pred)))
        del model
    out["maxRssMiB"] = peak_rss_mib()
    out["sklearn"] = sklearn.__version__
    print(json.dumps(out))


if __name__ == "__main__":
    main()
