"""Serves a wine_sklearn model folder: predict(rows) for `sluice serve` (python.predict).

Copied into each model folder by the train step; loads model.pkl from beside itself."""

import json
import math
import os
import pickle

import numpy as np
from sluice import BadRequest

_HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(_HERE, "model.pkl"), "rb") as _f:
    _MODEL = pickle.load(_f)
with open(os.path.join(_HERE, "sluice-model.json"), encoding="utf-8") as _f:
    _FEATURES = json.load(_f)["features"]
_KNOWN = set(_FEATURES)
_CLASSES = [str(c) for c in _MODEL.classes_]


def predict(rows):
    x = np.empty((len(rows), len(_FEATURES)))
    for r, row in enumerate(rows):
        for name in row:
            if name not in _KNOWN and name != "cultivar":
                raise BadRequest(f'row {r}: unknown column "{name}"')
        for c, name in enumerate(_FEATURES):
            if name not in row:
                raise BadRequest(f'row {r}: column "{name}" is missing')
            value = row[name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not math.isfinite(value):
                raise BadRequest(f'row {r}: column "{name}" must be a number, not {value!r}')
            x[r, c] = value
    probabilities = _MODEL.predict_proba(x)
    return {"classes": _CLASSES,
            "predictions": [_CLASSES[i] for i in probabilities.argmax(axis=1)],
            "probabilities": probabilities.tolist()}
