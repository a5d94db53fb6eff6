#!/usr/bin/python3
"""Independent reference figures for dags/wine_sklearn.toml (tests/ml/ml_pipeline_test.cc).

Written apart from the DAG's steps: reads examples/data/wine.csv itself, makes the split the
DAG describes (25% test, stratified by cultivar, seed 42), fits the two models the DAG
names with scikit-learn, and prints their test metrics as JSON, computed by scikit-learn.
Usage: wine_sklearn_reference.py WINE_CSV [SEED]
"""
import csv
import json
import sys

import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def main():
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 42
    with open(sys.argv[1], newline="") as f:
        rows = list(csv.DictReader(f))
    features = [c for c in rows[0] if c != "cultivar"]
    labels = [r["cultivar"] for r in rows]
    train, test = train_test_split(rows, test_size=0.25, random_state=seed, stratify=labels)

    def xy(part):
        return (np.array([[float(r[c]) for c in features] for r in part]),
                np.array([r["cultivar"] for r in part]))

    x_train, y_train = xy(train)
    x_test, y_test = xy(test)
    models = {
        "logistic": make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)),
        "forest": RandomForestClassifier(n_estimators=200, random_state=seed),
    }
    out = {"rows_train": len(train), "rows_test": len(test)}
    for name, model in models.items():
        model.fit(x_train, y_train)
        proba = model.predict_proba(x_test)
        predicted = model.classes_[proba.argmax(axis=1)]
        out[name] = {
            "accuracy": accuracy_score(y_test, predicted),
            "f1_macro": f1_score(y_test, predicted, average="macro"),
            "log_loss": log_loss(y_test, proba, labels=model.classes_),
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
