// `sluice serve` as an operator runs it: scheduled runs for every owed interval, one per
// slot across kill -9 and restart, and one daemon per state directory.
#include <date/date.h>
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
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
  for (int i = 0; i < 200 * testing::TimeScale(); ++i) {
    runs = Runs(state);
    if (pred(runs)) return runs;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return runs;
}

TEST_CASE("Cli.Serve.OneRunPerOwedIntervalAcrossKill9AndRestart" * testing::Timeout(120)) {
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

// The daemon's listening socket and its HTTP connections stay in the daemon: a worker, and a
// task the worker starts, hold none of them. A task that held the listener kept the port
// bound after kill -9 of the daemon, and the daemon restarted at once on that port failed with
// "Address already in use" (seen in the fault suite).
TEST_CASE("Cli.Serve.WorkersAndTasksHoldNoneOfTheDaemonsSockets" * testing::Timeout(120)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  testing::WriteFile(dir.file("dags/slow.toml"),
                     "[dag]\nid = \"slow\"\n[[task]]\nid = \"a\"\nplugin = \"core.shell\"\n"
                     "params = { command = \"echo started > " +
                         dir.file("started") + "; exec sleep 60\" }\n");
  const std::vector<std::string> args = {"serve",       "--dags", dir.file("dags"),
                                         "--state-dir", state,    "--allow-unauthenticated",
                                         "--workers",   "1"};
  std::vector<std::string> first = args;
  first.insert(first.end(), {"--listen", "127.0.0.1:0"});
  int pid = testing::SpawnSluice(first, dir.file("serve1.log"));
  const unsigned short port = testing::DaemonPort(state);
  // The first worker starts before the listener opens; the one started in its place after a
  // crash is the one that inherited it.
  std::vector<int> workers;
  REQUIRE(testing::WaitFor([&] { return !(workers = testing::WorkerPids(pid)).empty(); }));
  kill(workers.front(), SIGKILL);
  REQUIRE(testing::WaitFor([&] {
    const std::vector<int> now = testing::WorkerPids(pid);
    return !now.empty() && now.front() != workers.front();
  }));
  REQUIRE(testing::HttpCall(port, "POST", "/api/v1/dags/slow/runs", "", "{}").status == 201);
  REQUIRE(testing::WaitFor([&] { return std::filesystem::exists(dir.file("started")); }));

  // Every socket the daemon holds, by inode; then every other process of ours that holds one.
  auto sockets_of = [](int of) {
    std::set<std::string> found;
    std::error_code ec;
    for (const auto& fd :
         std::filesystem::directory_iterator("/proc/" + std::to_string(of) + "/fd", ec)) {
      const std::string target = std::filesystem::read_symlink(fd.path(), ec).string();
      if (!ec && target.rfind("socket:", 0) == 0) found.insert(target);
    }
    return found;
  };
  const std::set<std::string> daemon_sockets = sockets_of(pid);
  REQUIRE(!daemon_sockets.empty());
  std::vector<std::string> holders;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const int other = std::stoi(name);
    if (other == pid || other == getpid()) continue;
    for (const std::string& s : sockets_of(other)) {
      // The worker's channel is a socket pair: its end has its own inode, so it never matches.
      if (daemon_sockets.count(s) != 0) {
        std::string comm = testing::ReadFile("/proc/" + name + "/comm");
        comm.erase(comm.find_last_not_of('\n') + 1);
        holders.push_back(name + " (" + comm + ") holds " + s);
      }
    }
  }
  CHECK_MESSAGE(holders.empty(), [&] {
    std::string all;
    for (const std::string& h : holders) all += h + "\n";
    return all;
  }());

  // And so a daemon killed while the task runs restarts at once on the same port.
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  std::vector<std::string> again = args;
  again.insert(again.end(), {"--listen", "127.0.0.1:" + std::to_string(port)});
  pid = testing::SpawnSluice(again, dir.file("serve2.log"));
  const bool up = testing::WaitFor(
      [&] { return testing::HttpCall(port, "GET", "/api/v1/health").status == 200; }, 30);
  kill(pid, SIGTERM);
  waitpid(pid, &status, 0);
  CHECK_MESSAGE(up, testing::ReadFile(dir.file("serve2.log")));
}

