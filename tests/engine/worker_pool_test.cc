// LocalWorkerPool with real worker processes (the built `sluice worker`) running real plugins:
// crashes, hangs, timeouts, floods of output, and a plugin that crashes the worker on load.
#include <doctest/doctest.h>
#include <signal.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>

#include "sluice/local_executor.h"
#include "sluice/plugin_abi.h"
#include "test_util.h"

namespace sluice {
namespace {

using nlohmann::json;

class Collector : public ExecutorListener {
 public:
  void OnStarted(const std::string& key, int64_t pid) override { pids[key] = pid; }
  void OnLog(const std::string& key, int, std::string_view line) override {
    lines[key] += 1;
    bytes[key] += line.size();
    if (last_line[key].empty() || line.find("marker") != std::string_view::npos)
      last_line[key] = std::string(line);
  }
  void OnMetric(const std::string& key, const std::string& name, double value, int64_t) override {
    metrics[key][name] = value;
  }
  void OnOutput(const std::string& key, const std::string& name, const json& output) override {
    outputs[key][name] = output;
  }
  void OnFinished(const std::string& key, TaskOutcome outcome) override {
    finished[key] = std::move(outcome);
  }

  std::map<std::string, int64_t> pids;
  std::map<std::string, size_t> lines;
  std::map<std::string, size_t> bytes;
  std::map<std::string, std::string> last_line;
  std::map<std::string, std::map<std::string, double>> metrics;
  std::map<std::string, json> outputs;
  std::map<std::string, TaskOutcome> finished;
};

class PoolHarness {
 public:
  explicit PoolHarness(size_t workers, Duration heartbeat_timeout = std::chrono::seconds(30)) {
    LocalWorkerPool::Options options;
    options.workers = workers;
    options.worker_command = {SLUICE_BINARY, "worker"};
    options.cancel_grace = std::chrono::milliseconds(500);
    options.heartbeat_timeout = heartbeat_timeout;
    pool = std::make_unique<LocalWorkerPool>(io, options, &collector);
    REQUIRE(pool->Start().ok());
  }

  // Runs the loop until `done` holds (or a generous deadline passes).
  template <typename F>
  void RunUntil(F done) {
    const auto deadline =
        std::chrono::steady_clock::now() +
        std::chrono::milliseconds(static_cast<int64_t>(30000 * testing::TimeScale()));
    while (!done() && std::chrono::steady_clock::now() < deadline) {
      io.restart();
      io.run_for(std::chrono::milliseconds(20));
    }
    REQUIRE(done());
  }

  void Launch(const std::string& key, const std::string& step, json params,
              std::optional<Duration> timeout = std::nullopt,
              std::optional<Duration> timeout_grace = std::nullopt) {
    TaskLaunch launch;
    launch.key = key;
    launch.plugin_file = std::string(SLUICE_PLUGIN_DIR) + "/core.so";
    launch.step = step;
    launch.timeout = timeout;
    launch.timeout_grace = timeout_grace;
    launch.request = {
        {"params", std::move(params)},
        {"inputs", json::object()},
        {"scratch_dir", dir.file(key + "/tmp")},
        {"output_dir", dir.file(key + "/out")},
        {"run", {{"dag_id", "d"}, {"run_id", "r"}, {"task_id", key}, {"try_number", 1}}}};
    pool->Launch(std::move(launch));
  }

  TaskOutcome Wait(const std::string& key) {
    RunUntil([&] { return collector.finished.count(key) > 0; });
    return collector.finished[key];
  }

