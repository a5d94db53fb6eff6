// Artifacts, lineage, step caching, experiment tracking and the model registry, end to end:
// the real binary, real workers, real plugins (core and the toy `mlops` plugin at two
// versions), a real state dir.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "test_util.h"

namespace sluice {
namespace {

using nlohmann::json;
using testing::RunSluice;

const std::string kMlopsV1 = std::string(SLUICE_TEST_PLUGIN_DIR) + "/mlops_v1";
const std::string kMlopsV2 = std::string(SLUICE_TEST_PLUGIN_DIR) + "/mlops_v2";

// make -> sum -> report, with files, a directory and a value between them.
constexpr const char* kChainDag = R"(
[dag]
id = "chain"
[params]
n = 3
[[task]]
id = "make"
plugin = "core.shell"
params = { command = "seq {{ params.n }} > data.txt; mkdir d; echo a > d/a", outputs = { data = "data.txt", folder = "d" } }
[[task]]
id = "sum"
plugin = "core.shell"
depends_on = ["make"]
cache = true
inputs = { data = "make.data" }
params = { command = "awk '{s+=$1} END {print \"total\", s}' $SLUICE_INPUT_DATA > total.txt", outputs = { total = "total.txt" } }
[[task]]
id = "report"
plugin = "core.shell"
depends_on = ["sum"]
inputs = { total = "sum.total", folder = "make.folder" }
params = { command = "cat $SLUICE_INPUT_TOTAL $SLUICE_INPUT_FOLDER/a > report.txt; test ! -w $SLUICE_INPUT_TOTAL || test $(id -u) = 0", outputs = { report = "report.txt" } }
)";

constexpr const char* kModelDag = R"(
[dag]
id = "toy"
[params]
auc = 0.9
seed = 1
hold = 0
[[task]]
id = "train"
plugin = "mlops.train"
cache = true
params = { auc = "{{ params.auc }}", seed = "{{ params.seed }}" }
[[task]]
id = "deploy"
plugin = "mlops.deploy"
depends_on = ["train"]
inputs = { model = "train.model", auc = "train.auc" }
params = { model_name = "toy", min_auc = 0.8, hold_seconds = "{{ params.hold }}" }
)";

json Json(const testing::CommandResult& r) {
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  return json::parse(r.out);
}

std::string LatestRun(const std::string& state) {
  json runs = Json(RunSluice({"runs", "list", "--json", "--state-dir", state}));
  REQUIRE(!runs.empty());
  return runs[0]["run_id"];
}

// The latest try of `task`.
json Task(const std::string& state, const std::string& run, const std::string& task) {
  json latest;
  for (const json& t : Json(RunSluice({"tasks", "list", run, "--json", "--state-dir", state}))) {
    if (t["task_id"] == task && (latest.is_null() || t["try_number"] > latest["try_number"]))
      latest = t;
  }
  if (latest.is_null()) FAIL("no task " << task);
  return latest;
}

bool Cached(const std::string& state, const std::string& run, const std::string& task) {
  return !Task(state, run, task)["cached_from"].is_null();
}

