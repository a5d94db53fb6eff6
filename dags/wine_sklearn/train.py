"""Trains one scikit-learn classifier on the prepared split and publishes it as a served
model folder: model.pkl, and predict.py to serve it."""

import os
import pickle

import numpy as np
from sluice import step
from wine_data import load_split


@step(params={"model": "logistic", "C": 1.0, "n_estimators": 200, "seed": 42},
      inputs=["dataset"], outputs=["model"])
def train(ctx, dataset, model, C, n_estimators, seed):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y, meta = load_split(dataset, "train")
    if model == "logistic":
        estimator = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=1000))
        estimator.fit(x, y)
    elif model == "forest":
        # Grown 20 trees at a time: the out-of-bag accuracy is the learning curve.
        estimator = RandomForestClassifier(n_estimators=0, warm_start=True, oob_score=True,
                                           random_state=seed)
        for trees in range(20, n_estimators + 1, 20):
            ctx.check_cancelled()
            estimator.set_params(n_estimators=trees)
            estimator.fit(x, y)
            ctx.metric("oob_accuracy", estimator.oob_score_, step=trees)
    else:
        raise ValueError(f'model must be "logistic" or "forest", not "{model}"')
    ctx.metric("train_accuracy", float(np.mean(estimator.predict(x) == y)))
    ctx.tag(f"{model}_classes", ",".join(str(c) for c in estimator.classes_))

    os.makedirs("model")
    with open("model/model.pkl", "wb") as f:
        pickle.dump(estimator, f)
    median = {name: float(v) for name, v in zip(meta["features"], np.median(x, axis=0))}
    ctx.output_model("model", "model", predict="wine_sklearn/predict.py", example=median,
                     features=meta["features"], classes=[str(c) for c in estimator.classes_],
                     estimator=type(estimator).__name__)
