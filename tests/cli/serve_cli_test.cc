// `sluice serve` as an operator runs it: scheduled runs for every owed interval, one per
// slot across kill -9 and restart, and one daemon per state directory.
#include <date/date.h>
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "sluice/dag.h"
#include "test_util.h"

namespace sluice {
namespace {

using nlohmann::json;

json Runs(const std::string& state) {
  auto r = testing::RunSluice({"runs", "list", "--json", "--limit", "1000", "--state-dir", state});
  if (r.exit_code != 0) return json::array();
  return json::parse(r.out);
}

// Waits until `pred(runs)` holds; returns the last runs seen.
template <typename F>
json WaitForRuns(const std::string& state, F pred) {
  json runs;
  for (int i = 0; i < 200; ++i) {
    runs = Runs(state);
    if (pred(runs)) return runs;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return runs;
}

TEST_CASE("Cli.Serve.OneRunPerOwedIntervalAcrossKill9AndRestart" * doctest::timeout(120)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  const auto now = std::chrono::floor<std::chrono::minutes>(std::chrono::system_clock::now());
  const auto start = std::chrono::sys_seconds(now - std::chrono::minutes(5));
  testing::WriteFile(dir.file("dags/every_minute.toml"),
                     "[dag]\nid = \"every_minute\"\nschedule = \"* * * * *\"\nstart_date = " +
                         FormatTimeUtc(start) +
                         "\ncatchup = \"all\"\nmax_active_runs = 2\n[[task]]\nid = \"a\"\nplugin = "
                         "\"core.noop\"\n");

  int pid = testing::SpawnSluice({"serve", "--dags", dir.file("dags"), "--state-dir", state},
                                 dir.file("serve1.log"));
  // Five intervals have ended (start .. start+4m); two at a time, each as the last ends.
  json runs = WaitForRuns(state, [](const json& r) {
    size_t done = 0;
    for (const json& run : r) done += run["state"] == "success";
    return done >= 5;
  });
  // A second daemon on the same state directory is refused.
  auto second = testing::RunSluice({"serve", "--dags", dir.file("dags"), "--state-dir", state});
  CHECK(second.exit_code == 2);
  CHECK(second.err.find("in use by another Sluice process") != std::string::npos);

  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  pid = testing::SpawnSluice({"serve", "--dags", dir.file("dags"), "--state-dir", state},
                             dir.file("serve2.log"));
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  kill(pid, SIGTERM);
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);

  runs = Runs(state);
  // Every run is a scheduled run of one minute slot, the slots are consecutive from
  // start_date, and none is in the future: no slot skipped, none doubled.
  std::set<std::string> ids;
  for (const json& run : runs) {
    ids.insert(run["run_id"].get<std::string>());
    CHECK(run["run_type"] == "scheduled");
  }
  REQUIRE(ids.size() == runs.size());
  REQUIRE(ids.size() >= 5);
  const auto later = std::chrono::system_clock::now();
  size_t k = 0;
  for (auto slot = start; slot + std::chrono::minutes(1) <= later;
       slot += std::chrono::minutes(1), ++k) {
    CHECK(ids.count("scheduled__" + FormatTimeUtc(slot)) == 1);
  }
  CHECK(ids.size() == k);
  const json& first = *std::find_if(runs.begin(), runs.end(), [&](const json& r) {
    return r["run_id"] == "scheduled__" + FormatTimeUtc(start);
  });
  CHECK(first["data_interval_start"] == FormatTimeUtc(start));
  CHECK(first["data_interval_end"] == FormatTimeUtc(start + std::chrono::minutes(1)));
  CHECK(first["logical_date"] == FormatTimeUtc(start));
}

TEST_CASE("Cli.Serve.MissingDagFolderIsAClearError" * doctest::timeout(60)) {
  testing::TempDir dir;
  auto r =
      testing::RunSluice({"serve", "--dags", dir.file("nope"), "--state-dir", dir.file("state")});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("DAG folder " + dir.file("nope") + " does not exist") != std::string::npos);
}

}  // namespace
}  // namespace sluice
