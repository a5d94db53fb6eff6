// `sluice run` and the commands that read its state, driving the real binary with real
// workers and plugins.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "test_util.h"

namespace sluice {
namespace {

using nlohmann::json;
using testing::RunSluice;

std::string OnlyRunId(const std::string& state_dir) {
  auto runs = RunSluice({"runs", "list", "--json", "--state-dir", state_dir});
  REQUIRE(runs.exit_code == 0);
  json j = json::parse(runs.out);
  REQUIRE(j.size() == 1);
  return j[0]["run_id"];
}

TEST_CASE("Cli.Run.HelloSucceedsAndLeavesLogsAndEvents" * testing::Timeout(60)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  auto r = RunSluice({"run", testing::SourcePath("dags/hello.toml"), "--state-dir", state,
                      "--param", "greeting=Hi"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("goodbye  success") != std::string::npos);
  CHECK(r.out.find("of DAG hello: success in") != std::string::npos);

  const std::string run_id = OnlyRunId(state);
  auto logs = RunSluice({"logs", run_id, "greet", "--state-dir", state});
  CHECK(logs.exit_code == 0);
  CHECK(logs.out.find("INFO  Hi from hello, run " + run_id) != std::string::npos);
  auto count = RunSluice({"logs", run_id, "count", "--state-dir", state});
  CHECK(count.out.find("INFO  3\n") != std::string::npos);

  // runs show reads the state dir when no daemon owns it, as runs list does (it refused).
  auto shown = RunSluice({"runs", "show", run_id, "--state-dir", state});
  CHECK_MESSAGE(shown.exit_code == 0, shown.err);
  CHECK(shown.out.find("run " + run_id + " of DAG hello: success") != std::string::npos);
  CHECK(shown.out.find("goodbye  1    success") != std::string::npos);
  auto shown_json = RunSluice({"runs", "show", run_id, "--json", "--state-dir", state});
  REQUIRE(shown_json.exit_code == 0);
  CHECK(json::parse(shown_json.out)["run"]["state"] == "success");
  CHECK(json::parse(shown_json.out)["tasks"].size() == 3);
  CHECK(RunSluice({"runs", "show", "nope", "--state-dir", state}).exit_code == 1);

  auto tasks = RunSluice({"tasks", "list", run_id, "--json", "--state-dir", state});
  REQUIRE(tasks.exit_code == 0);
  json t = json::parse(tasks.out);
  REQUIRE(t.size() == 3);
  for (const json& task : t) CHECK(task["state"] == "success");
  CHECK(t[0]["params"]["command"] == "for i in 1 2 3; do echo $i; done");

  auto events = RunSluice({"events", run_id, "--json", "--state-dir", state});
  json e = json::parse(events.out);
  REQUIRE(e.size() == 11);  // run start, 3 x (dispatched, started, success), run end
  CHECK(e.front()["to"] == "running");
  CHECK(e.back()["to"] == "success");
  CHECK(e.back()["actor"].get<std::string>().find("cli:") == 0);

  auto no_task = RunSluice({"logs", run_id, "nope", "--state-dir", state});
  CHECK(no_task.exit_code == 2);
  CHECK(no_task.err.find("has no task \"nope\"") != std::string::npos);
}

TEST_CASE("Cli.Run.FailedRunExitsOneWithReasons" * testing::Timeout(60)) {
  testing::TempDir dir;
  testing::WriteFile(dir.file("fail.toml"), R"([dag]
id = "fails"
[[task]]
id = "crash"
plugin = "core.fail"
params = { mode = "segfault" }
[[task]]
id = "after"
plugin = "core.noop"
depends_on = ["crash"]
)");
  auto r = RunSluice({"run", dir.file("fail.toml"), "--state-dir", dir.file("state")});
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("crash  failed: the worker running the step was killed by signal 11 "
                   "(Segmentation fault)") != std::string::npos);
  CHECK(r.out.find("after  upstream_failed") != std::string::npos);
  CHECK(r.out.find("of DAG fails: failed") != std::string::npos);
}

// Issue 17: a `when` that cannot be evaluated (here it reads an output its upstream did not
// publish; core.shell declares none, so validate cannot know) is a bug in the DAG: the run
// fails and says which task, though its all_done leaf succeeded.
TEST_CASE("Cli.Run.AnUnevaluableWhenFailsTheRunThoughAnAllDoneLeafSucceeds" *
          testing::Timeout(60)) {
  testing::TempDir dir;
  testing::WriteFile(dir.file("when.toml"), R"([dag]
id = "bad_when"
[[task]]
id = "a"
plugin = "core.shell"
params = { command = "true" }
[[task]]
id = "b"
plugin = "core.noop"
depends_on = ["a"]
when = "a.auc > 0.5"
[[task]]
id = "report"
plugin = "core.noop"
depends_on = ["b"]
trigger_rule = "all_done"
)");
  const std::string state = dir.file("state");
  auto r = RunSluice({"run", dir.file("when.toml"), "--state-dir", state});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("b  failed: `when` condition \"a.auc > 0.5\": task \"a\" (success) has no "
                   "output \"auc\"") != std::string::npos);
  CHECK(r.out.find("report  success") != std::string::npos);
  auto runs = json::parse(RunSluice({"runs", "list", "--json", "--state-dir", state}).out);
  REQUIRE(runs.size() == 1);
  CHECK(runs[0]["state"] == "failed");
  const std::string events = RunSluice({"events", runs[0]["run_id"], "--state-dir", state}).out;
  CHECK(events.find("task \"b\": its `when` could not be evaluated") != std::string::npos);
}

TEST_CASE("Cli.Run.ShellAndTouchSteps" * testing::Timeout(60)) {
  testing::TempDir dir;
  // Plain commands skip the shell; anything with shell syntax or a builtin goes through sh.
  // Both must behave as sh would, exit codes and "not found" included.
  testing::WriteFile(dir.file("shell.toml"), R"([dag]
id = "shell"
[[task]]
id = "plain"
plugin = "core.shell"
params = { command = "touch  made.txt", outputs = { made = "made.txt" } }
[[task]]
id = "syntax"
plugin = "core.shell"
params = { command = "cd .. && echo \"in $(pwd)\" > where.txt; cd - > /dev/null; mv ../where.txt .", outputs = { where = "where.txt" } }
[[task]]
id = "fails"
plugin = "core.shell"
params = { command = "false" }
[[task]]
id = "missing"
plugin = "core.shell"
params = { command = "no-such-program-here --flag" }
[[task]]
id = "missing_in_sh"
plugin = "core.shell"
params = { command = "no-such-program-here | cat" }
[[task]]
id = "touch"
plugin = "core.touch"
params = { path = "{{ dag.folder }}/touched" }
[[task]]
id = "touch_nowhere"
plugin = "core.touch"
params = { path = "{{ dag.folder }}/no/such/dir/file" }
)");
  auto r = RunSluice({"run", dir.file("shell.toml"), "--state-dir", dir.file("state")});
  INFO(r.out);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find("plain  success") != std::string::npos);
  CHECK(r.out.find("syntax  success") != std::string::npos);
  CHECK(r.out.find("fails  failed: the step failed: command exited with code 1") !=
        std::string::npos);
  CHECK(r.out.find("missing  failed: the step failed: command exited with code 127 (command not "
                   "found?): no-such-program-here") != std::string::npos);
  // In a pipeline the shell reports it, and `cat` decides the exit code (0): a success.
  CHECK(r.out.find("missing_in_sh  success") != std::string::npos);
  CHECK(std::filesystem::exists(dir.file("touched")));
  CHECK(r.out.find("touch_nowhere  failed: the step failed: cannot touch") != std::string::npos);
}