// A daemon whose port is taken stops before it schedules anything: it used to catch up owed
// intervals first, then fail to bind, and leave those runs "running" in the state dir.
TEST_CASE("Cli.Serve.ATakenPortFailsBeforeAnyRunIsCreated" * testing::Timeout(60)) {
  testing::TempDir dir;
  const auto now = std::chrono::floor<std::chrono::minutes>(std::chrono::system_clock::now());
  testing::WriteFile(dir.file("dags/every_minute.toml"),
                     "[dag]\nid = \"every_minute\"\nschedule = \"* * * * *\"\nstart_date = " +
                         FormatTimeUtc(std::chrono::sys_seconds(now - std::chrono::minutes(5))) +
                         "\ncatchup = \"all\"\n[[task]]\nid = \"a\"\nplugin = \"core.noop\"\n");
  // The port is held by another daemon, on a state dir of its own.
  const std::string other = dir.file("other");
  std::filesystem::create_directories(dir.file("none"));
  int holder = testing::SpawnSluice(
      {"serve", "--dags", dir.file("none"), "--state-dir", other, "--listen", "127.0.0.1:0"},
      dir.file("holder.log"));
  const unsigned short port = testing::DaemonPort(other);

  auto r = testing::RunSluice({"serve", "--dags", dir.file("dags"), "--state-dir",
                               dir.file("state"), "--listen", "127.0.0.1:" + std::to_string(port)});
  kill(holder, SIGTERM);
  int status = 0;
  waitpid(holder, &status, 0);
  CHECK(r.exit_code == 2);
  CHECK_MESSAGE(r.err.find("in use") != std::string::npos, r.err);
  // Nothing was scheduled: the state dir holds no run.
  auto listed = testing::RunSluice(
      {"runs", "list", "--json", "--limit", "1000", "--state-dir", dir.file("state")});
  REQUIRE_MESSAGE(listed.exit_code == 0, listed.err);
  CHECK_MESSAGE(json::parse(listed.out).empty(), listed.out);
}

// The README's `sluice serve --dags dags` on a fresh state dir: the scheduled examples run,
// but drift_watch, which retrains and moves production, waits paused for an unpause. It used
// to run at once (and on a state dir with a model, move production to a new version).
TEST_CASE("Cli.Serve.TheShippedDagFolderMovesNoModelUnasked" * testing::Timeout(120)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  int pid = testing::SpawnSluice({"serve", "--dags", testing::SourcePath("dags"), "--state-dir",
                                  state, "--listen", "127.0.0.1:0", "--allow-unauthenticated"},
                                 dir.file("serve.log"));
  // nightly (catchup latest) gets its run at once: the scheduler has acted on the folder.
  json runs = WaitForRuns(state, [](const json& r) {
    for (const json& run : r) {
      if (run["dag_id"] == "nightly") return true;
    }
    return false;
  });
  auto listed = testing::RunSluice({"dags", "list", "--json", "--state-dir", state});
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  size_t nightly = 0;
  for (const json& run : runs) {
    CHECK(run["dag_id"] != "drift_watch");
    nightly += run["dag_id"] == "nightly";
  }
  CHECK_MESSAGE(nightly == 1, testing::ReadFile(dir.file("serve.log")));
  REQUIRE_MESSAGE(listed.exit_code == 0, listed.err);
  bool drift_paused = false;
  const json dags = json::parse(listed.out);
  for (const json& d : dags["dags"]) {
    if (d.value("id", "") == "drift_watch") drift_paused = d.value("paused", false);
  }
  CHECK_MESSAGE(drift_paused, listed.out);
}