TEST_CASE("Cli.Mlops.LineageAcrossThreeStepsAndReadOnlyInputs" * testing::Timeout(120)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  testing::WriteFile(dir.file("chain.toml"), kChainDag);
  auto run = RunSluice({"run", dir.file("chain.toml"), "--state-dir", state});
  INFO(run.out, run.err);
  REQUIRE(run.exit_code == 0);
  const std::string run_id = LatestRun(state);

  json artifacts = Json(RunSluice({"artifacts", "list", "--json", "--state-dir", state}));
  std::map<std::string, json> by_output;
  for (const json& a : artifacts) by_output[a["output"]] = a;
  REQUIRE(by_output.size() == 4);  // data, folder, total, report
  CHECK(by_output["folder"]["kind"] == "dir");
  CHECK(by_output["folder"]["files"] == 1);
  // A file's id is its SHA-256: "1\n2\n3\n".
  CHECK(by_output["data"]["id"] ==
        "14c5e74c4b96ccef41cd94db73a9ec3348038ac094feca4fd897cecffa07cdae");

  // Inputs were the read-only object paths.
  json report = Task(state, run_id, "report");
  CHECK(report["inputs"]["total"] == by_output["total"]["id"]);
  CHECK(report["inputs"]["folder"] == by_output["folder"]["id"]);
  const std::string report_id = by_output["report"]["id"];
  json shown = Json(
      RunSluice({"artifacts", "show", report_id.substr(0, 10), "--json", "--state-dir", state}));
  CHECK(testing::ReadFile(shown["path"]) == "total 6\na\n");
  CHECK(shown["produced_by"][0]["task_id"] == "report");

  // Up from the report: report <- (total <- sum <- data <- make), (folder <- make).
  json up = Json(
      RunSluice({"artifacts", "lineage", report_id, "--up", "--json", "--state-dir", state}))["up"];
  REQUIRE(up["tries"].size() == 1);
  const json& made = up["tries"][0];
  CHECK(made["task_id"] == "report");
  CHECK(made["plugin_version"] == "core 1.0.0");
  std::map<std::string, json> read;
  for (const json& a : made["artifacts"]) read[a["as"]] = a;
  REQUIRE(read.count("total") == 1);
  REQUIRE(read.count("folder") == 1);
  CHECK(read["total"]["tries"][0]["task_id"] == "sum");
  CHECK(read["total"]["tries"][0]["artifacts"][0]["tries"][0]["task_id"] == "make");
  CHECK(read["folder"]["tries"][0]["task_id"] == "make");
  // Down from make's data: sum read it, then report read what sum made.
  json down = Json(RunSluice({"artifacts", "lineage", by_output["data"]["id"], "--down", "--json",
                              "--state-dir", state}))["down"];
  REQUIRE(down["tries"].size() == 1);
  CHECK(down["tries"][0]["task_id"] == "sum");
  CHECK(down["tries"][0]["artifacts"][0]["tries"][0]["task_id"] == "report");
  // --depth N follows N levels of tries: 1 is the report's own maker and what it read, no
  // further (--depth 1 printed the root alone, and --depth 2 one level).
  json one = Json(RunSluice({"artifacts", "lineage", report_id, "--up", "--depth", "1", "--json",
                             "--state-dir", state}))["up"];
  REQUIRE(one["tries"].size() == 1);
  CHECK(one["tries"][0]["task_id"] == "report");
  REQUIRE(one["tries"][0]["artifacts"].size() == 2);
  for (const json& a : one["tries"][0]["artifacts"]) CHECK(a["tries"].empty());
  json two = Json(RunSluice({"artifacts", "lineage", report_id, "--up", "--depth", "2", "--json",
                             "--state-dir", state}))["up"];
  size_t second_level = 0;
  for (const json& a : two["tries"][0]["artifacts"]) second_level += a["tries"].size();
  CHECK(second_level == 2);  // sum made total, make made folder
  auto text = RunSluice({"artifacts", "lineage", report_id.substr(0, 8), "--state-dir", state});
  CHECK(text.exit_code == 0);
  CHECK(text.out.find("made by chain/" + run_id + "/sum#1") != std::string::npos);
  CHECK(text.out.find("read by") == std::string::npos);  // nothing read the report yet

  auto missing = RunSluice({"artifacts", "show", "abcdef0", "--state-dir", state});
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find("no artifact abcdef0") != std::string::npos);
  // Nothing of the tries is left behind outside the artifact store.
  CHECK(std::filesystem::is_empty(state + "/work"));
}

TEST_CASE("Cli.Mlops.CacheHitsAndMisses" * testing::Timeout(180)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  testing::WriteFile(dir.file("chain.toml"), kChainDag);
  testing::WriteFile(dir.file("toy.toml"), kModelDag);
  auto chain = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"run", dir.file("chain.toml"), "--state-dir", state, "-q"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = RunSluice(args);
    INFO(r.out, r.err);
    REQUIRE(r.exit_code == 0);
    return LatestRun(state);
  };
  const std::string first = chain({});
  CHECK(!Cached(state, first, "sum"));
  // `make` is not cached and runs again, making the same bytes: sum's input is unchanged.
  const std::string second = chain({});
  CHECK(!Cached(state, second, "make"));
  CHECK(Cached(state, second, "sum"));
  json sum = Task(state, second, "sum");
  CHECK(sum["cached_from"]["run_id"] == first);
  CHECK(sum["reason"] == "cached from run " + first + " (task sum, try 1)");
  CHECK(sum["outputs"] == Task(state, first, "sum")["outputs"]);
  json events = Json(RunSluice({"events", second, "--json", "--state-dir", state}));
  bool event_says_cached = false;
  for (const json& e : events) {
    event_says_cached |= e["task_id"] == "sum" && e["to"] == "success" &&
                         e["reason"].get<std::string>().find("cached from run " + first) == 0;
  }
  CHECK(event_says_cached);
  // The input changed (n): a miss, though sum's own params did not change.
  const std::string third = chain({"--param", "n=4"});
  CHECK(!Cached(state, third, "sum"));
  CHECK(Task(state, third, "sum")["cache_key"] != Task(state, first, "sum")["cache_key"]);
  // --no-cache recomputes (and the cache is refreshed by it).
  const std::string fourth = chain({"--no-cache"});
  CHECK(!Cached(state, fourth, "sum"));
  CHECK(Cached(state, chain({}), "sum"));

  auto toy = [&](const std::string& plugins, std::vector<std::string> extra) {
    std::vector<std::string> args = {
        "run", dir.file("toy.toml"), "--state-dir", state, "--plugin-dir", plugins, "-q"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = RunSluice(args);
    INFO(r.out, r.err);
    REQUIRE(r.exit_code == 0);
    return LatestRun(state);
  };
  CHECK(!Cached(state, toy(kMlopsV1, {}), "train"));
  const std::string hit = toy(kMlopsV1, {});
  CHECK(Cached(state, hit, "train"));
  CHECK(Task(state, hit, "train")["metrics"].size() == 6);  // the cached try's metrics come along
  CHECK(!Cached(state, toy(kMlopsV1, {"--param", "seed=2"}), "train"));  // a param changed
  CHECK(!Cached(state, toy(kMlopsV2, {}), "train"));                     // the plugin changed
  CHECK(Cached(state, toy(kMlopsV2, {}), "train"));
  // deploy is NotCacheable: it always runs.
  CHECK(!Cached(state, hit, "deploy"));
}

