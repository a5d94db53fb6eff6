"""What the wine_sklearn steps share: reading the split the prepare step wrote."""

import csv
import json
import os

import numpy as np


def load_split(dataset, part):
    """(X, y, meta) of dataset/<part>.csv: features in meta["features"] order, labels as str."""
    with open(os.path.join(dataset, "meta.json"), encoding="utf-8") as f:
        meta = json.load(f)
    with open(os.path.join(dataset, part + ".csv"), newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    x = np.array([[float(r[c]) for c in meta["features"]] for r in rows])
    y = np.array([r[meta["target"]] for r in rows])
    return x, y, meta
