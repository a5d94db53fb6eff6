#!/usr/bin/python3
"""Python steps and Python models against their peers: bench/python_bench.py [--quick].

Three figures (issue 16), each next to the peer it is judged against, as a ratio:

  step overhead  a chain of N python.function tries (a no-op function) run by `sluice run`,
                 minus the same chain of in-process core.noop tries (the engine's own share),
                 per try; against a bare `/usr/bin/python3 -c pass`. Target: the try costs at
                 most 20 ms more than the bare interpreter start.
  fan-out        100 independent Python tasks doing the same small computation, `sluice run
                 --workers 2`, against the same 100 scripts run by `xargs -P2`. Target: 1.2x.
  serving        one-row predictions of the served scikit-learn model of dags/wine_sklearn.toml
                 through `sluice serve` over one keep-alive HTTP connection, against the same
                 predict(rows) called in-process. Target: p99 under 5 ms.

Runs alternate (A B A B ...) after one warm-up each; medians are printed. Python's default
bytecode caching is on for every engine alike: PYTHONDONTWRITEBYTECODE is cleared (with it,
each try recompiles the SDK, about 4 ms; the python step caches bytecode under
~/.cache/sluice/pycache, never beside a script). Results go to
bench/results/python-DATE.json. Python 3 standard library only; the wine model needs
python3-sklearn (scripts/install-deps).

Usage: bench/python_bench.py [--quick] [--sluice PATH] [--workdir DIR] [--repeat N]
"""
import argparse
import datetime
import http.client
import importlib.util
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = "/usr/bin/python3"

WORK = """
def work(i):
    total = 0
    for k in range(200000):
        total += (k * i) % 7
    return total
"""


def timed(argv, cwd=None, env=None):
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def sluice_run(sluice, dag, state, workers=2):
    shutil.rmtree(state, ignore_errors=True)
    return timed([sluice, "run", str(dag), "--state-dir", str(state), "-q",
                  "--workers", str(workers)])


def write_chain(folder, n):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "noop.py").write_text("from sluice import step\n\n@step()\ndef f(ctx):\n"
                                    "    pass\n")
    for plugin, name in (("python.function", "py"), ("core.noop", "noop")):
        lines = [f'[dag]\nid = "chain_{name}"\n']
        for i in range(n):
            lines.append(f'[[task]]\nid = "t{i}"\nplugin = "{plugin}"\n')
            if plugin == "python.function":
                lines.append('params = { script = "noop.py" }\n')
            if i:
                lines.append(f'depends_on = ["t{i - 1}"]\n')
        (folder / f"chain_{name}.toml").write_text("".join(lines))


def step_overhead(sluice, work, n, repeat):
    folder = work / "chain"
    write_chain(folder, n)
    bare, py, noop = [], [], []
    timed([PYTHON, "-c", "pass"])
    sluice_run(sluice, folder / "chain_py.toml", work / "s1")
    for _ in range(repeat):
        bare.append(statistics.median(timed([PYTHON, "-c", "pass"]) for _ in range(10)))
        py.append(sluice_run(sluice, folder / "chain_py.toml", work / "s1"))
        noop.append(sluice_run(sluice, folder / "chain_noop.toml", work / "s2"))
    per_try = (statistics.median(py) - statistics.median(noop)) / n
    bare_ms = statistics.median(bare) * 1000
    return {"tries": n, "python_c_pass_ms": bare_ms, "python_try_ms": per_try * 1000,
            "overhead_ms": per_try * 1000 - bare_ms,
            "ratio": per_try * 1000 / bare_ms, "target_overhead_ms": 20}