TEST_CASE("Cli.Mlops.MetricsAndCompare" * testing::Timeout(120)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  testing::WriteFile(dir.file("toy.toml"), kModelDag);
  auto a = RunSluice({"run", dir.file("toy.toml"), "--state-dir", state, "--plugin-dir", kMlopsV1,
                      "-q", "--tag", "experiment=base", "--note", "first try"});
  REQUIRE(a.exit_code == 0);
  const std::string run_a = LatestRun(state);
  auto b = RunSluice({"run", dir.file("toy.toml"), "--state-dir", state, "--plugin-dir", kMlopsV1,
                      "-q", "--param", "auc=0.95", "--tag", "experiment=better"});
  REQUIRE(b.exit_code == 0);
  const std::string run_b = LatestRun(state);

  json m = Json(RunSluice({"metrics", run_a, "train", "--json", "--state-dir", state}));
  CHECK(m["note"] == "first try");
  const json& train = m["tasks"]["train"];
  CHECK(train["summary"]["loss"]["count"] == 5);
  CHECK(train["summary"]["loss"]["last"].get<double>() == doctest::Approx(0.2));
  CHECK(train["summary"]["loss"]["max"].get<double>() == doctest::Approx(1.0));
  CHECK(train["summary"]["loss"]["last_step"] == 4);
  CHECK(train["tags"]["framework"] == "toy");
  auto csv = RunSluice({"metrics", run_a, "--csv", "--state-dir", state});
  CHECK(csv.out.rfind("dag_id,run_id,task_id,try_number,metric,step,value\n", 0) == 0);
  CHECK(csv.out.find("toy," + run_a + ",train,1,loss,4,0.2") != std::string::npos);
  auto table = RunSluice({"metrics", run_a, "--state-dir", state});
  CHECK(table.out.find("train  auc") != std::string::npos);

  json cmp = Json(RunSluice({"runs", "compare", run_a, run_b, "--json", "--state-dir", state}));
  std::map<std::string, json> rows;
  for (const json& row : cmp["rows"])
    rows[row["section"].get<std::string>() + ":" + row["key"].get<std::string>()] = row;
  CHECK(rows["param:params.auc"]["differs"] == true);
  CHECK(rows["param:train.auc"]["values"] == json::array({0.9, 0.95}));
  CHECK(rows["metric:train.auc"]["differs"] == true);
  CHECK(rows["metric:train.loss"]["differs"] == false);
  CHECK(rows["tag:run.experiment"]["values"] == json::array({"base", "better"}));
  CHECK(rows["tag:train.framework"]["differs"] == false);
  auto text = RunSluice({"runs", "compare", run_a, run_b, "--only-diff", "--state-dir", state});
  CHECK(text.exit_code == 0);
  CHECK(text.out.find("*  metric   train.auc") != std::string::npos);
  CHECK(text.out.find("(+0.05)") != std::string::npos);
  CHECK(text.out.find("train.loss") == std::string::npos);
  auto one = RunSluice({"runs", "compare", run_a, "--state-dir", state});
  CHECK(one.exit_code == 2);
}

