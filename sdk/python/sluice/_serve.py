"""Serves one Python model folder: python -m sluice._serve MODEL_DIR.

Started by the python plugin's predictor (plugins/python) inside a serving worker of
`sluice serve`, one process per loaded model version. It imports the folder's predictor
module (sluice-model.json's "entry", default predict.py), then answers requests: one JSON
line in on stdin (the request body), one JSON line out on the reply channel:

    {"ok": ANSWER}            ANSWER is what predict() returned, as an object
    {"bad_request": TEXT}     the request is wrong (a 400 with TEXT)
    {"error": TEXT}           predict() failed (a 500 with TEXT; its traceback is logged)

The reply channel is the stdout this process was started with; print() in a predictor goes
to stderr instead (the daemon's log), so it cannot garble an answer. The process exits when
stdin closes: the model was unloaded or its serving worker is gone.
"""

import importlib.util
import json
import os
import sys
import traceback

# BadRequest lives in _protocol: run as `-m sluice._serve` this module is __main__, and a
# class defined here would not be the one a predictor imports from sluice.
from ._protocol import BadRequest, _plain

MAX_ROWS = 1000


def _rows(body):
    """The request's rows: {"rows": [{...}, ...]} or {"columns": {"c": [v, ...], ...}}."""
    if not isinstance(body, dict):
        raise BadRequest("the request must be a JSON object")
    for key in body:
        if key not in ("rows", "columns"):
            raise BadRequest(f'unknown field "{key}" (send "rows" or "columns")')
    if ("rows" in body) == ("columns" in body):
        raise BadRequest('send either "rows" (a list of objects) or "columns"')
    if "columns" in body:
        columns = body["columns"]
        if not isinstance(columns, dict) or not columns:
            raise BadRequest('"columns" must be an object of equally long lists')
        lengths = {len(v) if isinstance(v, list) else -1 for v in columns.values()}
        if len(lengths) != 1 or -1 in lengths:
            raise BadRequest('"columns" must be an object of equally long lists')
        n = lengths.pop()
        rows = [{name: values[i] for name, values in columns.items()} for i in range(n)]
    else:
        rows = body["rows"]
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise BadRequest('"rows" must be a non-empty list of objects (column -> value)')
    if len(rows) > MAX_ROWS:
        raise BadRequest(f"too many rows: {len(rows)} (at most {MAX_ROWS} per request)")
    return rows


def _answer(result, rows):
    """predict()'s result as an answer object: a list is the predictions."""
    if hasattr(result, "tolist") and not isinstance(result, dict):
        result = result.tolist()
    if isinstance(result, (list, tuple)):
        result = {"predictions": list(result)}
    if not isinstance(result, dict):
        raise TypeError(f"predict() returned {type(result).__name__}; return a list (one "
                        "prediction per row) or a dict such as {\"predictions\": [...]}")
    predictions = result.get("predictions")
    if isinstance(predictions, (list, tuple)) and len(predictions) != len(rows):
        raise TypeError(f"predict() returned {len(predictions)} predictions for {len(rows)} rows")
    return result


def _load(model_dir):
    with open(os.path.join(model_dir, "sluice-model.json"), encoding="utf-8") as f:
        card = json.load(f)
    entry = os.path.join(model_dir, card.get("entry", "predict.py"))
    if not os.path.isfile(entry):
        raise FileNotFoundError(f"{entry} does not exist: a Python model folder holds the "
                                "predict(rows) module that sluice-model.json's \"entry\" names")
    sys.path.insert(0, model_dir)
    spec = importlib.util.spec_from_file_location("sluice_model_predictor", entry)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    predict = getattr(module, "predict", None)
    if not callable(predict):
        raise AttributeError(f"{entry} has no predict(rows) function")
    # Warm up, so that the first real request does not pay for lazy imports and caches.
    example = card.get("example")
    if callable(getattr(module, "warm_up", None)):
        module.warm_up()
    elif isinstance(example, dict):
        _answer(predict([example]), [example])
    return predict


def _last_line(exc):
    lines = traceback.format_exception_only(type(exc), exc)
    return lines[-1].strip() if lines else type(exc).__name__


def main(argv):
    if len(argv) != 2:
        print("usage: python -m sluice._serve MODEL_DIR", file=sys.stderr)
        return 2
    replies = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # print() in a predictor: to the log, never into an answer
    sys.stdout = sys.stderr

    def send(message):
        replies.write(json.dumps(message, allow_nan=False, default=_plain) + "\n")
        replies.flush()

    def send_answer(answer):
        try:
            text = json.dumps({"ok": answer}, allow_nan=False, default=_plain)
        except (TypeError, ValueError) as exc:
            send({"error": f"predict() returned something that is not JSON: {exc}"})
            return
        replies.write(text + "\n")
        replies.flush()

    try:
        predict = _load(argv[1])
    except BaseException as exc:  # noqa: B902 - any failure to load is the model's error
        traceback.print_exc()
        send({"error": _last_line(exc)})
        return 1
    send({"ready": True})
    for line in sys.stdin:
        try:
            rows = _rows(json.loads(line))
            answer = _answer(predict(rows), rows)
        except BadRequest as exc:
            send({"bad_request": str(exc)})
            continue
        except Exception as exc:  # noqa: B902 - a failed prediction costs its request only
            traceback.print_exc()
            sys.stderr.flush()
            send({"error": _last_line(exc)})
            continue
        send_answer(answer)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
