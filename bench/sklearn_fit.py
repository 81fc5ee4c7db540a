"""scikit-learn side of bench/train-vs-sklearn.ts.

Usage: python3 bench/sklearn_fit.py SPLIT.json [SPLIT.json ...]
Each file holds {"name", "task", "xTrain", "yTrain", "xTest", "yTest"} (null = missing value), the
exact split the TypeScript side trains on. Fits RandomForest (100 trees, n_jobs=$SK_N_JOBS, default 2) and
HistGradientBoosting (library defaults) and prints one JSON array of
{"dataset", "algorithm", "score", "fitSeconds", "cpuSeconds"} (score = accuracy or R2 on the test rows;
cpuSeconds = process CPU time of the fit, all threads, which stays meaningful on a busy machine).
"""
import json
import os
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


def load(path):
    with open(path) as f:
        d = json.load(f)
    as_float = lambda rows: np.array(rows, dtype=np.float64)
    return d["name"], d["task"], as_float(d["xTrain"]), as_float(d["yTrain"]), as_float(d["xTest"]), as_float(d["yTest"])


def main():
    results = []
    for path in sys.argv[1:]:
        name, task, xtr, ytr, xte, yte = load(path)
        cls = task == "classification"
        models = {
            "random_forest": (RandomForestClassifier if cls else RandomForestRegressor)(
                n_estimators=100, n_jobs=int(os.environ.get("SK_N_JOBS", "2")), random_state=0
            ),
            "hist_gradient_boosting": (HistGradientBoostingClassifier if cls else HistGradientBoostingRegressor)(
                random_state=0
            ),
        }
        for algo, model in models.items():
            t0 = time.perf_counter()
            c0 = time.process_time()
            model.fit(xtr, ytr)
            fit_s = time.perf_counter() - t0
            cpu_s = time.process_time() - c0
            pred = model.predict(xte)
            score = accuracy_score(yte, pred) if cls else r2_score(yte, pred)
            results.append({"dataset": name, "algorithm": algo, "score": float(score), "fitSeconds": fit_s, "cpuSeconds": cpu_s,
                            "sklearn": sklearn.__version__})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