// Exit codes, as `sluice --help` says: 1 for an invalid DAG (or one the plugins refuse), as
// `dag validate` exits; 2 for bad usage (a param the DAG does not declare).
// Issue 17: one rule for paths in params: relative to the DAG file's folder, wherever
// `sluice run` was started (core.touch resolved against the caller's folder, core.shell's
// working_dir likewise).
TEST_CASE("Cli.Run.RelativePathsInParamsAreRelativeToTheDagFolder" * testing::Timeout(60)) {
  testing::TempDir dir;
  std::filesystem::create_directories(dir.file("project/work"));
  testing::WriteFile(dir.file("project/paths.toml"), R"([dag]
id = "paths"
[[task]]
id = "touch"
plugin = "core.touch"
params = { path = "touched" }
[[task]]
id = "sh"
plugin = "core.shell"
params = { command = "pwd > where", working_dir = "work" }
)");
  auto r = RunSluice({"run", dir.file("project/paths.toml"), "--state-dir", dir.file("state")});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 0);
  CHECK(std::filesystem::exists(dir.file("project/touched")));
  CHECK(testing::ReadFile(dir.file("project/work/where")) == dir.file("project/work") + "\n");
}

TEST_CASE("Cli.Run.InvalidDagExitsOneBadUsageTwoAndNothingIsRecorded" * testing::Timeout(60)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  auto invalid = RunSluice(
      {"run", testing::DataPath("dags/invalid/cycle_two_tasks.toml"), "--state-dir", state});
  CHECK(invalid.exit_code == 1);
  CHECK(invalid.err.find("dependency cycle") != std::string::npos);
  CHECK(invalid.err.find("nothing was run") != std::string::npos);

  auto param = RunSluice({"run", testing::SourcePath("dags/hello.toml"), "--state-dir", state,
                          "--param", "greting=x"});
  CHECK(param.exit_code == 2);
  CHECK(param.err.find("declares no param \"greting\" (declared: greeting)") != std::string::npos);

  testing::WriteFile(dir.file("params.toml"), R"([dag]
id = "wrong_params"
[[task]]
id = "sh"
plugin = "core.shell"
params = { comand = "echo", env = "A=1" }
)");
  auto wrong = RunSluice({"run", dir.file("params.toml"), "--state-dir", state});
  CHECK(wrong.exit_code == 1);
  CHECK(wrong.err.find(dir.file("params.toml") +
                       ":6:12: error: task \"sh\": step \"core.shell\" has no param \"comand\"") !=
        std::string::npos);
  CHECK(wrong.err.find("did you mean \"command\"?") != std::string::npos);
  CHECK(wrong.err.find(":6:35: error: task \"sh\": param \"env\" must be object, not string") !=
        std::string::npos);
  CHECK(wrong.err.find("step \"core.shell\" needs param \"command\"") != std::string::npos);

  auto runs = RunSluice({"runs", "list", "--state-dir", state});
  CHECK(runs.out.find("no runs") != std::string::npos);
}

