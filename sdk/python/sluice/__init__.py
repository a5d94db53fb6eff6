"""Sluice steps in Python.

Write a function, declare its params, inputs and outputs with @step, and name it in a DAG:

    from sluice import step

    @step(params={"C": 1.0}, inputs=["dataset"], outputs=["model", "auc"])
    def train(ctx, dataset, C):
        ...
        ctx.metric("auc", auc)
        ctx.output_value("auc", auc)
        ctx.output_file("model", "model.pkl")

    [[task]]
    id = "train"
    plugin = "python.function"
    params = { script = "steps/train.py", function = "train", C = 0.5 }
    inputs = { dataset = "prepare.dataset" }

docs/python-steps.md is the guide. Only the standard library is needed.
"""

from ._context import Context, RunInfo, Skip
from ._protocol import BadRequest, ProtocolError

__all__ = ["step", "Context", "RunInfo", "Skip", "ProtocolError", "BadRequest"]
__version__ = "1.0.0"


def step(params=None, inputs=None, outputs=None, description=None):
    """Marks a function as a Sluice step.

    params:  {name: default}; the default's type is the param's type (1.0 a number, 1 an
             integer, "x" a string, True a boolean, [] an array, {} an object; None: any,
             optional). Each param reaches the function as a keyword argument.
    inputs:  names of the upstream artifacts or values the step reads; each reaches the
             function as a keyword argument: a read-only path (str) for a file or folder,
             the value itself for a value.
    outputs: names of what the step publishes with ctx.output_file / output_dir /
             output_value.
    """

    def mark(fn):
        fn.__sluice_step__ = {
            "params": dict(params or {}),
            "inputs": list(inputs or []),
            "outputs": list(outputs or []),
            "description": description if description is not None
            else (fn.__doc__ or "").strip().split("\n")[0],
        }
        return fn

    return mark
