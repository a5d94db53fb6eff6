// Python steps (issue 16): python.function with the Python SDK (sdk/python), through the
// real binary, real workers, Debian's python3 and the real registry.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_util.h"

namespace sluice {
namespace {

using nlohmann::json;
using testing::RunSluice;

json RunJson(const std::string& state, std::vector<std::string> args) {
  args.insert(args.end(), {"--json", "--state-dir", state});
  auto r = RunSluice(args);
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  return json::parse(r.out);
}

std::map<std::string, json> Tries(const std::string& state) {
  const json runs = RunJson(state, {"runs", "list"});
  REQUIRE(runs.size() == 1);
  std::map<std::string, json> tries;
  for (const json& t : RunJson(state, {"tasks", "list", runs[0]["run_id"]}))
    tries[t["task_id"]] = t;
  return tries;
}

const char* kSteps = R"PY(import os
from sluice import step

@step(params={"C": 1.0, "max_iter": 200, "name": "m"}, inputs=["dataset"],
      outputs=["model", "auc", "report"])
def train(ctx, dataset, C, max_iter, name):
    assert isinstance(C, float) and C == 0.5, C
    assert max_iter == 200
    print("rows:", open(dataset).read().count("\n"), flush=True)
    for i, loss in enumerate([0.9, 0.5, 0.25]):
        ctx.metric("loss", loss, step=i)
    ctx.metric("auc", 0.91)
    with open("model.txt", "w") as f:
        f.write(f"C={C}\n")
    ctx.output_file("model", "model.txt")
    os.makedirs("report", exist_ok=True)
    open("report/index.html", "w").write("<p>ok</p>")
    ctx.output_dir("report", "report")
    ctx.tag("framework", "python")
    ctx.warning("a warning line")
    v = ctx.register_model("toy", "model", metrics={"auc": 0.91}, flavor="python")
    ctx.info(f"registered version {v['version']}")
    ctx.output_value("run", {"dag": ctx.run.dag_id, "task": ctx.run.task_id,
                             "try": ctx.run.try_number, "key": ctx.run.idempotency_key,
                             "cwd_is_scratch": os.getcwd() == ctx.scratch_dir,
                             "dag_dir": ctx.dag_dir})
    return {"auc": 0.91}

@step(inputs=["auc"])
def gate(ctx, auc):
    production = ctx.model_version("toy", "production")
    if production is None:
        ctx.skip(f"nothing in production to beat (auc {auc})")

@step()
def boom(ctx):
    raise ValueError("C must be positive")
)PY";

TEST_CASE("Cli.PythonStep.ParamsInputsOutputsMetricsTagsRegistrySkipAndTraceback" *
          testing::Timeout(120)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  testing::WriteFile(dir.file("pipeline/steps/train.py"), kSteps);
  testing::WriteFile(dir.file("pipeline/p.toml"), R"([dag]
id = "py"
[[task]]
id = "prepare"
plugin = "core.shell"
params = { command = "printf 'a,b\n1,2\n' > data.csv", outputs = { dataset = "data.csv" } }
[[task]]
id = "train"
plugin = "python.function"
params = { script = "steps/train.py", function = "train", C = 0.5 }
inputs = { dataset = "prepare.dataset" }
[[task]]
id = "gate"
plugin = "python.function"
params = { script = "steps/train.py", function = "gate" }
inputs = { auc = "train.auc" }
[[task]]
id = "deploy"
depends_on = ["train"]
when = "train.auc > 0.9"
plugin = "core.noop"
[[task]]
id = "boom"
plugin = "python.function"
params = { script = "steps/train.py", function = "boom" }
)");
  // From another folder: the script is found relative to the DAG file, not to here.
  auto run = RunSluice({"run", dir.file("pipeline/p.toml"), "--state-dir", state});
  CHECK(run.exit_code == 1);  // boom fails
  std::map<std::string, json> tries = Tries(state);
  const json& train = tries["train"];
  INFO(train.dump());
  REQUIRE(train["state"] == "success");
  CHECK(train["outputs"]["auc"]["value"] == 0.91);
  CHECK(testing::ReadFile(train["outputs"]["model"]["path"]) == "C=0.5\n");
  CHECK(train["outputs"]["report"]["kind"] == "dir");
  CHECK(train["tags"]["framework"] == "python");
  const json& info = train["outputs"]["run"]["value"];
  CHECK(info["dag"] == "py");
  CHECK(info["task"] == "train");
  CHECK(info["try"] == 1);
  CHECK(info["cwd_is_scratch"] == true);
  CHECK(info["dag_dir"] == dir.file("pipeline"));

  CHECK(tries["deploy"]["state"] == "success");
  CHECK(tries["gate"]["state"] == "skipped");
  CHECK(tries["gate"]["reason"].get<std::string>().find(
            "nothing in production to beat (auc 0.91)") != std::string::npos);
  CHECK(tries["boom"]["state"] == "failed");
  CHECK(tries["boom"]["reason"].get<std::string>().find("ValueError: C must be positive") !=
        std::string::npos);

  const std::string run_id = RunJson(state, {"runs", "list"})[0]["run_id"];
  auto boom_log = RunSluice({"logs", run_id, "boom", "--state-dir", state});
  CHECK(boom_log.out.find("Traceback (most recent call last):") != std::string::npos);
  CHECK(boom_log.out.find("train.py\", line") != std::string::npos);
  auto train_log = RunSluice({"logs", run_id, "train", "--state-dir", state});
  CHECK(train_log.out.find("INFO  rows: 2") != std::string::npos);
  CHECK(train_log.out.find("WARN  a warning line") != std::string::npos);
  CHECK(train_log.out.find("INFO  registered version 1") != std::string::npos);

  const json metrics = RunJson(state, {"metrics", run_id});
  int loss_points = 0;
  for (const json& p : metrics["tasks"]["train"]["metrics"]) loss_points += p["name"] == "loss";
  CHECK(loss_points == 3);
  const json models = RunJson(state, {"models", "list"});
  REQUIRE(models.size() == 1);
  CHECK(models[0]["name"] == "toy");
}

TEST_CASE("Cli.PythonStep.AMissingInterpreterScriptOrFunctionNamesTheTaskAndPath" *
          testing::Timeout(60)) {
  testing::TempDir dir;
  testing::WriteFile(dir.file("steps.py"), kSteps);
  // The script and function come from run params here, so that validation (which checks
  // literal ones: ValidateChecksParamsAndInputsAgainstTheScriptWithoutRunningIt) leaves them
  // to the try.
  testing::WriteFile(dir.file("p.toml"), R"([dag]
id = "bad"
[params]
script = "stpes.py"
function = "trian"
[[task]]
id = "no_python"
plugin = "python.function"
params = { script = "steps.py", function = "boom", python = "/opt/nowhere/bin/python3" }
[[task]]
id = "no_script"
plugin = "python.function"
params = { script = "{{ params.script }}" }
[[task]]
id = "no_function"
plugin = "python.function"
params = { script = "steps.py", function = "{{ params.function }}" }
)");
  const std::string state = dir.file("state");
  auto run = RunSluice({"run", dir.file("p.toml"), "--state-dir", state});
  CHECK(run.exit_code == 1);
  std::map<std::string, json> tries = Tries(state);
  auto reason = [&](const std::string& task) { return tries[task]["reason"].get<std::string>(); };
  CHECK(reason("no_python")
            .find("task \"no_python\": the Python interpreter /opt/nowhere/bin/python3") !=
        std::string::npos);
  CHECK(reason("no_script").find("script " + dir.file("stpes.py") + " does not exist") !=
        std::string::npos);
  CHECK(reason("no_script").find("relative to the DAG file's folder") != std::string::npos);
  CHECK(reason("no_function")
            .find("has no function \"trian\"; its @step functions: train, gate, boom") !=
        std::string::npos);
}

// Issue 16: editing the script did not invalidate the step cache; the run said "cached from"
// and its results were stale. The script (and any code_files) are part of the cache key, for
// python.function and for core.shell alike, keyed by the path as written.
TEST_CASE("Cli.PythonStep.EditingTheScriptOrACodeFileInvalidatesTheCache" * testing::Timeout(120)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  testing::WriteFile(dir.file("p/steps.py"),
                     "from sluice import step\n@step()\ndef f(ctx):\n    return {'v': 1}\n");
  testing::WriteFile(dir.file("p/helper.sh"), "echo one\n");
  testing::WriteFile(dir.file("p/p.toml"), R"([dag]
id = "cached"
[[task]]
id = "py"
plugin = "python.function"
cache = true
params = { script = "steps.py" }
[[task]]
id = "sh"
plugin = "core.shell"
cache = true
params = { command = "echo ran", code_files = ["helper.sh"] }
)");
  auto run = [&] {
    auto r = RunSluice({"run", dir.file("p/p.toml"), "--state-dir", state, "--quiet"});
    REQUIRE_MESSAGE(r.exit_code == 0, r.err);
    const json runs = RunJson(state, {"runs", "list"});
    std::map<std::string, bool> cached;
    for (const json& t : RunJson(state, {"tasks", "list", runs[0]["run_id"]})) {
      cached[t["task_id"]] = !t["cached_from"].is_null();
    }
    return cached;
  };
  auto first = run();
  CHECK_FALSE(first["py"]);
  CHECK_FALSE(first["sh"]);
  auto second = run();
  CHECK(second["py"]);
  CHECK(second["sh"]);
  testing::WriteFile(dir.file("p/steps.py"),
                     "from sluice import step\n@step()\ndef f(ctx):\n    return {'v': 2}\n");
  auto edited = run();
  CHECK_FALSE(edited["py"]);
  CHECK(edited["sh"]);
  testing::WriteFile(dir.file("p/helper.sh"), "echo two\n");
  auto helper = run();
  CHECK(helper["py"]);
  CHECK_FALSE(helper["sh"]);

  // Another default interpreter (no `python` param: $SLUICE_PYTHON here) is another key, and
  // so is a new build of the same one.
  testing::WriteFile(dir.file("bin/python3"), "#!/bin/sh\nexec /usr/bin/python3 \"$@\"\n");
  std::filesystem::permissions(dir.file("bin/python3"), std::filesystem::perms::owner_all);
  REQUIRE(setenv("SLUICE_PYTHON", dir.file("bin/python3").c_str(), 1) == 0);
  CHECK_FALSE(run()["py"]);
  CHECK(run()["py"]);
  testing::WriteFile(dir.file("bin/python3"),
                     "#!/bin/sh\n# 3.11.3\nexec /usr/bin/python3 \"$@\"\n");
  CHECK_FALSE(run()["py"]);
  unsetenv("SLUICE_PYTHON");
}

// A script whose import would leave a mark: the validator must never run it.
const char* kDeclared = R"PY(open(__file__ + ".ran", "w").write("imported")
from sluice import step

PARAMS = {"C": 1.0, "max_iter": 200}

@step(params=PARAMS, inputs=["dataset"], outputs=["model"])
def train(ctx, dataset, C, max_iter, extra=None):
    pass
)PY";

