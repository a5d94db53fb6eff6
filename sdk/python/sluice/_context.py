"""The Context a Python step gets: what the C++ SDK's sluice::sdk::Context offers."""

import os

from ._protocol import Channel, _plain

# Imports here are kept to what every step needs: they are paid on each try's start
# (bench/python_bench.py). json, shutil and sys come in with output_model only.


class Skip(Exception):
    """Raised (or ctx.skip(reason)) to end the try as skipped, which is not a failure."""


class RunInfo:
    """The try a step runs in: dag_id, run_id, task_id, try_number, logical_date,
    idempotency_key (read-only)."""

    __slots__ = ("dag_id", "run_id", "task_id", "try_number", "logical_date", "idempotency_key")

    def __init__(self, dag_id, run_id, task_id, try_number, logical_date, idempotency_key):
        for name, value in zip(self.__slots__, (dag_id, run_id, task_id, try_number,
                                                logical_date, idempotency_key)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError("RunInfo is read-only")

    def __eq__(self, other):
        return isinstance(other, RunInfo) and all(
            getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __hash__(self):
        return hash(tuple(getattr(self, n) for n in self.__slots__))

    def __repr__(self):
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"RunInfo({fields})"


class Context:
    """The try a step runs in: params, inputs, outputs, metrics, tags, logs, the registry."""

    def __init__(self, channel=None):
        self._channel = channel or Channel()
        info = self._channel.ask("info")
        run = info.get("run", {})
        self.run = RunInfo(run.get("dag_id", ""), run.get("run_id", ""), run.get("task_id", ""),
                           int(run.get("try_number", 0)), run.get("logical_date", ""),
                           run.get("idempotency_key", ""))
        self.params = info.get("params", {})
        self._inputs = info.get("inputs", {})
        # The try's scratch folder (the step's working directory), the folder outputs may be
        # written to, and the DAG file's folder (what relative paths in the DAG mean).
        self.scratch_dir = info.get("scratch_dir", "")
        self.output_root = info.get("output_dir", "")
        self.dag_dir = info.get("dag_dir", "")

    # Inputs ------------------------------------------------------------------------------
    @property
    def inputs(self):
        """Every input: {name: {"path": ...} or {"value": ...}}."""
        return dict(self._inputs)

    def input_path(self, name):
        """The read-only path of a file or folder input."""
        entry = self._input(name)
        if "path" not in entry:
            raise ValueError(f'input "{name}" is a value, not a file; use ctx.input_value')
        return entry["path"]

    def input_value(self, name):
        """The value of a value input (a number, string, list or dict)."""
        entry = self._input(name)
        if "value" not in entry:
            raise ValueError(f'input "{name}" is a file, not a value; use ctx.input_path')
        return entry["value"]

    def _input(self, name):
        if name not in self._inputs:
            raise KeyError(f'no input named "{name}"; declare it in the task\'s inputs')
        return self._inputs[name]

    # Outputs -----------------------------------------------------------------------------
    def output_file(self, name, path):
        """Publishes a file: stored content-addressed, with lineage."""
        self._channel.ask("output", name=name, kind="file", path=os.path.abspath(path))

    def output_dir(self, name, path):
        """Publishes a folder, as output_file does a file."""
        self._channel.ask("output", name=name, kind="dir", path=os.path.abspath(path))

    def output_model(self, name, folder, predict, example=None, **card):
        """Publishes `folder` as a model that `sluice serve` can serve, as output_dir does.

        predict: the Python file with the model's predict(rows) function (copied into the
        folder as predict.py; a relative path is relative to the DAG file's folder). The
        function gets a list of rows ({column: value}) and returns one prediction per row,
        or a dict such as {"predictions": [...], "probabilities": [...], "classes": [...]};
        it loads what it needs from the folder (beside its own __file__) when imported.
        example: one row, predicted once when the model is loaded, to warm it up.
        card: more fields for sluice-model.json (say, "features": [...]).
        """
        import json
        import shutil
        import sys

        folder = os.path.abspath(folder)
        source = predict if os.path.isabs(predict) else os.path.join(self.dag_dir, predict)
        if not os.path.isfile(source):
            raise FileNotFoundError(f"predictor {source} does not exist (a relative path is "
                                    "relative to the DAG file's folder)")
        os.makedirs(folder, exist_ok=True)
        shutil.copyfile(source, os.path.join(folder, "predict.py"))
        fields = dict(card)
        fields.update({"predictor": "python.predict", "entry": "predict.py",
                       "python": sys.executable})
        if example is not None:
            fields["example"] = example
        with open(os.path.join(folder, "sluice-model.json"), "w", encoding="utf-8") as f:
            json.dump(fields, f, indent=2, default=_plain)
        self.output_dir(name, folder)

    def output_value(self, name, value):
        """Publishes a JSON value, for `when` conditions, gates and downstream inputs."""
        self._channel.ask("output", name=name, kind="value", value=value)

    # Tracking ----------------------------------------------------------------------------
    def metric(self, name, value, step=None):
        """Records a metric; with step, one point of a curve (an epoch, a round)."""
        self._channel.ask("metric", name=name, value=float(value),
                          step=-1 if step is None else int(step))

    def tag(self, name, value):
        """Tags the run (`sluice runs compare` shows tags)."""
        self._channel.ask("tag", name=name, value=str(value))

    def log(self, text, level="info"):
        self._channel.ask("log", level=level, text=str(text))

    def debug(self, text):
        self.log(text, "debug")

    def info(self, text):
        self.log(text, "info")

    def warning(self, text):
        self.log(text, "warning")

    def error(self, text):
        self.log(text, "error")

    # Control -----------------------------------------------------------------------------
    @property
    def cancelled(self):
        """True once the try should stop; long steps check it between units of work."""
        return bool(self._channel.ask("cancelled"))

    def check_cancelled(self):
        """Raises KeyboardInterrupt once the try should stop."""
        if self.cancelled:
            raise KeyboardInterrupt("cancelled")

    def skip(self, reason):
        """Ends the try as skipped (not failed): a gate that did not pass."""
        raise Skip(reason)

    # The model registry ------------------------------------------------------------------
    def register_model(self, model, output=None, metrics=None, tags=None, description="",
                       alias=None, reason="", flavor=None, input=None):  # noqa: A002
        """Registers the next version of `model`; returns the version record.

        The version is this try's output `output` (published before with output_file,
        output_dir or output_model), or, for a deploy step, its input `input` (a model an
        upstream task made; the version then names that task as its maker). With alias,
        the alias moves to the new version at once."""
        if (output is None) == (input is None):
            raise ValueError("register_model needs exactly one of output= and input=")
        request = {"model": model, "tags": dict(tags or {}), "description": description}
        if output is not None:
            request["output"] = output
        else:
            request["input"] = input
        if flavor:
            request["tags"]["flavor"] = flavor
        if metrics is not None:
            request["metrics"] = dict(metrics)
        if alias:
            request["alias"] = alias
            request["reason"] = reason
        return self.call("models.register", request)

    def model_version(self, model, alias="production"):
        """The version of `model` holding `alias` (its metrics, its path), or None."""
        return self.call("models.get", {"model": model, "alias": alias})

    def set_model_alias(self, model, alias, version, reason=""):
        return self.call("models.set_alias", {"model": model, "alias": alias,
                                              "version": int(version), "reason": reason})

    def evaluate(self, expression, values):
        """Evaluates a `when`-language expression over `values` (a dict)."""
        return self.call("expression.evaluate", {"expression": expression, "values": values})

    def call(self, method, request):
        """A raw step service request."""
        return self._channel.ask("call", method=method, request=request)