// The daemon's log says which task failed a run, and why, not only "failed".
TEST_CASE("Cli.Serve.TheLogNamesTheTaskThatFailedARunAndWhy" * testing::Timeout(60)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  testing::WriteFile(dir.file("dags/boom.toml"),
                     "[dag]\nid = \"boom\"\n[[task]]\nid = \"fine\"\nplugin = \"core.noop\"\n"
                     "[[task]]\nid = \"breaks\"\nplugin = \"core.shell\"\nretries = 1\n"
                     "retry_delay = \"0s\"\nparams = { command = \"echo no disk >&2; exit 3\" }\n");
  int pid = testing::SpawnSluice({"serve", "--dags", dir.file("dags"), "--state-dir", state,
                                  "--listen", "127.0.0.1:0", "--allow-unauthenticated"},
                                 dir.file("serve.log"));
  const unsigned short port = testing::DaemonPort(state);
  CHECK(testing::HttpCall(port, "POST", "/api/v1/dags/boom/runs", "", "{}").status == 201);
  json runs =
      WaitForRuns(state, [](const json& r) { return !r.empty() && r[0]["state"] == "failed"; });
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  const std::string log = testing::ReadFile(dir.file("serve.log"));
  INFO(log);
  CHECK(log.find(": failed: task breaks failed (try 2): ") != std::string::npos);
  CHECK(log.find("exited with code 3") != std::string::npos);
}

// `sluice trigger --follow` watches the run to its end, as `argo submit --watch` does, and
// its exit code is the run's; --wait --json prints the ended run alone. The hint it used to
// give, "follow it: sluice runs show", followed nothing.
TEST_CASE("Cli.Trigger.FollowAndWaitEndWithTheRunsOutcome" * testing::Timeout(60)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  testing::WriteFile(
      dir.file("dags/two.toml"),
      "[dag]\nid = \"two\"\n[params]\nfail = false\n[[task]]\nid = \"first\"\n"
      "plugin = \"core.sleep\"\nparams = { seconds = 1 }\n[[task]]\nid = \"second\"\n"
      "plugin = \"core.shell\"\ndepends_on = [\"first\"]\n"
      "params = { command = \"test {{ params.fail }} = false\" }\n");
  int pid = testing::SpawnSluice({"serve", "--dags", dir.file("dags"), "--state-dir", state,
                                  "--listen", "127.0.0.1:0", "--allow-unauthenticated"},
                                 dir.file("serve.log"));
  testing::DaemonPort(state);
  auto ok = testing::RunSluice({"trigger", "two", "--follow", "--state-dir", state});
  auto bad =
      testing::RunSluice({"trigger", "two", "-p", "fail=true", "--wait", "--state-dir", state});
  auto quiet = testing::RunSluice({"trigger", "two", "--wait", "--json", "--state-dir", state});
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK_MESSAGE(ok.exit_code == 0, ok.out << ok.err);
  CHECK(ok.out.find("  first  running (try 1)") != std::string::npos);
  CHECK(ok.out.find("  second  success (try 1)") != std::string::npos);
  CHECK(ok.out.find("of DAG two: success") != std::string::npos);
  CHECK_MESSAGE(bad.exit_code == 1, bad.out << bad.err);
  CHECK(bad.out.find("of DAG two: failed") != std::string::npos);
  CHECK(bad.out.find("  first  running") == std::string::npos);  // --wait alone: no task lines
  REQUIRE_MESSAGE(quiet.exit_code == 0, quiet.out << quiet.err);
  CHECK(json::parse(quiet.out)["run"]["state"] == "success");
}

TEST_CASE("Cli.Serve.MissingDagFolderIsAClearError" * testing::Timeout(60)) {
  testing::TempDir dir;
  auto r =
      testing::RunSluice({"serve", "--dags", dir.file("nope"), "--state-dir", dir.file("state")});
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("DAG folder " + dir.file("nope") + " does not exist") != std::string::npos);
}

}  // namespace
}  // namespace sluice