TEST_CASE("Cli.PythonStep.ValidateChecksParamsAndInputsAgainstTheScriptWithoutRunningIt" *
          testing::Timeout(60)) {
  testing::TempDir dir;
  testing::WriteFile(dir.file("steps/train.py"), kDeclared);
  testing::WriteFile(dir.file("steps/broken.py"), "from sluice import step\n\ndef f(:\n");
  testing::WriteFile(dir.file("p.toml"), R"([dag]
id = "p"
[params]
level = "high"

[[task]]
id = "prep"
plugin = "core.noop"

[[task]]
id = "typo"
plugin = "python.function"
inputs = { dataset = "prep.out" }
params = { script = "steps/train.py", max_itr = 10 }

[[task]]
id = "types"
plugin = "python.function"
inputs = { dataset = "prep.out" }
params = { script = "steps/train.py", C = "{{ params.level }}", max_iter = 1.5, extra = "ok" }

[[task]]
id = "inputs"
plugin = "python.function"
inputs = { datset = "prep.out" }
params = { script = "steps/train.py" }

[[task]]
id = "function"
plugin = "python.function"
params = { script = "steps/train.py", function = "trian" }

[[task]]
id = "missing"
plugin = "python.function"
params = { script = "steps/nope.py" }

[[task]]
id = "syntax"
plugin = "python.function"
params = { script = "steps/broken.py" }
)");
  const testing::CommandResult r = RunSluice({"dag", "validate", dir.file("p.toml")});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  const std::string& out = r.out + r.err;
  const auto has = [&](const std::string& text) { return out.find(text) != std::string::npos; };
  // A typo, with its position in the DAG file and the nearest declared name.
  CHECK(
      has("p.toml:14:39: error: task \"typo\": train() in steps/train.py has no param "
          "\"max_itr\""));
  CHECK(has("hint: did you mean \"max_iter\"?"));
  // Wrong types, at the value: a run param's default counts; an integer is not a float's
  // type problem, but 1.5 for an integer is.
  CHECK(has("p.toml:20:43: error: task \"types\": param \"C\" must be number, not string"));
  CHECK(has("hint: declared at steps/train.py:4:11 with default 1.0"));
  CHECK(has("p.toml:20:76: error: task \"types\": param \"max_iter\" must be integer, not number"));
  CHECK_FALSE(has("\"extra\""));  // a parameter of the function, not declared: accepted
  CHECK(has("error: task \"inputs\": train() in steps/train.py has no input \"datset\""));
  CHECK(has("error: task \"inputs\": train() in steps/train.py needs input \"dataset\""));
  CHECK(has("p.toml:31:50: error: task \"function\": steps/train.py has no function \"trian\""));
  CHECK(has("hint: did you mean \"train\"?"));
  CHECK(has("p.toml:36:21: error: task \"missing\": script steps/nope.py does not exist"));
  CHECK(has("error: task \"syntax\": steps/broken.py:3:7 invalid syntax"));
  CHECK(has("8 errors"));
  // Read with ast: nothing in the script ran.
  CHECK_FALSE(std::filesystem::exists(dir.file("steps/train.py.ran")));

  // The shipped Python DAG validates clean; `sluice run` refuses the bad one before it starts.
  CHECK(RunSluice({"dag", "validate", testing::SourcePath("dags/wine_sklearn.toml")}).exit_code ==
        0);
  const testing::CommandResult run =
      RunSluice({"run", dir.file("p.toml"), "--state-dir", dir.file("state")});
  CHECK(run.exit_code == 1);
  CHECK_FALSE(std::filesystem::exists(dir.file("steps/train.py.ran")));
}

