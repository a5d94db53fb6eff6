"""Registers the better of the two models and promotes it to production if it passes its
gates: a minimum test accuracy, and no worse than the version in production now."""

import os

from sluice import step

CANDIDATES = ("logistic", "forest")


@step(params={"model_name": "wine_sklearn", "min_accuracy": 0.9, "tolerance": 0.0},
      inputs=["model_logistic", "metrics_logistic", "model_forest", "metrics_forest"],
      outputs=["version"])
def deploy(ctx, model_name, min_accuracy, tolerance, **inputs):
    # The better candidate: the higher accuracy, then the lower log loss.
    best = max(CANDIDATES, key=lambda c: (inputs[f"metrics_{c}"]["accuracy"],
                                          -inputs[f"metrics_{c}"]["log_loss"]))
    metrics = inputs[f"metrics_{best}"]
    ctx.info(f"candidate: {best} (accuracy {metrics['accuracy']:.4f}, "
             f"log loss {metrics['log_loss']:.4f})")

    production = ctx.model_version(model_name)  # None before the first deploy
    if production is not None and os.path.realpath(production.get("path", "")) == \
            os.path.realpath(inputs[f"model_{best}"]):
        # The same model folder (a cached rerun): nothing new to register.
        ctx.info(f"the candidate is production v{production['version']} already")
        return {"version": production["version"]}

    failed = []
    if metrics["accuracy"] < min_accuracy:
        failed.append(f"accuracy {metrics['accuracy']:.4f} < {min_accuracy}")
    if production is not None:
        held = production.get("metrics", {}).get("accuracy")
        if held is not None and metrics["accuracy"] < held - tolerance:
            failed.append(f"accuracy {metrics['accuracy']:.4f} < production v"
                          f"{production['version']}'s {held:.4f}")

    version = ctx.register_model(
        model_name, input=f"model_{best}", metrics=metrics, flavor="python",
        tags={"estimator": best},
        description="Wine cultivar (3 classes) from 13 chemical measures, scikit-learn",
        alias=None if failed else "production",
        reason="" if failed else f"{best}: passed its gates")
    if failed:
        ctx.warning(f"v{version['version']} registered, not promoted: " + "; ".join(failed))
    else:
        ctx.info(f"v{version['version']} is production")
    ctx.tag("deployed", "no" if failed else f"v{version['version']}")
    return {"version": version["version"]}