TEST_CASE("Cli.Mlops.RegistryGatesPromoteRollbackAndKill9" * testing::Timeout(180)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  testing::WriteFile(dir.file("toy.toml"), kModelDag);
  auto toy = [&](const std::string& auc) {
    auto r = RunSluice({"run", dir.file("toy.toml"), "--state-dir", state, "--plugin-dir", kMlopsV1,
                        "--param", "auc=" + auc});
    INFO(r.out, r.err);
    REQUIRE(r.exit_code == 0);
    return r;
  };
  toy("0.9");
  toy("0.95");
  auto worse = toy("0.93");
  CHECK(worse.out.find("does not beat production v2") != std::string::npos);
  auto gated = toy("0.7");
  CHECK(gated.out.find("below the gate") != std::string::npos);

  json versions = Json(RunSluice({"models", "versions", "toy", "--json", "--state-dir", state}));
  REQUIRE(versions.size() == 2);
  CHECK(versions[1]["metrics"]["auc"].get<double>() == doctest::Approx(0.95));
  CHECK(versions[1]["task_id"] == "train");  // the try that made the model
  // The version's artifact is the model file train made.
  json artifact = Json(
      RunSluice({"artifacts", "show", versions[1]["artifact"], "--json", "--state-dir", state}));
  CHECK(testing::ReadFile(artifact["path"]).find("weights for auc 0.95") == 0);

  auto rollback = RunSluice({"models", "rollback", "toy", "--alias", "production", "--reason",
                             "too slow", "--state-dir", state});
  INFO(rollback.err);
  CHECK(rollback.exit_code == 0);
  CHECK(rollback.out.find("production -> v1") != std::string::npos);
  auto again =
      RunSluice({"models", "rollback", "toy", "--alias", "production", "--state-dir", state});
  CHECK(again.exit_code == 1);
  CHECK(again.err.find("nothing to roll back to") != std::string::npos);
  auto promote = RunSluice({"models", "promote", "toy", "2", "--alias", "production", "--reason",
                            "fixed", "--state-dir", state});
  CHECK(promote.exit_code == 0);
  auto no_version =
      RunSluice({"models", "promote", "toy", "7", "--alias", "production", "--state-dir", state});
  CHECK(no_version.exit_code == 2);
  CHECK(no_version.err.find("has no version 7") != std::string::npos);

  // kill -9 while a deploy try that has registered v3 is still running: v3 and the alias move
  // were durable before the step went on.
  const std::string out = dir.file("held.out");
  const int pid =
      testing::SpawnSluice({"run", dir.file("toy.toml"), "--state-dir", state, "--plugin-dir",
                            kMlopsV1, "--param", "auc=0.99", "--param", "hold=1"},
                           out);
  bool registered = false;
  for (int i = 0; i < 300 * testing::TimeScale() && !registered; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto list = RunSluice({"models", "list", "--json", "--state-dir", state});
    registered = list.exit_code == 0 && json::parse(list.out)[0]["latest_version"] == 3;
  }
  REQUIRE(registered);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  json shown = Json(RunSluice({"models", "show", "toy", "--json", "--state-dir", state}));
  CHECK(shown["model"]["aliases"]["production"]["version"] == 3);
  // Rollback popped v2 and the promote pushed it again: the stack is 1, 2, 3.
  CHECK(shown["model"]["aliases"]["production"]["history"] == json::array({1, 2, 3}));
  std::vector<std::string> whys;
  for (const json& e : shown["history"]) {
    if (e["kind"] == "alias")
      whys.push_back(e["from"].get<std::string>() + "->" + e["to"].get<std::string>());
  }
  CHECK(whys == std::vector<std::string>{"->1", "1->2", "2->1", "1->2", "2->3"});
  // The store opens for writing again after the crash (no stale lock), and is whole.
  auto promote_back =
      RunSluice({"models", "promote", "toy", "2", "--alias", "production", "--state-dir", state});
  CHECK(promote_back.exit_code == 0);
}