// Issue 16: a step that ignores cancellation is stopped: SIGTERM, the grace period, then
// SIGKILL of its process group. This one ignores SIGTERM and has a child of its own.
TEST_CASE("Cli.PythonStep.AStepThatIgnoresSigtermIsKilledWithItsChildren" * testing::Timeout(60)) {
  testing::TempDir dir;
  testing::WriteFile(dir.file("stubborn.py"), R"PY(import os, signal, subprocess, time
from sluice import step

@step(params={"pids": ""})
def stubborn(ctx, pids):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen(["sleep", "300"])
    with open(pids, "w") as f:
        f.write(f"{os.getpid()} {child.pid}\n")
    print("ignoring SIGTERM", flush=True)
    while True:
        time.sleep(0.1)
)PY");
  testing::WriteFile(dir.file("p.toml"),
                     "[dag]\nid = \"stubborn\"\n[[task]]\nid = \"s\"\n"
                     "plugin = \"python.function\"\ntimeout = \"2s\"\n"
                     "params = { script = \"stubborn.py\", pids = \"" +
                         dir.file("pids") + "\", kill_grace_seconds = 1 }\n");
  const std::string state = dir.file("state");
  const testing::CommandResult r = RunSluice({"run", dir.file("p.toml"), "--state-dir", state});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  std::map<std::string, json> tries = Tries(state);
  CHECK_MESSAGE(tries["s"]["reason"].get<std::string>().find("timed out") != std::string::npos,
                tries["s"].dump());
  std::istringstream pids(testing::ReadFile(dir.file("pids")));
  int python = 0;
  int child = 0;
  pids >> python >> child;
  REQUIRE(python > 0);
  REQUIRE(child > 0);
  // Both are gone (reaped, or at worst zombies of an init that has not reaped them yet).
  auto gone = [](int pid) {
    if (kill(pid, 0) != 0) return true;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const size_t close = text.rfind(')');
    return close != std::string::npos && text.size() > close + 2 && text[close + 2] == 'Z';
  };
  CHECK(testing::WaitFor([&] { return gone(python) && gone(child); }));
  const std::string log = RunSluice({"logs", tries["s"]["run_id"], "s", "--state-dir", state}).out;
  CHECK(log.find("ignoring SIGTERM") != std::string::npos);
}