TEST_CASE("Cli.DagValidate.ChecksParamsAgainstPlugins" * testing::Timeout(60)) {
  testing::TempDir dir;
  testing::WriteFile(dir.file("p.toml"), R"([dag]
id = "p"
[[task]]
id = "s"
plugin = "core.sleep"
params = { seconds = "5" }
[[task]]
id = "x"
plugin = "vendor.thing"
)");
  auto r = RunSluice({"dag", "validate", dir.file("p.toml")});
  CHECK(r.exit_code == 1);
  CHECK(r.out.find(":6:22: error: task \"s\": param \"seconds\" must be number, not string") !=
        std::string::npos);
  // One rule for a step no plugin here provides: an error in validate as in run (issue
  // 17); --no-plugins checks a DAG meant for another machine's plugins.
  CHECK(
      r.out.find(":9:10: error: task \"x\": no installed plugin provides step \"vendor.thing\"") !=
      std::string::npos);
  CHECK(r.out.find("--no-plugins") != std::string::npos);
  auto skip = RunSluice({"dag", "validate", "--no-plugins", dir.file("p.toml")});
  CHECK(skip.exit_code == 0);
  testing::WriteFile(dir.file("only_unknown.toml"),
                     "[dag]\nid = \"u\"\n[[task]]\nid = \"x\"\nplugin = \"vendor.thing\"\n");
  auto validate = RunSluice({"dag", "validate", dir.file("only_unknown.toml")});
  CHECK(validate.exit_code == 1);
  auto run = RunSluice({"run", dir.file("only_unknown.toml"), "--state-dir", dir.file("state")});
  CHECK(run.exit_code == 1);
  CHECK(run.err.find("no installed plugin provides step \"vendor.thing\"") != std::string::npos);
}

