#!/usr/bin/python3
"""Makes the two "new batch" files of dags/drift_watch.toml from breast_cancer_wisconsin.csv.

  breast_cancer_batch_stable.csv   120 rows drawn at random (seed 2026): no drift
  breast_cancer_batch_drifted.csv  the same rows as a recalibrated imaging system would
                                   measure them: sizes 12% larger (areas 25%), texture +4

Run it from this folder; the output is deterministic.
"""
import csv
import random

with open("breast_cancer_wisconsin.csv", newline="") as f:
    reader = csv.reader(f)
    header = next(reader)
    rows = list(reader)

sample = random.Random(2026).sample(rows, 120)


def drift(row):
    out = []
    for name, value in zip(header, row):
        if name.startswith(("radius_", "perimeter_")) and not name.endswith("_se"):
            value = f"{float(value) * 1.12:.4g}"
        elif name.startswith("area_") and not name.endswith("_se"):
            value = f"{float(value) * 1.25:.5g}"
        elif name == "texture_mean":
            value = f"{float(value) + 4:.4g}"
        out.append(value)
    return out


for name, rows_out in (("stable", sample), ("drifted", [drift(r) for r in sample])):
    with open(f"breast_cancer_batch_{name}.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows_out)