// Issue 17: a timeout cancels the try rather than kill it at once (Airflow's on_kill): the
// Python step gets SIGTERM, its finally block runs, and the try says it stopped.
TEST_CASE("Cli.PythonStep.ATimeoutCancelsTheStepAndItsFinallyBlockRuns" * testing::Timeout(60)) {
  testing::TempDir dir;
  testing::WriteFile(dir.file("slow.py"), R"PY(import time
from sluice import step

@step(params={"marker": ""})
def slow(ctx, marker):
    try:
        time.sleep(60)
    finally:
        with open(marker, "w") as f:
            f.write("cleaned up")
)PY");
  testing::WriteFile(dir.file("p.toml"),
                     "[dag]\nid = \"slow\"\n[[task]]\nid = \"s\"\nplugin = \"python.function\"\n"
                     "timeout = \"1s\"\ntimeout_grace = \"20s\"\n"
                     "params = { script = \"slow.py\", marker = \"" +
                         dir.file("marker") + "\" }\n");
  const std::string state = dir.file("state");
  const testing::CommandResult r = RunSluice({"run", dir.file("p.toml"), "--state-dir", state});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  CHECK(Tries(state)["s"]["reason"] == "timed out after 1s; the step stopped when cancelled");
  CHECK(testing::ReadFile(dir.file("marker")) == "cleaned up");
}