def fan_out(sluice, work, n, repeat):
    folder = work / "fan"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "step.py").write_text("from sluice import step\n" + WORK +
                                    "\n@step(params={'i': 0})\ndef f(ctx, i):\n"
                                    "    return {'total': work(i)}\n")
    (folder / "script.py").write_text("import sys\n" + WORK + "\nprint(work(int(sys.argv[1])))\n")
    tasks = [f'[[task]]\nid = "t{i}"\nplugin = "python.function"\n'
             f'params = {{ script = "step.py", i = {i} }}\n' for i in range(n)]
    (folder / "fan.toml").write_text('[dag]\nid = "fan"\n' + "".join(tasks))
    xargs = ["sh", "-c", f"seq {n} | xargs -P2 -n1 {PYTHON} {folder / 'script.py'} >/dev/null"]
    sluice_run(sluice, folder / "fan.toml", work / "s3")
    timed(xargs)
    ours, theirs = [], []
    for _ in range(repeat):
        ours.append(sluice_run(sluice, folder / "fan.toml", work / "s3"))
        theirs.append(timed(xargs))
    a, b = statistics.median(ours), statistics.median(theirs)
    return {"tasks": n, "sluice_s": a, "xargs_p2_s": b, "ratio": a / b, "target_ratio": 1.2}


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def serving(sluice, work, requests):
    state = work / "serve-state"
    shutil.rmtree(state, ignore_errors=True)
    subprocess.run([sluice, "run", str(ROOT / "dags" / "wine_sklearn.toml"), "--state-dir",
                    str(state), "-q"], check=True, stdout=subprocess.DEVNULL)
    empty = work / "no-dags"
    empty.mkdir(exist_ok=True)
    log = open(work / "serve.log", "w")
    daemon = subprocess.Popen([sluice, "serve", "--dags", str(empty), "--state-dir", str(state),
                               "--listen", "127.0.0.1:0", "--serving-workers", "2"],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):
            if (state / "daemon.json").exists():
                break
            time.sleep(0.05)
        url = json.loads((state / "daemon.json").read_text())["url"]
        host, port = url.split("//")[1].split(":")
        token = (state / "admin-token").read_text().strip()
        card_dir = next(state.glob("artifacts/objects/*/*/sluice-model.json")).parent
        row = json.loads((card_dir / "sluice-model.json").read_text())["example"]
        body = json.dumps({"rows": [row]})
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        headers = {"Authorization": "Bearer " + token, "Content-Type": "application/json"}

        def ask():
            conn.request("POST", "/api/v1/models/wine_sklearn/predict", body, headers)
            reply = conn.getresponse()
            data = reply.read()
            if reply.status != 200:
                raise RuntimeError(f"{reply.status} {data[:200]!r}")

        for _ in range(50):  # loads the model in the workers, warms the connection
            ask()
        served = []
        for _ in range(requests):
            start = time.perf_counter()
            ask()
            served.append((time.perf_counter() - start) * 1000)
        # The peer: the same predict(rows), in this process.
        sys.path.insert(0, str(ROOT / "sdk" / "python"))
        spec = importlib.util.spec_from_file_location("wine_predict", card_dir / "predict.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        for _ in range(50):
            module.predict([row])
        local = []
        for _ in range(requests):
            start = time.perf_counter()
            module.predict([row])
            local.append((time.perf_counter() - start) * 1000)
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
        log.close()
    return {"requests": requests, "served_p50_ms": percentile(served, 50),
            "served_p99_ms": percentile(served, 99), "in_process_p50_ms": percentile(local, 50),
            "in_process_p99_ms": percentile(local, 99),
            "ratio_p99": percentile(served, 99) / percentile(local, 99), "target_p99_ms": 5}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer tries and requests")
    parser.add_argument("--sluice", default=str(ROOT / "build" / "bin" / "sluice"))
    parser.add_argument("--workdir", default="/tmp/sluice-python-bench")
    parser.add_argument("--repeat", type=int, default=0)
    args = parser.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    repeat = args.repeat or (2 if args.quick else 5)
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    results = {
        "step_overhead": step_overhead(args.sluice, work, 10 if args.quick else 30, repeat),
        "fan_out": fan_out(args.sluice, work, 100, repeat),
        "serving": serving(args.sluice, work, 300 if args.quick else 3000),
    }
    s, f, v = results["step_overhead"], results["fan_out"], results["serving"]
    print(f"{'figure':<16}{'sluice':>12}{'peer':>12}{'ratio':>9}  target")
    print(f"{'python try':<16}{s['python_try_ms']:>10.1f}ms{s['python_c_pass_ms']:>10.1f}ms"
          f"{s['ratio']:>8.2f}x  overhead {s['overhead_ms']:.1f} ms (target <= 20 ms; "
          f"peer: python3 -c pass)")
    print(f"{'fan-out 100':<16}{f['sluice_s']:>11.2f}s{f['xargs_p2_s']:>11.2f}s"
          f"{f['ratio']:>8.2f}x  target <= 1.2x (peer: xargs -P2)")
    print(f"{'predict p99':<16}{v['served_p99_ms']:>10.2f}ms{v['in_process_p99_ms']:>10.2f}ms"
          f"{v['ratio_p99']:>8.2f}x  p50 {v['served_p50_ms']:.2f} ms; target p99 < 5 ms "
          f"(peer: predict() in-process)")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    (out / f"python-{stamp}.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
