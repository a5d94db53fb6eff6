"""Scores a trained model on the held-out test split."""

import os
import pickle

from sluice import step
from wine_data import load_split


@step(inputs=["model", "dataset"], outputs=["metrics"])
def evaluate(ctx, model, dataset):
    from sklearn.metrics import accuracy_score, f1_score, log_loss

    with open(os.path.join(model, "model.pkl"), "rb") as f:
        estimator = pickle.load(f)
    x, y, _ = load_split(dataset, "test")
    predicted = estimator.predict(x)
    metrics = {
        "accuracy": accuracy_score(y, predicted),
        "f1_macro": f1_score(y, predicted, average="macro"),
        "log_loss": log_loss(y, estimator.predict_proba(x), labels=estimator.classes_),
    }
    for name, value in metrics.items():
        ctx.metric(name, value)
    return {"metrics": metrics}  # a value output: for the deploy gate and `when`