// The fork server (plugins/python/fork_server.h): the tries of one worker are forked from
// one waiting interpreter, and each is still the process a fresh interpreter would be: its
// own pid, folder, socket and argv; atexit handlers run; exit codes and signals are
// reported. A fresh_interpreter task is spawned by the worker itself, and a server killed
// during a try fails that try saying so.
TEST_CASE("Cli.PythonStep.ForkServedTriesAreFreshProcesses" * testing::Timeout(120)) {
  testing::TempDir dir;
  testing::WriteFile(dir.file("probe.py"), R"PY(import atexit, json, os, signal, sys, time
from sluice import step

@step(params={"out": "", "mode": "ok"})
def probe(ctx, out, mode):
    with open(f"/proc/{os.getppid()}/stat") as f:
        grandparent = int(f.read().rpartition(")")[2].split()[1])
    info = {"pid": os.getpid(), "ppid": os.getppid(), "grandparent": grandparent,
            "argv": sys.argv, "in_scratch": os.getcwd() == ctx.scratch_dir,
            "socket": os.environ["SLUICE_STEP_SOCKET"]}
    with open(out, "w") as f:
        json.dump(info, f)
    atexit.register(lambda: open(out + ".atexit", "w").write("ran"))
    print("probed", flush=True)
    if mode == "exit3":
        sys.exit(3)
    if mode == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "lose":
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(0.5)
)PY");
  auto task = [&](const std::string& id, const std::string& extra) {
    return "[[task]]\nid = \"" + id + "\"\nplugin = \"python.function\"\n" +
           "params = { script = \"probe.py\", out = \"" + dir.file(id + ".json") + "\"" + extra +
           " }\n";
  };
  testing::WriteFile(dir.file("p.toml"), "[dag]\nid = \"probe\"\n" + task("a", "") + task("b", "") +
                                             task("fresh", ", fresh_interpreter = true") +
                                             task("exit3", ", mode = \"exit3\"") +
                                             task("kill", ", mode = \"kill\""));
  const std::string state = dir.file("state");
  const testing::CommandResult r =
      RunSluice({"run", dir.file("p.toml"), "--state-dir", state, "--workers", "1"});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);  // exit3 and kill fail
  std::map<std::string, json> tries = Tries(state);
  CHECK(tries["a"]["state"] == "success");
  CHECK(tries["b"]["state"] == "success");
  CHECK(tries["fresh"]["state"] == "success");
  CHECK_MESSAGE(tries["exit3"]["reason"].get<std::string>().find("code 3") != std::string::npos,
                tries["exit3"].dump());
  CHECK_MESSAGE(tries["kill"]["reason"].get<std::string>().find("signal 9") != std::string::npos,
                tries["kill"].dump());
  std::map<std::string, json> probe;
  for (const char* id : {"a", "b", "fresh", "exit3", "kill"}) {
    probe[id] = json::parse(testing::ReadFile(dir.file(std::string(id) + ".json")));
    CHECK(probe[id]["argv"] == json::array({"-c", dir.file("probe.py"), ""}));
    CHECK(probe[id]["in_scratch"] == true);
  }
  const json worker = probe["fresh"]["ppid"];  // spawned by the worker itself
  CHECK(probe["a"]["pid"] != probe["b"]["pid"]);
  CHECK(probe["a"]["socket"] != probe["b"]["socket"]);
  CHECK(probe["a"]["ppid"] == probe["b"]["ppid"]);  // one server forked both
  CHECK(probe["a"]["ppid"] != worker);
  CHECK(probe["a"]["grandparent"] == worker);  // and it is the worker's child
  CHECK(std::filesystem::exists(dir.file("a.json.atexit")));
  CHECK(std::filesystem::exists(dir.file("exit3.json.atexit")));
  CHECK_FALSE(std::filesystem::exists(dir.file("kill.json.atexit")));
  const std::string log = RunSluice({"logs", tries["a"]["run_id"], "a", "--state-dir", state}).out;
  CHECK(log.find("probed") != std::string::npos);

  testing::WriteFile(dir.file("lose.toml"),
                     "[dag]\nid = \"lose\"\n" + task("lose", ", mode = \"lose\""));
  const std::string lost_state = dir.file("lost");
  const testing::CommandResult lost =
      RunSluice({"run", dir.file("lose.toml"), "--state-dir", lost_state});
  CHECK(lost.exit_code == 1);
  const std::string why = Tries(lost_state)["lose"]["reason"].get<std::string>();
  CHECK_MESSAGE(why.find("fork server died") != std::string::npos, why);
}