  boost::asio::io_context io;
  testing::TempDir dir;
  Collector collector;
  std::unique_ptr<LocalWorkerPool> pool;
};

TEST_CASE("WorkerPool.Scan.FindsCoreAndSurvivesAPluginThatCrashesOnLoad" * testing::Timeout(60)) {
  PoolHarness h(1);
  std::optional<StatusOr<PluginCatalog>> result;
  h.pool->ScanPlugins({SLUICE_PLUGIN_DIR, std::string(SLUICE_TEST_PLUGIN_DIR) + "/crash_on_load"},
                      [&](StatusOr<PluginCatalog> c) { result = std::move(c); });
  h.RunUntil([&] { return result.has_value(); });
  REQUIRE_MESSAGE(result->ok(), result->status().ToString());
  const PluginCatalog& catalog = **result;
  CHECK(catalog.FindStep("core.shell") != nullptr);
  REQUIRE(catalog.problems.size() == 1);
  CHECK(catalog.problems[0].message.find("loading it crashed the worker (killed by signal 6") !=
        std::string::npos);
  CHECK(catalog.problems[0].file.find("test_crash_on_load.so") != std::string::npos);
}

TEST_CASE("WorkerPool.Run.SuccessWithLogsMetricsOutputs" * testing::Timeout(60)) {
  PoolHarness h(1);
  h.Launch("ok", "core.shell",
           {{"command", "echo marker-out; echo err >&2; echo data > result.txt"},
            {"outputs", {{"result", "result.txt"}}}});
  TaskOutcome outcome = h.Wait("ok");
  CHECK(outcome.kind == TaskOutcome::Kind::kSuccess);
  CHECK(h.collector.lines["ok"] == 2);
  CHECK(h.collector.last_line["ok"] == "marker-out");
  REQUIRE(h.collector.outputs["ok"].contains("result"));
  const std::string path = h.collector.outputs["ok"]["result"]["path"];
  // Kept out of the scratch dir, which is removed after the try.
  CHECK(path.find(h.dir.file("ok/out")) == 0);
  CHECK(testing::ReadFile(path) == "data\n");
  CHECK(h.collector.pids["ok"] > 0);
}

TEST_CASE("WorkerPool.Run.CrashesAreFailedTriesAndWorkersAreReplaced" * testing::Timeout(60)) {
  PoolHarness h(1);
  h.Launch("segv", "core.fail", {{"mode", "segfault"}});
  TaskOutcome segv = h.Wait("segv");
  CHECK(segv.kind == TaskOutcome::Kind::kCrashed);
  CHECK(segv.message == "the worker running the step was killed by signal 11 (Segmentation fault)");

  h.Launch("abort", "core.fail", {{"mode", "abort"}});
  CHECK(h.Wait("abort").message.find("signal 6 (Aborted)") != std::string::npos);

  h.Launch("exit", "core.fail", {{"mode", "exit"}, {"exit_code", 9}});
  CHECK(h.Wait("exit").message == "the worker running the step exited with code 9");

  h.Launch("throw", "core.fail", {{"mode", "throw"}, {"message", "bad things"}});
  TaskOutcome thrown = h.Wait("throw");
  CHECK(thrown.kind == TaskOutcome::Kind::kFailed);
  CHECK(thrown.message == "bad things");

  // The replacement worker runs the next try normally.
  h.Launch("after", "core.noop", json::object());
  CHECK(h.Wait("after").kind == TaskOutcome::Kind::kSuccess);
  CHECK(h.collector.pids["after"] != h.collector.pids["segv"]);
}

// Issue 17: a timeout cancels the step (Airflow's on_kill), gives it a grace period (the
// pool's, or the task's timeout_grace), then kills the worker's process group, with whatever
// the step left running; a step that stops when cancelled says so.
TEST_CASE("WorkerPool.Run.TimeoutCancelsThenKillsTheProcessGroup" * testing::Timeout(60)) {
  PoolHarness h(1);
  // A shell that leaves a grandchild behind: the whole group must die with the worker.
  const std::string marker = h.dir.file("grandchild-alive");
  h.Launch("hang", "core.shell", {{"command", "(sleep 3; touch " + marker + ") & sleep 60"}},
           std::chrono::milliseconds(300));
  TaskOutcome outcome = h.Wait("hang");
  CHECK(outcome.kind == TaskOutcome::Kind::kTimedOut);
  CHECK(outcome.message ==
        "timed out after 300ms; the step did not stop within its 500ms grace period and the "
        "worker's process group was killed");
  h.Launch("hang2", "core.fail", {{"mode", "hang"}}, std::chrono::milliseconds(200),
           std::chrono::milliseconds(100));
  TaskOutcome hung = h.Wait("hang2");
  CHECK(hung.kind == TaskOutcome::Kind::kTimedOut);
  CHECK(hung.message.find("within its 100ms grace period") != std::string::npos);
  // core.sleep checks for cancellation: it stops, and the try says so.
  h.Launch("sleepy", "core.sleep", {{"seconds", 30}}, std::chrono::milliseconds(200));
  TaskOutcome stopped = h.Wait("sleepy");
  CHECK(stopped.kind == TaskOutcome::Kind::kTimedOut);
  CHECK(stopped.message == "timed out after 200ms; the step stopped when cancelled");
  // Give the orphan the time it would have needed, then check that it never ran.
  boost::asio::steady_timer wait(h.io, std::chrono::milliseconds(3500));
  bool waited = false;
  wait.async_wait([&](boost::system::error_code) { waited = true; });
  h.RunUntil([&] { return waited; });
  CHECK_FALSE(std::filesystem::exists(marker));
}

// Issue 15: the worker serialized plugin-given names with nlohmann's dump, which throws on
// bytes that are not UTF-8: the worker died. They arrive with U+FFFD instead.
TEST_CASE("WorkerPool.Run.NamesThatAreNotUtf8DoNotKillTheWorker" * testing::Timeout(60)) {
  PoolHarness h(1);
  h.Launch("bad", "core.fail", {{"mode", "bad_utf8"}, {"message", ""}});
  const TaskOutcome outcome = h.Wait("bad");
  CHECK_MESSAGE(outcome.kind == TaskOutcome::Kind::kSuccess, outcome.message);
  CHECK(h.collector.metrics["bad"].count("loss\xef\xbf\xbd") == 1);
  CHECK(h.collector.outputs["bad"].contains("caf\xef\xbf\xbd"));
}

TEST_CASE("WorkerPool.Run.MegabytesOfOutputArriveWhole" * testing::Timeout(60)) {
  PoolHarness h(2);
  h.Launch("flood", "core.fail", {{"mode", "flood"}, {"bytes", 8 << 20}});
  h.Launch("printf", "core.shell", {{"command", "yes marker | head -c 3000000"}});
  CHECK(h.Wait("flood").kind == TaskOutcome::Kind::kSuccess);
  CHECK(h.Wait("printf").kind == TaskOutcome::Kind::kSuccess);
  CHECK(h.collector.lines["flood"] == ((8u << 20) + 99) / 100);  // 100-byte lines, rounded up
  CHECK(h.collector.lines["printf"] == 3000000 / 7 + 1);  // "marker\n" is 7 bytes; one partial line
}

TEST_CASE("WorkerPool.Cancel.StopsACooperativeStepAndKillsAStubbornOne" * testing::Timeout(60)) {
  PoolHarness h(2);
  h.Launch("sleepy", "core.sleep", {{"seconds", 30}});
  h.Launch("stubborn", "core.fail", {{"mode", "hang"}});
  h.RunUntil([&] { return h.collector.lines["stubborn"] == 1; });  // it is in its step
  h.pool->Cancel("sleepy");
  h.pool->Cancel("stubborn");
  TaskOutcome sleepy = h.Wait("sleepy");
  CHECK(sleepy.kind == TaskOutcome::Kind::kCancelled);
  // Said once ("cancelled", or "cancelled before it started" on a slow machine), never
  // "cancelled: cancelled".
  CHECK(sleepy.message.rfind("cancelled", 0) == 0);
  CHECK(sleepy.message.find("cancelled: cancelled") == std::string::npos);
  TaskOutcome stubborn = h.Wait("stubborn");
  CHECK(stubborn.kind == TaskOutcome::Kind::kCancelled);
  CAPTURE(stubborn.message);
  CHECK(stubborn.message.find("did not stop within the grace period") != std::string::npos);
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

TEST_CASE("WorkerPool.Limits.MemoryCpuAndFilesApplyToOneTryOnly" * testing::Timeout(60)) {
  PoolHarness h(1);
  auto launch = [&](const std::string& key, json params, ResourceLimits limits) {
    TaskLaunch l;
    l.key = key;
    l.plugin_file = std::string(SLUICE_PLUGIN_DIR) + "/core.so";
    l.step = key.rfind("sh", 0) == 0 ? "core.shell" : "core.fail";
    l.limits = limits;
    l.request = {{"params", std::move(params)},
                 {"inputs", json::object()},
                 {"scratch_dir", h.dir.file(key + "/tmp")},
                 {"output_dir", h.dir.file(key + "/out")},
                 {"run", {{"dag_id", "d"}, {"run_id", "r"}, {"task_id", key}, {"try_number", 1}}}};
    h.pool->Launch(std::move(l));
  };
  ResourceLimits memory;
  memory.memory_bytes = 300ull << 20;
  launch("big", {{"mode", "allocate"}, {"bytes", 1000000000}}, memory);
  TaskOutcome big = h.Wait("big");
  CHECK(big.kind == TaskOutcome::Kind::kFailed);
  CHECK(big.message == "std::bad_alloc (the task's memory limit of 300MiB was reached)");

  // The next try on the same worker has no limit again.
  launch("unlimited", {{"mode", "allocate"}, {"bytes", 500000000}}, {});
  CHECK(h.Wait("unlimited").kind == TaskOutcome::Kind::kSuccess);

  ResourceLimits files;
  files.open_files = 20;
  launch("sh_files", {{"command", "test \"$(ulimit -n)\" = 20"}}, files);
  CHECK(h.Wait("sh_files").kind == TaskOutcome::Kind::kSuccess);
  launch("sh_files_after", {{"command", "test \"$(ulimit -n)\" != 20"}}, {});
  CHECK(h.Wait("sh_files_after").kind == TaskOutcome::Kind::kSuccess);

  ResourceLimits cpu;
  cpu.cpu_time = std::chrono::seconds(1);
  launch("spin", {{"mode", "spin"}}, cpu);
  TaskOutcome spin = h.Wait("spin");
  CHECK(spin.kind == TaskOutcome::Kind::kCrashed);
  CHECK(spin.message.find("signal 24 (CPU time limit exceeded)") != std::string::npos);
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

// Issue 15: with 2 workers, one 20 s task and 40 short ones, 15 short ones waited ~20 s in
// the inbox of the worker running the long one while the other worker sat idle. An idle
// worker now takes back tries that wait behind a running one: every short try ends before
// the long one, and none of them starts on the long one's worker after it.
TEST_CASE("WorkerPool.Dispatch.NoTryWaitsBehindALongOneWhileAWorkerIsIdle" * testing::Timeout(60)) {
  PoolHarness h(2);
  h.Launch("long", "core.sleep", {{"seconds", 4}});
  for (int i = 0; i < 40; ++i)
    h.Launch("short" + std::to_string(i), "core.shell", {{"command", "true"}});
  h.Wait("long");
  const int64_t long_pid = h.collector.pids["long"];
  int behind = 0;
  for (int i = 0; i < 40; ++i) {
    const std::string key = "short" + std::to_string(i);
    // Every short try had ended when the long one did: the loop stops at the long one's end.
    REQUIRE_MESSAGE(h.collector.finished.count(key) == 1, key, " had not ended");
    CHECK(h.collector.finished[key].kind == TaskOutcome::Kind::kSuccess);
    if (h.collector.pids[key] == long_pid) ++behind;
  }
  // The long try's worker may have started a few before it took the long one; none after.
  CHECK(behind == 0);
}

TEST_CASE("WorkerPool.Heartbeat.AStoppedWorkerIsKilledAsLost" * testing::Timeout(60)) {
  PoolHarness h(1, std::chrono::milliseconds(1500));
  h.Launch("frozen", "core.sleep", {{"seconds", 30}});
  h.RunUntil([&] { return h.collector.pids.count("frozen") > 0; });
  // SIGSTOP freezes the worker: no heartbeats, no progress, no exit.
  REQUIRE(kill(static_cast<pid_t>(h.collector.pids["frozen"]), SIGSTOP) == 0);
  TaskOutcome outcome = h.Wait("frozen");
  CHECK(outcome.kind == TaskOutcome::Kind::kLost);
  CHECK(outcome.message.find("sent no heartbeat for") != std::string::npos);
  h.Launch("next", "core.noop", json::object());
  CHECK(h.Wait("next").kind == TaskOutcome::Kind::kSuccess);
}

}  // namespace
}  // namespace sluice
