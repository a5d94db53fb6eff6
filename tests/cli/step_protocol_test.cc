// The step protocol from a core.shell command (issue 16, "Any language"): `sluice step`
// records metrics, publishes values and files, tags, logs and skips, through the real binary,
// real workers and the real core plugin.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace sluice {
namespace {

using nlohmann::json;
using testing::RunSluice;

json RunJson(const std::string& state, const std::vector<std::string>& command) {
  std::vector<std::string> args = command;
  args.insert(args.end(), {"--json", "--state-dir", state});
  auto r = RunSluice(args);
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  return json::parse(r.out);
}

TEST_CASE("Cli.StepProtocol.ShellRecordsMetricsOutputsTagsAndSkips" * testing::Timeout(60)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  testing::WriteFile(dir.file("steps.toml"), R"([dag]
id = "steps"
[[task]]
id = "train"
plugin = "core.shell"
params = { command = """
sluice step metric auc 0.93
for i in 1 2 3; do sluice step metric loss 0.$i --step $i; done
echo weights > model.txt
mkdir -p report && echo ok > report/index.html
sluice step file model model.txt
sluice step dir report report
sluice step value auc 0.93
sluice step value best '{"name": "xgb", "depth": 4}'
sluice step tag framework sh
sluice step log --level warning 'careful now'
sluice step info > info.json && sluice step file info info.json
""" }
[[task]]
id = "deploy"
depends_on = ["train"]
plugin = "core.shell"
when = "train.auc > 0.9"
params = { command = "sluice step skip 'not better than production'" }
[[task]]
id = "bad_metric"
plugin = "core.shell"
params = { command = "sluice step metric auc high" }
[[task]]
id = "skip_then_fail"
plugin = "core.shell"
params = { command = "sluice step skip maybe; exit 3" }
)");
  auto run = RunSluice({"run", dir.file("steps.toml"), "--state-dir", state});
  CHECK(run.exit_code == 1);  // bad_metric and skip_then_fail fail
  const json runs = RunJson(state, {"runs", "list"});
  REQUIRE(runs.size() == 1);
  const std::string run_id = runs[0]["run_id"];

  std::map<std::string, json> tries;
  for (const json& t : RunJson(state, {"tasks", "list", run_id})) tries[t["task_id"]] = t;
  const json& train = tries["train"];
  CHECK(train["state"] == "success");
  CHECK(train["outputs"]["auc"]["value"] == 0.93);
  CHECK(train["outputs"]["best"]["value"]["depth"] == 4);
  CHECK(train["outputs"]["model"]["kind"] == "file");
  CHECK(testing::ReadFile(train["outputs"]["model"]["path"]) == "weights\n");
  CHECK(train["outputs"]["report"]["kind"] == "dir");
  CHECK(train["tags"]["framework"] == "sh");
  const json info = json::parse(testing::ReadFile(train["outputs"]["info"]["path"]));
  CHECK(info["run"]["run_id"] == run_id);
  CHECK(info["run"]["task_id"] == "train");
  CHECK(info["run"]["try_number"] == 1);
  CHECK(info["run"]["idempotency_key"] == "steps/" + run_id + "/train/1");

  // The `when` read the published value; the step then skipped itself.
  CHECK(tries["deploy"]["state"] == "skipped");
  CHECK(tries["deploy"]["reason"].get<std::string>().find("not better than production") !=
        std::string::npos);
  // A refused request fails the command, and its last stderr line is the reason.
  CHECK(tries["bad_metric"]["state"] == "failed");
  CHECK(tries["bad_metric"]["reason"].get<std::string>().find("command exited with code") !=
        std::string::npos);
  CHECK(tries["bad_metric"]["reason"].get<std::string>().find("sluice step metric") !=
        std::string::npos);
  // A skip request does not hide a failed exit.
  CHECK(tries["skip_then_fail"]["state"] == "failed");

  const json metrics = RunJson(state, {"metrics", run_id});
  const json& points = metrics["tasks"]["train"]["metrics"];
  int loss_points = 0;
  for (const json& p : points) {
    if (p["name"] == "loss") {
      ++loss_points;
      CHECK(p["step"] == loss_points);
    }
  }
  CHECK(loss_points == 3);
  CHECK(metrics["tasks"]["train"]["summary"]["auc"]["last"] == 0.93);

  auto log = RunSluice({"logs", run_id, "train", "--state-dir", state});
  CHECK(log.out.find("WARN  careful now") != std::string::npos);
}

TEST_CASE("Cli.StepProtocol.OutsideAStepIsAUsageErrorThatSaysWhy" * testing::Timeout(30)) {
  auto r = RunSluice({"step", "metric", "auc", "0.9"});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("not inside a step: $SLUICE_STEP_SOCKET is not set") != std::string::npos);
}

}  // namespace
}  // namespace sluice