// Issue 16: sluice.client from a notebook, against a real daemon: trigger with params and
// wait, read metrics, params and tags, compare, search by tag and metric, and the API's
// errors as exceptions. The script asserts; the test checks it ran to its end.
TEST_CASE("Cli.PythonClient.TriggerWaitMetricsCompareAndSearch" * testing::Timeout(120)) {
  testing::TempDir dir;
  testing::WriteFile(dir.file("dags/toy.py"), R"PY(from sluice import step

@step(params={"lr": 0.1})
def train(ctx, lr):
    for i in range(3):
        ctx.metric("loss", lr / (i + 1), step=i)
    ctx.metric("score", lr * 10)
    ctx.tag("team", "ml")
)PY");
  testing::WriteFile(dir.file("dags/toy.toml"), R"([dag]
id = "toy"
[params]
lr = 0.1
[[task]]
id = "train"
plugin = "python.function"
params = { script = "toy.py", lr = "{{ params.lr }}" }
)");
  testing::WriteFile(dir.file("notebook.py"), R"PY(import sys
from sluice.client import Client, ApiError

c = Client(state_dir=sys.argv[1])
runs = [c.trigger("toy", params={"lr": lr}, tags={"sweep": "a"}, wait=True, timeout=60)
        for lr in (0.1, 0.5, 0.3)]
assert [r["state"] for r in runs] == ["success"] * 3, runs
other = c.trigger("toy", params={"lr": 0.9}, wait=True, timeout=60)
second = runs[1]["run_id"]
assert c.metrics(second) == {"train": {"loss": 0.5 / 3, "score": 5.0}}, c.metrics(second)
assert c.params(second) == {"lr": 0.5}, c.params(second)
assert c.tags(second) == {"sweep": "a", "team": "ml"}, c.tags(second)
assert c.metric_history(second, "train", "loss") == [(0, 0.5), (1, 0.25), (2, 0.5 / 3)]
rows = {r["key"]: r for r in c.compare([r["run_id"] for r in runs])["rows"]}
assert rows["params.lr"]["values"] == [0.1, 0.5, 0.3] and rows["params.lr"]["differs"], rows

found = c.search_runs("toy", tags={"sweep": "a"}, where=[("train.score", ">=", 2)],
                      order_by="train.score desc")
assert [f["params"]["lr"] for f in found] == [0.5, 0.3], found
assert [f["params"]["lr"] for f in c.search_runs("toy", order_by="params.lr")] == \
    [0.1, 0.3, 0.5, 0.9]
assert c.search_runs("toy", where=[("tags.team", "==", "ml"), ("params.lr", ">", 0.8)])[0][
    "run_id"] == other["run_id"]
try:
    c.trigger("toy", params={"nope": 1})
    raise AssertionError("an unknown param was accepted")
except ApiError as e:
    assert e.status == 400 and 'no param "nope"' in e.message, e
try:
    c.get_run("no-such-run")
    raise AssertionError("an unknown run was found")
except ApiError as e:
    assert e.status == 404, e
try:
    Client(server=c.server, token="wrong").list_runs()
    raise AssertionError("a wrong token was accepted")
except ApiError as e:
    assert e.status == 401, e
print("notebook done")
)PY");
  const std::string state = dir.file("state");
  const int pid = testing::SpawnSluice(
      {"serve", "--dags", dir.file("dags"), "--state-dir", state, "--listen", "127.0.0.1:0"},
      dir.file("serve.log"));
  REQUIRE(pid > 0);
  testing::DaemonPort(state);
  INFO(testing::ReadFile(dir.file("serve.log")));
  const std::string command = "PYTHONPATH=" + testing::SourcePath("sdk/python") +
                              " /usr/bin/python3 " + dir.file("notebook.py") + " " + state +
                              " 2>&1";
  std::string out;
  if (FILE* p = popen(command.c_str(), "r")) {
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    const int status = pclose(p);
    CHECK_MESSAGE(status == 0, out);
  }
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
  CHECK_MESSAGE(out.find("notebook done") != std::string::npos, out);
}

}  // namespace
}  // namespace sluice