// Issue 17: inputs and `when` conditions are checked against the outputs their upstream
// steps declare (C++ manifests and a Python script's @step), with did-you-mean, at the
// output's position; a step that declares none (core.shell) is not checked.
TEST_CASE("Cli.DagValidate.ReferencesAreCheckedAgainstDeclaredOutputs" * testing::Timeout(60)) {
  testing::TempDir dir;
  testing::WriteFile(dir.file("score.py"),
                     "from sluice import step\n\n@step(outputs=[\"auc\"])\n"
                     "def score(ctx):\n    return {\"auc\": 0.9}\n");
  testing::WriteFile(dir.file("refs.toml"), R"([dag]
id = "refs"
[[task]]
id = "prepare"
plugin = "dataprep.csv"
params = { path = "x.csv", target = "y" }
[[task]]
id = "train"
plugin = "train.logistic"
inputs = { dataset = "prepare.datset" }
[[task]]
id = "evaluate"
plugin = "evaluate.classifier"
inputs = { model = "train.model", dataset = "prepare.dataset" }
[[task]]
id = "deploy"
plugin = "core.noop"
depends_on = ["evaluate", "score", "sh"]
when = "evaluate.metrics.auc > 0.9 and score.acu > 0.5 and sh.anything == 1"
[[task]]
id = "score"
plugin = "python.function"
params = { script = "score.py" }
[[task]]
id = "sh"
plugin = "core.shell"
params = { command = "true" }
)");
  auto r = RunSluice({"dag", "validate", dir.file("refs.toml")});
  INFO(r.out << r.err);
  CHECK(r.exit_code == 1);
  CHECK(r.out.find(dir.file("refs.toml") +
                   ":10:31: error: task \"train\" input \"dataset\" reads \"prepare.datset\", "
                   "but step \"dataprep.csv\" of task \"prepare\" declares no output "
                   "\"datset\"") != std::string::npos);
  CHECK(r.out.find("hint: did you mean \"dataset\"?") != std::string::npos);
  CHECK(r.out.find(":19:46: error: task \"deploy\" `when` reads \"score.acu\", but step "
                   "\"python.function\" of task \"score\" declares no output \"acu\"") !=
        std::string::npos);
  CHECK(r.out.find("did you mean \"auc\"?") != std::string::npos);
  CHECK(r.out.find("reads \"evaluate.metrics") == std::string::npos);
  CHECK(r.out.find("reads \"sh.anything") == std::string::npos);
  CHECK(r.out.find("2 errors") != std::string::npos);
}

