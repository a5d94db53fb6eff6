"""A client for the Sluice REST API (docs/api.md), for notebooks and scripts.

    from sluice.client import Client

    sluice = Client()                       # the daemon of ./.sluice, or $SLUICE_SERVER
    run = sluice.trigger("wine_sklearn", params={"seed": 7}, wait=True)
    sluice.metrics(run["run_id"])           # {"evaluate_forest": {"accuracy": 1.0, ...}, ...}
    sluice.params(run["run_id"])            # {"seed": 7, "min_accuracy": 0.9}
    best = sluice.search_runs("wine_sklearn", where=[("evaluate_forest.accuracy", ">=", 0.95)],
                              order_by="evaluate_forest.log_loss")

The server and token are found as the `sluice` CLI finds them: the arguments, else
$SLUICE_SERVER and $SLUICE_TOKEN, else the daemon that owns the state dir ($SLUICE_STATE_DIR
or .sluice: its daemon.json and, for that daemon only, its first admin token). Only the
standard library is used. Every failed call raises ApiError with the API's code and message.
"""

import json
import operator
import os
import time
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["Client", "ApiError"]

_OPERATORS = {"==": operator.eq, "=": operator.eq, "!=": operator.ne, "<": operator.lt,
              "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_ENDED = ("success", "failed", "cancelled")


class ApiError(RuntimeError):
    """A call the API refused: `status` (HTTP), `code` ("not_found") and `message`."""

    def __init__(self, status, code, message):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class Client:
    def __init__(self, server=None, token=None, state_dir=None, timeout=30.0):
        state_dir = state_dir or os.environ.get("SLUICE_STATE_DIR") or ".sluice"
        token = token or os.environ.get("SLUICE_TOKEN") or ""
        server = server or os.environ.get("SLUICE_SERVER") or ""
        if not server:
            try:
                with open(os.path.join(state_dir, "daemon.json"), encoding="utf-8") as f:
                    server = json.load(f)["url"]
            except (OSError, ValueError, KeyError) as e:
                raise ApiError(0, "no_server",
                               f"no daemon owns {state_dir} ({e}); start one with `sluice serve "
                               f"--state-dir {state_dir}`, or pass server= (or set "
                               "SLUICE_SERVER)") from None
            if not token:  # the first admin token, only for the daemon of this state dir
                try:
                    with open(os.path.join(state_dir, "admin-token"), encoding="utf-8") as f:
                        token = f.readline().strip()
                except OSError:
                    pass
        self.server = server.rstrip("/")
        self.token = token
        self.timeout = timeout

    # Runs --------------------------------------------------------------------------------
    def trigger(self, dag_id, params=None, tags=None, run_id=None, note=None, wait=False,
                timeout=None, poll=0.5):
        """Starts a run; its record. With wait=True, waits for it to end (see wait)."""
        body = {}
        if params:
            body["params"] = params
        if tags:
            body["tags"] = tags
        if run_id:
            body["run_id"] = run_id
        if note:
            body["note"] = note
        run = self._call("POST", f"/api/v1/dags/{_q(dag_id)}/runs", body)["run"]
        return self.wait(run["run_id"], timeout=timeout, poll=poll) if wait else run

    def get_run(self, run_id):
        return self._call("GET", f"/api/v1/runs/{_q(run_id)}")["run"]

    def wait(self, run_id, timeout=None, poll=0.5):
        """Waits until the run has ended (success, failed or cancelled); its record. Raises
        TimeoutError after `timeout` seconds (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            run = self.get_run(run_id)
            if run.get("state") in _ENDED:
                return run
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} is still {run.get('state')} after {timeout} s")
            time.sleep(poll)

    def list_runs(self, dag_id=None, state=None, max_results=None):
        """Run records, newest first; every page is read up to max_results."""
        runs, token = [], None
        while max_results is None or len(runs) < max_results:
            query = {"limit": 1000 if max_results is None else min(1000, max_results - len(runs))}
            if dag_id:
                query["dag_id"] = dag_id
            if state:
                query["state"] = state if isinstance(state, str) else ",".join(state)
            if token:
                query["page_token"] = token
            page = self._call("GET", "/api/v1/runs?" + urllib.parse.urlencode(query))
            runs.extend(page.get("runs", []))
            token = page.get("next_page_token")
            if not token:
                break
        return runs

    def cancel(self, run_id):
        return self._call("POST", f"/api/v1/runs/{_q(run_id)}/cancel", {})

    def tasks(self, run_id):
        """The latest try of each task."""
        return self._call("GET", f"/api/v1/runs/{_q(run_id)}/tasks")

    # Tracking ----------------------------------------------------------------------------
    def tracking(self, run_id, task=None):
        """The run's tracked data as the API gives it: params, tags, note, and per task its
        metrics (every point) and their summary."""
        path = f"/api/v1/runs/{_q(run_id)}/metrics"
        if task:
            path += "?" + urllib.parse.urlencode({"task": task})
        return self._call("GET", path)

    def metrics(self, run_id, task=None):
        """{task: {metric: last value}}; with task, that task's {metric: last value}."""
        tasks = self.tracking(run_id, task).get("tasks", {})
        last = {t: {name: s.get("last") for name, s in data.get("summary", {}).items()}
                for t, data in tasks.items()}
        return last.get(task, {}) if task else last

    def metric_history(self, run_id, task, name):
        """[(step, value), ...] of one metric of one task, in the order recorded."""
        points = self.tracking(run_id, task).get("tasks", {}).get(task, {}).get("metrics", [])
        return [(p.get("step"), p.get("value")) for p in points if p.get("name") == name]

    def params(self, run_id):
        return self.tracking(run_id).get("params", {})

    def tags(self, run_id):
        """The run's tags: those it was triggered with and those its steps set (ctx.tag)."""
        return _tags(self.tracking(run_id))

    def compare(self, run_ids):
        """Params, tags and metrics of two or more runs side by side: the API's rows."""
        query = urllib.parse.urlencode({"runs": ",".join(run_ids)})
        return self._call("GET", "/api/v1/runs/compare?" + query)

    def search_runs(self, dag_id, tags=None, where=(), state=None, order_by=None,
                    max_results=100, scan=1000):
        """The runs of a DAG whose tags and metrics match, as MlflowClient.search_runs.

        tags: {name: value} the run's tags must hold. where: (key, op, value) conditions:
        key "TASK.METRIC" (its last value), "params.NAME" or "tags.NAME"; op one of == != <
        <= > >=. A run without the key does not match. order_by: a key, optionally followed
        by " desc". Each run found is a dict: run_id, state, params, tags, metrics
        ({"TASK.METRIC": last}). It reads the newest `scan` runs, one request per run for
        its metrics.
        """
        conditions = list(where)
        for key, _, _ in conditions:
            _split_key(key)
        for _, op, _ in conditions:
            if op not in _OPERATORS:
                raise ValueError(f"unknown operator {op!r} (use one of {', '.join(_OPERATORS)})")
        found = []
        for run in self.list_runs(dag_id, state=state, max_results=scan):
            data = self.tracking(run["run_id"])
            row = {"run_id": run["run_id"], "dag_id": run.get("dag_id", dag_id),
                   "state": run.get("state"), "logical_date": run.get("logical_date"),
                   "params": data.get("params", {}), "tags": _tags(data),
                   "metrics": {f"{t}.{name}": s.get("last")
                               for t, d in data.get("tasks", {}).items()
                               for name, s in d.get("summary", {}).items()}}
            if tags and any(row["tags"].get(k) != str(v) for k, v in tags.items()):
                continue
            if all(_holds(_value(row, key), op, value) for key, op, value in conditions):
                found.append(row)
        if order_by:
            key, _, direction = order_by.partition(" ")
            _split_key(key)
            present = [r for r in found if _value(r, key) is not None]
            present.sort(key=lambda r: _value(r, key), reverse=direction.strip().lower() == "desc")
            found = present + [r for r in found if _value(r, key) is None]
        return found[:max_results]

    # Models ------------------------------------------------------------------------------
    def models(self):
        return self._call("GET", "/api/v1/models")

    def model_versions(self, model):
        return self._call("GET", f"/api/v1/models/{_q(model)}/versions")

    def set_alias(self, model, alias, version, reason=""):
        return self._call("POST", f"/api/v1/models/{_q(model)}/aliases/{_q(alias)}",
                          {"version": int(version), "reason": reason})

    def predict(self, model, rows, alias=None, version=None):
        """The served model's answer for rows ([{column: value}, ...])."""
        query = {}
        if alias:
            query["alias"] = alias
        if version:
            query["version"] = int(version)
        path = f"/api/v1/models/{_q(model)}/predict"
        if query:
            path += "?" + urllib.parse.urlencode(query)
        return self._call("POST", path, {"rows": rows})

    # -------------------------------------------------------------------------------------
    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.server + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", "Bearer " + self.token)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                return json.loads(reply.read() or b"null")
        except urllib.error.HTTPError as e:
            text = e.read()
            try:
                error = json.loads(text)["error"]
                raise ApiError(e.code, error.get("code", ""), error.get("message", "")) from None
            except (ValueError, KeyError, TypeError):
                raise ApiError(e.code, "http_error", text.decode("utf-8", "replace")) from None
        except urllib.error.URLError as e:
            raise ApiError(0, "unreachable", f"{self.server}: {e.reason}") from None


def _tags(tracking):
    tags = {}
    for data in tracking.get("tasks", {}).values():
        tags.update(data.get("tags") or {})
    tags.update(tracking.get("tags") or {})
    return tags


def _q(part):
    return urllib.parse.quote(str(part), safe="")


def _split_key(key):
    head, dot, tail = key.partition(".")
    if not dot or not head or not tail:
        raise ValueError(f'key {key!r} must be "TASK.METRIC", "params.NAME" or "tags.NAME"')
    return head, tail


def _value(row, key):
    head, tail = _split_key(key)
    if head == "params":
        return row["params"].get(tail)
    if head == "tags":
        return row["tags"].get(tail)
    return row["metrics"].get(key)


def _holds(actual, op, expected):
    if actual is None:
        return False
    try:
        return _OPERATORS[op](actual, expected)
    except TypeError:
        return False
