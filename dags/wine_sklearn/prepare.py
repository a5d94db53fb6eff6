"""Splits the Wine data set into train and test, stratified by cultivar."""

import csv
import json
import os

from sluice import step


@step(params={"path": "../examples/data/wine.csv", "target": "cultivar",
              "test_fraction": 0.25, "seed": 42},
      outputs=["dataset"])
def prepare(ctx, path, target, test_fraction, seed):
    from sklearn.model_selection import train_test_split

    path = os.path.join(ctx.dag_dir, path)  # relative to the DAG file's folder
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    if not rows or target not in rows[0]:
        raise ValueError(f'{path} has no column "{target}"')
    features = [c for c in rows[0] if c != target]
    labels = [r[target] for r in rows]
    train, test = train_test_split(rows, test_size=test_fraction, random_state=seed,
                                   stratify=labels)
    os.makedirs("dataset")
    for name, part in (("train", train), ("test", test)):
        with open(f"dataset/{name}.csv", "w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=features + [target])
            writer.writeheader()
            writer.writerows(part)
    meta = {"features": features, "target": target, "classes": sorted(set(labels)),
            "source": os.path.basename(path), "seed": seed}
    with open("dataset/meta.json", "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)
    ctx.metric("rows_train", len(train))
    ctx.metric("rows_test", len(test))
    ctx.info(f"{len(train)} rows to train on, {len(test)} to test; {len(features)} features")
    ctx.output_dir("dataset", "dataset")