TEST_CASE("Cli.Run.Kill9ThenResumeFinishesWithoutRedoingSuccess" * testing::Timeout(120)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  const std::string marker = dir.file("b-finished");
  testing::WriteFile(dir.file("chain.toml"), R"([dag]
id = "chain"
[defaults]
retries = 1
retry_delay = "0s"
[[task]]
id = "a"
plugin = "core.shell"
params = { command = "echo a >> )" + dir.file("a-runs") +
                                                 R"(" }
[[task]]
id = "b"
plugin = "core.shell"
depends_on = ["a"]
params = { command = "sleep 2 && touch )" + marker +
                                                 R"(" }
[[task]]
id = "c"
plugin = "core.noop"
depends_on = ["b"]
)");
  int pid = testing::SpawnSluice({"run", dir.file("chain.toml"), "--state-dir", state},
                                 dir.file("first.log"));
  // Wait until b is running, as the state (read-only, beside the writer) shows it.
  bool b_running = false;
  for (int i = 0; i < 200 * testing::TimeScale() && !b_running; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
    auto runs = RunSluice({"runs", "list", "--json", "--state-dir", state});
    if (runs.exit_code != 0 || json::parse(runs.out).empty()) continue;
    auto tasks = RunSluice(
        {"tasks", "list", json::parse(runs.out)[0]["run_id"], "--json", "--state-dir", state});
    if (tasks.exit_code != 0) continue;
    for (const json& t : json::parse(tasks.out))
      b_running |= t["task_id"] == "b" && t["state"] == "running";
  }
  REQUIRE(b_running);
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFSIGNALED(status));
  // The workers saw the engine go and took their process groups with them: b's command
  // never finishes.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  CHECK_FALSE(std::filesystem::exists(marker));

  const std::string run_id = OnlyRunId(state);
  auto resumed = RunSluice({"run", "--resume", run_id, "--state-dir", state});
  CHECK(resumed.exit_code == 0);
  CHECK(std::filesystem::exists(marker));
  CHECK(testing::ReadFile(dir.file("a-runs")) == "a\n");  // a ran once, before the crash

  json tasks =
      json::parse(RunSluice({"tasks", "list", run_id, "--json", "--state-dir", state}).out);
  std::map<std::string, int> last_try;
  for (const json& t : tasks) last_try[t["task_id"]] = t["try_number"];
  CHECK(last_try["a"] == 1);
  CHECK(last_try["b"] == 2);  // the interrupted try counts as a failed try
  CHECK(last_try["c"] == 1);
  std::string events = RunSluice({"events", run_id, "--state-dir", state}).out;
  CHECK(events.find("task b try 1") != std::string::npos);
  CHECK(events.find("interrupted") != std::string::npos);
  CHECK(events.find("resumed") != std::string::npos);

  auto again = RunSluice({"run", "--resume", run_id, "--state-dir", state});
  CHECK(again.exit_code == 2);
  CHECK(again.err.find("already ended") != std::string::npos);
}

TEST_CASE("Cli.Plugins.ListAndShow" * testing::Timeout(60)) {
  auto list = RunSluice({"plugins", "list"});
  CHECK(list.exit_code == 0);
  CHECK(list.out.find("core.shell") != std::string::npos);
  auto show = RunSluice({"plugins", "show", "core.shell"});
  CHECK(show.exit_code == 0);
  CHECK(show.out.find("command") != std::string::npos);
  CHECK(show.out.find("required") != std::string::npos);
  // --json: the plugin's manifest, or the one step's (it printed nothing, exit 0).
  auto plugin_json = RunSluice({"plugins", "show", "core", "--json"});
  REQUIRE(plugin_json.exit_code == 0);
  CHECK(json::parse(plugin_json.out)["name"] == "core");
  CHECK(json::parse(plugin_json.out)["steps"].size() >= 4);
  auto step_json = RunSluice({"plugins", "show", "core.shell", "--json"});
  REQUIRE(step_json.exit_code == 0);
  CHECK(json::parse(step_json.out)["name"] == "core.shell");
  CHECK(step_json.out.find("\"command\"") != std::string::npos);
  auto typo = RunSluice({"plugins", "show", "core.shel"});
  CHECK(typo.exit_code == 2);
  CHECK(typo.err.find("did you mean \"core.shell\"?") != std::string::npos);
  auto refused = RunSluice(
      {"plugins", "list", "--plugin-dir", std::string(SLUICE_TEST_PLUGIN_DIR) + "/abi_major"});
  CHECK(refused.exit_code == 1);
  CHECK(refused.err.find("built for plugin ABI 2.0") != std::string::npos);
}

}  // namespace
}  // namespace sluice
