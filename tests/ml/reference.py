#!/usr/bin/python3
"""Independent reference figures for the ML pipeline test (tests/ml/ml_pipeline_test.cc).

Reads a dataset folder made by dataprep.csv and the two model folders, and prints JSON:
  logistic: scikit-learn's LogisticRegression (same C, same standardisation, fitted on the
            same training split) scored on the test split by scikit-learn's metrics, and
            the largest difference between its coefficients and Sluice's.
  xgboost:  Sluice's XGBoost model loaded by the XGBoost Python package, scored on the test
            split by scikit-learn's metrics (checks Sluice's predictor and metric code).
Usage: reference.py DATASET_DIR LOGISTIC_MODEL_DIR XGBOOST_MODEL_DIR
"""
import csv
import json
import sys

import numpy as np
import xgboost
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
from sklearn.preprocessing import StandardScaler


def load(path, features, target, classes):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    x = np.array([[float(r[c]) for c in features] for r in rows])
    y = np.array([classes.index(r[target]) for r in rows])
    return x, y


def scores(y, proba, classes):
    out = {
        "accuracy": accuracy_score(y, proba.argmax(axis=1)),
        "f1_macro": f1_score(y, proba.argmax(axis=1), average="macro"),
        "logloss": log_loss(y, proba, labels=list(range(len(classes)))),
    }
    if len(classes) == 2:
        out["auc"] = roc_auc_score(y, proba[:, 1])
    else:
        out["auc"] = roc_auc_score(y, proba, multi_class="ovr", average="macro")
    return out


def main():
    dataset, logistic_dir, xgboost_dir = sys.argv[1:4]
    meta = json.load(open(f"{dataset}/meta.json"))
    features, target, classes = meta["features"], meta["target"], meta["classes"]
    x_train, y_train = load(f"{dataset}/train.csv", features, target, classes)
    x_test, y_test = load(f"{dataset}/test.csv", features, target, classes)
    scaler = StandardScaler().fit(x_train)

    card = json.load(open(f"{logistic_dir}/sluice-model.json"))
    model = LogisticRegression(C=card["params"]["C"], tol=1e-12, max_iter=100000)
    model.fit(scaler.transform(x_train), y_train)
    ours = json.load(open(f"{logistic_dir}/logistic.json"))
    m = ours["m"]
    weights = np.array(ours["weights"]).reshape(len(features), m)
    theirs = model.coef_.T  # features x (1 or classes)
    if m > 1:
        # Softmax weights are defined up to a per-feature constant; centre both.
        weights = weights - weights.mean(axis=1, keepdims=True)
        theirs = theirs - theirs.mean(axis=1, keepdims=True)
    logistic = scores(y_test, model.predict_proba(scaler.transform(x_test)), classes)
    logistic["coef_max_diff"] = float(np.abs(weights - theirs).max())

    booster = xgboost.Booster(model_file=f"{xgboost_dir}/model.json")
    proba = booster.predict(xgboost.DMatrix(scaler.transform(x_test).astype(np.float32)))
    if proba.ndim == 1:
        proba = np.column_stack([1 - proba, proba])
    print(json.dumps({"logistic": logistic, "xgboost": scores(y_test, proba, classes)}))


if __name__ == "__main__":
    main()