TEST_CASE("Cli.Mlops.DeleteRunThenGc" * testing::Timeout(120)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  testing::WriteFile(dir.file("chain.toml"), kChainDag);
  REQUIRE(RunSluice({"run", dir.file("chain.toml"), "--state-dir", state, "-q"}).exit_code == 0);
  const std::string keep = LatestRun(state);
  REQUIRE(RunSluice({"run", dir.file("chain.toml"), "--state-dir", state, "-q", "--param", "n=5",
                     "--no-cache"})
              .exit_code == 0);
  const std::string drop = LatestRun(state);
  json before = Json(RunSluice({"artifacts", "list", "--json", "--state-dir", state}));

  auto nothing = Json(RunSluice({"gc", "--dry-run", "--json", "--state-dir", state}));
  CHECK(nothing["removed"].empty());

  auto del = RunSluice({"runs", "delete", drop, "--state-dir", state});
  INFO(del.err);
  REQUIRE(del.exit_code == 0);
  CHECK(RunSluice({"runs", "show", drop, "--state-dir", state}).exit_code != 0);
  // What only the deleted run made: its data (seq 5) and total; the folder and report may
  // be shared with the kept run (same bytes).
  json dry = Json(RunSluice({"gc", "--dry-run", "--json", "--state-dir", state}));
  CHECK(!dry["removed"].empty());
  json gc = Json(RunSluice({"gc", "--json", "--state-dir", state}));
  CHECK(gc["removed"] == dry["removed"]);
  json after = Json(RunSluice({"artifacts", "list", "--json", "--state-dir", state}));
  CHECK(after.size() == before.size() - gc["removed"].size());
  for (const json& id : gc["removed"]) {
    CHECK(RunSluice({"artifacts", "show", id, "--state-dir", state}).exit_code == 2);
  }
  // The kept run's artifacts are all there, and a run reusing them still hits the cache.
  for (const json& t : Json(RunSluice({"tasks", "list", keep, "--json", "--state-dir", state}))) {
    for (const auto& [name, out] : t["outputs"].items()) {
      CAPTURE(name);
      CHECK(std::filesystem::exists(out["path"].get<std::string>()));
    }
  }
  REQUIRE(RunSluice({"run", dir.file("chain.toml"), "--state-dir", state, "-q"}).exit_code == 0);
  CHECK(Cached(state, LatestRun(state), "sum"));
}

TEST_CASE("Cli.Mlops.ArtifactsAndCacheSurviveKill9" * testing::Timeout(120)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  std::string dag = kChainDag;
  // The report step waits for a flag file, so that the engine can be killed while it runs.
  const std::string flag = dir.file("go");
  const std::string wait = "while [ ! -f " + flag + " ]; do sleep 0.05; done; cat";
  const size_t at = dag.find("cat $SLUICE_INPUT_TOTAL");
  REQUIRE(at != std::string::npos);
  dag.replace(at, 3, wait);
  // An interrupted try is a failed try: one retry lets --resume finish the run.
  dag.insert(dag.find("[[task]]"), "[defaults]\nretries = 1\nretry_delay = \"1s\"\n");
  testing::WriteFile(dir.file("chain.toml"), dag);
  const int pid = testing::SpawnSluice({"run", dir.file("chain.toml"), "--state-dir", state},
                                       dir.file("run.out"));
  // Wait until sum's output is recorded (it is committed with sum's success).
  bool summed = false;
  for (int i = 0; i < 400 * testing::TimeScale() && !summed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto list = RunSluice({"artifacts", "list", "--json", "--state-dir", state});
    if (list.exit_code != 0) continue;
    for (const json& a : json::parse(list.out)) summed |= a["output"] == "total";
  }
  REQUIRE(summed);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  testing::WriteFile(flag, "");

  json artifacts = Json(RunSluice({"artifacts", "list", "--json", "--state-dir", state}));
  CHECK(artifacts.size() == 3);  // data, folder, total
  for (const json& a : artifacts) {
    if (a["kind"] == "value") continue;
    json shown = Json(RunSluice({"artifacts", "show", a["id"], "--json", "--state-dir", state}));
    CHECK(shown["present"] == true);
  }
  const std::string run_id = LatestRun(state);
  auto resumed = RunSluice({"run", "--resume", run_id, "--state-dir", state});
  INFO(resumed.out, resumed.err);
  CHECK(resumed.exit_code == 0);
  CHECK(Task(state, run_id, "report")["state"] == "success");
  // The cache entry sum made before the crash serves the next run.
  REQUIRE(RunSluice({"run", dir.file("chain.toml"), "--state-dir", state, "-q"}).exit_code == 0);
  CHECK(Cached(state, LatestRun(state), "sum"));
  // The killed try's private dir is left over; gc removes it and nothing that is used.
  CHECK(!std::filesystem::is_empty(state + "/work"));
  json gc = Json(RunSluice({"gc", "--json", "--state-dir", state}));
  CHECK(gc["stale_work_dirs"] == 1);
  CHECK(gc["removed"].empty());
  CHECK(std::filesystem::is_empty(state + "/work"));
}

}  // namespace
}  // namespace sluice
