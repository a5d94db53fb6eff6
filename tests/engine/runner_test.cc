// The run logic against a scripted executor and a manual clock: trigger rules, retries and
// backoff, `when`, inputs, templates, priorities, pools, run outcome and resume. The state
// store is a real RocksDB in a temporary folder.
#include "sluice/runner.h"

#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <map>

#include "fakes.h"
#include "sluice/dag_loader.h"
#include "test_util.h"

namespace sluice {
namespace {

using nlohmann::json;
using Kind = TaskOutcome::Kind;
using testing::FakeExecutor;
using testing::ManualClock;

// A Runner wired to a FakeExecutor, a ManualClock and a real StateStore.
class Harness {
 public:
  explicit Harness(size_t capacity = 8, std::map<std::string, int> pools = {})
      : clock_(io_), executor_(capacity) {
    auto opened = StateStore::Open(dir_.file("state"));
    REQUIRE(opened.ok());
    store_ = std::move(*opened);
    catalog_ = testing::FakeCatalog({"core.noop", "core.shell"});
    Restart(std::move(pools));
  }

  // Drops the runner without letting it finish anything, as a crash would, and makes a new one.
  void Restart(std::map<std::string, int> pools = {}) {
    executor_.running.clear();
    RunnerOptions options;
    options.state_dir = dir_.path().string();
    options.actor = "test";
    options.pools = std::move(pools);
    options.random_seed = 7;
    runner_ = std::make_unique<Runner>(io_, store_.get(), &catalog_, &clock_, options);
    runner_->AttachExecutor(&executor_);
    runner_->OnRunFinished([this](const RunRecord& r) { finished_ = r; });
  }

  RunRecord Trigger(const std::string& text, json params = json::object()) {
    DagLoadResult loaded = LoadDagText(text, "test.toml");
    std::string errors;
    for (const auto& d : loaded.diagnostics.items()) errors += Render(d);
    REQUIRE_MESSAGE(loaded.ok(), errors);
    TriggerRequest request;
    request.dag = std::shared_ptr<const Dag>(std::move(loaded.dag));
    request.dag_source = text;
    request.params = std::move(params);
    StatusOr<RunRecord> run = runner_->Trigger(std::move(request));
    REQUIRE_MESSAGE(run.ok(), run.status().ToString());
    run_ = *run;
    Settle();
    return *run;
  }

  void Settle() {
    io_.restart();
    io_.poll();
  }

  bool IsRunning(const std::string& task) const { return executor_.running.count(task) > 0; }

  void Finish(const std::string& task, Kind kind, json outputs = json::object(),
              std::string message = "") {
    REQUIRE_MESSAGE(IsRunning(task), "task ", task, " is not running");
    const std::string key = executor_.running[task].key;
    executor_.running.erase(task);
    for (auto& [name, output] : outputs.items()) runner_->OnOutput(key, name, output);
    runner_->OnFinished(key, {kind, std::move(message)});
    Settle();
  }

  // The latest recorded state of a task.
  TaskState State(const std::string& task) {
    TaskState state = TaskState::kPending;
    int best = -1;
    for (const TryRecord& t : testing::Must(store_->ListTries(run_.dag_id, run_.run_id))) {
      if (t.task_id == task && t.try_number > best) {
        best = t.try_number;
        state = t.state;
      }
    }
    return state;
  }
  TryRecord Latest(const std::string& task) {
    TryRecord latest;
    latest.try_number = -1;
    for (TryRecord& t : testing::Must(store_->ListTries(run_.dag_id, run_.run_id))) {
      if (t.task_id == task && t.try_number > latest.try_number) latest = std::move(t);
    }
    return latest;
  }

  boost::asio::io_context io_;
  testing::TempDir dir_;
  ManualClock clock_;
  FakeExecutor executor_;
  std::unique_ptr<StateStore> store_;
  PluginCatalog catalog_;
  std::unique_ptr<Runner> runner_;
  RunRecord run_;
  std::optional<RunRecord> finished_;
};

std::string Task(const std::string& id, const std::string& extra = "") {
  return "[[task]]\nid = \"" + id + "\"\nplugin = \"core.noop\"\n" + extra;
}

TEST_CASE("Runner.TriggerRules.Table" * testing::Timeout(60)) {
  // Two upstream tasks end as given; the table says what happens to the downstream task.
  // Upstream outcomes: S success, F failed, K skipped. Expected downstream outcome for the
  // pairs SS, SF, FF, SK, KK, FK: r = it runs, u = upstream_failed, s = skipped.
  struct Row {
    const char* rule;
    const char* expected;
  };
  const char* pairs[] = {"SS", "SF", "FF", "SK", "KK", "FK"};
  const Row rows[] = {
      {"all_success", "ruussu"},
      {"all_failed", "ssrsss"},
      {"all_done", "rrrrrr"},
      {"one_success", "rrurss"},
      {"one_failed", "srrssr"},
      {"none_failed", "ruurru"},
      {"none_failed_min_one_success", "ruursu"},
      {"none_skipped", "rrrsss"},
  };
  for (const Row& row : rows) {
    for (int p = 0; p < 6; ++p) {
      const std::string rule = row.rule;
      const std::string pair = pairs[p];
      const char want = row.expected[p];
      CAPTURE(rule);
      CAPTURE(pair);
      Harness h;
      h.Trigger("[dag]\nid = \"rules\"\n" + Task("a") + Task("b") +
                Task("down", "depends_on = [\"a\", \"b\"]\ntrigger_rule = \"" + rule + "\"\n"));
      REQUIRE(h.IsRunning("a"));
      REQUIRE(h.IsRunning("b"));
      auto finish = [&](const char* task, char how) {
        if (!h.IsRunning(task)) return;
        Kind kind = how == 'S' ? Kind::kSuccess : how == 'F' ? Kind::kFailed : Kind::kSkipped;
        h.Finish(task, kind);
      };
      finish("a", pair[0]);
      finish("b", pair[1]);
      if (want == 'r') {
        REQUIRE(h.IsRunning("down"));
        h.Finish("down", Kind::kSuccess);
        CHECK(h.State("down") == TaskState::kSuccess);
      } else {
        CHECK_FALSE(h.IsRunning("down"));
        CHECK(h.State("down") == (want == 'u' ? TaskState::kUpstreamFailed : TaskState::kSkipped));
      }
      CHECK(h.finished_.has_value());
    }
  }
}

TEST_CASE("Runner.TriggerRules.OneSuccessFiresEarlyAndAlwaysFiresAtOnce" * testing::Timeout(30)) {
  Harness h;
  h.Trigger("[dag]\nid = \"early\"\n" + Task("a") + Task("b") +
            Task("first", "depends_on = [\"a\", \"b\"]\ntrigger_rule = \"one_success\"\n") +
            Task("now", "depends_on = [\"a\"]\ntrigger_rule = \"always\"\n"));
  CHECK(h.IsRunning("now"));  // before a has ended
  h.Finish("a", Kind::kSuccess);
  CHECK(h.IsRunning("first"));  // b still running
  CHECK(h.IsRunning("b"));
}

TEST_CASE("Runner.Retries.ExponentialBackoffOnTheInjectedClock" * testing::Timeout(30)) {
  Harness h;
  h.Trigger("[dag]\nid = \"retry\"\n" +
            Task("t",
                 "retries = 3\nretry_delay = \"10s\"\nretry_backoff = { multiplier = 2, max_delay "
                 "= \"25s\", jitter = 0 }\n"));
  h.Finish("t", Kind::kFailed, json::object(), "boom");
  CHECK(h.State("t") == TaskState::kUpForRetry);
  CHECK(h.Latest("t").reason == "the step failed: boom");
  CHECK(h.Latest("t").retry_at == "2026-01-02T03:00:10.000000Z");
  h.clock_.Advance(std::chrono::milliseconds(9999));
  h.Settle();
  CHECK_FALSE(h.IsRunning("t"));
  h.clock_.Advance(std::chrono::milliseconds(1));
  h.Settle();
  REQUIRE(h.IsRunning("t"));
  CHECK(h.executor_.running["t"].request["run"]["try_number"] == 2);
  CHECK(h.executor_.running["t"].key == "retry/" + h.run_.run_id + "/t/2");

  h.Finish("t", Kind::kCrashed, json::object(), "the worker running the step killed by signal 11");
  h.clock_.Advance(std::chrono::seconds(19));
  h.Settle();
  CHECK_FALSE(h.IsRunning("t"));  // second delay: 20 s
  h.clock_.Advance(std::chrono::seconds(1));
  h.Settle();
  REQUIRE(h.IsRunning("t"));

  h.Finish("t", Kind::kTimedOut, json::object(), "timed out after 1m");
  h.clock_.Advance(std::chrono::seconds(25));  // third delay: 40 s, capped at 25 s
  h.Settle();
  REQUIRE(h.IsRunning("t"));
  CHECK(h.executor_.running["t"].request["run"]["try_number"] == 4);
  h.Finish("t", Kind::kFailed, json::object(), "still broken");
  CHECK(h.State("t") == TaskState::kFailed);
  REQUIRE(h.finished_.has_value());
  CHECK(h.finished_->state == RunState::kFailed);

  // The event log holds every transition with its reason.
  std::vector<Event> events = testing::Must(h.store_->ListEvents("retry", h.run_.run_id));
  int retries = 0;
  for (const Event& e : events) retries += e.to == "up_for_retry";
  CHECK(retries == 3);
  CHECK(events.back().kind == "run_state");
  CHECK(events.back().to == "failed");
}

TEST_CASE("Runner.When.SkipsRunsOrFailsOnUpstreamOutputs" * testing::Timeout(30)) {
  Harness h;
  h.Trigger("[dag]\nid = \"when\"\n[params]\nmin = 0.9\n" + Task("eval") +
            Task("deploy", "depends_on = [\"eval\"]\nwhen = \"eval.auc >= params.min\"\n") +
            Task("report", "depends_on = [\"eval\"]\nwhen = \"eval.auc < params.min\"\n") +
            Task("broken", "depends_on = [\"eval\"]\nwhen = \"eval.missing > 1\"\n") +
            Task("deep", "depends_on = [\"eval\"]\nwhen = \"eval.metrics.f1.macro > 0.5\"\n") +
            Task("nofield", "depends_on = [\"eval\"]\nwhen = \"eval.metrics.recall > 0.5\"\n"));
  h.Finish("eval", Kind::kSuccess,
           json{{"auc", {{"kind", "value"}, {"value", 0.95}}},
                {"metrics", {{"kind", "value"}, {"value", {{"f1", {{"macro", 0.8}}}}}}}});
  // Dotted paths reach into a JSON value; a field that is not there is named.
  CHECK(h.IsRunning("deep"));
  CHECK(h.State("nofield") == TaskState::kFailed);
  CHECK(h.Latest("nofield").reason.find("output \"eval.metrics\" has no field \"recall\"") !=
        std::string::npos);
  CHECK(h.IsRunning("deploy"));
  CHECK(h.State("report") == TaskState::kSkipped);
  CHECK(h.Latest("report").reason == "`when` condition is false: eval.auc < params.min");
  CHECK(h.State("broken") == TaskState::kFailed);
  CHECK(h.Latest("broken").reason.find("has no output \"missing\"") != std::string::npos);
}

TEST_CASE("Runner.Inputs.ResolveToUpstreamOutputsAndTemplatesRender" * testing::Timeout(30)) {
  Harness h;
  h.Trigger(
      "[dag]\nid = \"io\"\n[params]\nname = \"x\"\nrate = 0.5\n" + Task("prep") +
          "[[task]]\nid = \"train\"\nplugin = \"core.shell\"\ndepends_on = [\"prep\"]\n"
          "inputs = { data = \"prep.train\", rows = \"prep.rows\" }\n"
          "params = { command = \"echo {{ params.name }} {{ ds }} {{ task.id }}\", rate = \"{{ "
          "params.rate }}\" }\n" +
          Task("needs_missing", "depends_on = [\"prep\"]\ninputs = { x = \"prep.nothing\" }\n"),
      json{{"name", "override"}});
  h.Finish("prep", Kind::kSuccess,
           json{{"train", {{"kind", "file"}, {"path", "/data/train.csv"}}},
                {"rows", {{"kind", "value"}, {"value", 569}}}});
  REQUIRE(h.IsRunning("train"));
  const json& request = h.executor_.running["train"].request;
  CHECK(request["inputs"]["data"]["path"] == "/data/train.csv");
  CHECK(request["inputs"]["rows"]["value"] == 569);
  CHECK(request["params"]["command"] == "echo override 2026-01-02 train");
  CHECK(request["params"]["rate"] == 0.5);  // one placeholder keeps the number type
  CHECK(h.executor_.running["train"].step == "core.shell");
  CHECK(h.executor_.running["train"].plugin_file == "/fake/core.so");
  CHECK(h.State("needs_missing") == TaskState::kFailed);
  CHECK(h.Latest("needs_missing").reason.find("needs output \"nothing\" of task \"prep\"") !=
        std::string::npos);
}

TEST_CASE("Runner.Dispatch.PriorityThenOrderAndPoolSlots" * testing::Timeout(30)) {
  {
    Harness h(/*capacity=*/1);
    h.Trigger("[dag]\nid = \"prio\"\n" + Task("low", "priority = 1\n") +
              Task("high", "priority = 10\n") + Task("mid", "priority = 5\n"));
    REQUIRE(h.executor_.order.size() == 1);
    h.Finish(h.executor_.order.back(), Kind::kSuccess);
    h.Finish(h.executor_.order.back(), Kind::kSuccess);
    h.Finish(h.executor_.order.back(), Kind::kSuccess);
    CHECK(h.executor_.order == std::vector<std::string>{"high", "mid", "low"});
  }
  {
    Harness h(/*capacity=*/4, {{"gpu", 1}});
    h.Trigger("[dag]\nid = \"pools\"\n" + Task("g1", "pool = \"gpu\"\n") +
              Task("g2", "pool = \"gpu\"\n") + Task("c1") + Task("c2"));
    CHECK(h.IsRunning("g1"));
    CHECK_FALSE(h.IsRunning("g2"));  // the gpu pool has one slot
    CHECK(h.IsRunning("c1"));
    CHECK(h.IsRunning("c2"));
    h.Finish("g1", Kind::kSuccess);
    CHECK(h.IsRunning("g2"));
  }
}

TEST_CASE("Runner.RunState.FailedLeafFailsTheRun" * testing::Timeout(30)) {
  Harness h;
  // b fails, but cleanup (all_done) is the only leaf and succeeds: the run succeeds.
  h.Trigger("[dag]\nid = \"leaf\"\n" + Task("a") + Task("b", "depends_on = [\"a\"]\n") +
            Task("cleanup", "depends_on = [\"b\"]\ntrigger_rule = \"all_done\"\n"));
  h.Finish("a", Kind::kSuccess);
  h.Finish("b", Kind::kFailed);
  h.Finish("cleanup", Kind::kSuccess);
  REQUIRE(h.finished_.has_value());
  CHECK(h.finished_->state == RunState::kSuccess);

  Harness h2;
  h2.Trigger("[dag]\nid = \"leaf2\"\n" + Task("a") + Task("b", "depends_on = [\"a\"]\n") +
             Task("c", "depends_on = [\"b\"]\n"));
  h2.Finish("a", Kind::kFailed);
  CHECK(h2.State("b") == TaskState::kUpstreamFailed);
  CHECK(h2.State("c") == TaskState::kUpstreamFailed);
  REQUIRE(h2.finished_.has_value());
  CHECK(h2.finished_->state == RunState::kFailed);
}

TEST_CASE("Runner.Resume.InFlightTriesAreFailedTriesAndSucceededTasksStay" * testing::Timeout(30)) {
  Harness h;
  const std::string dag = "[dag]\nid = \"crash\"\n[defaults]\nretries = 1\nretry_delay = \"0s\"\n" +
                          Task("a") + Task("b", "depends_on = [\"a\"]\n") +
                          Task("c", "depends_on = [\"b\"]\n") + Task("once", "retries = 0\n");
  h.Trigger(dag);
  h.Finish("a", Kind::kSuccess);
  REQUIRE(h.IsRunning("b"));
  REQUIRE(h.IsRunning("once"));
  const std::string run_id = h.run_.run_id;

  h.Restart();  // the process died with b and once in flight
  StatusOr<RunRecord> resumed = h.runner_->Resume("crash", run_id);
  REQUIRE_MESSAGE(resumed.ok(), resumed.status().ToString());
  h.Settle();
  h.clock_.Advance(Duration(0));
  h.Settle();
  CHECK_FALSE(h.IsRunning("a"));  // it succeeded before the crash: not run again
  REQUIRE(h.IsRunning("b"));
  CHECK(h.executor_.running["b"].request["run"]["try_number"] == 2);
  CHECK(h.State("once") == TaskState::kFailed);  // no retry left
  CHECK(h.Latest("once").reason.find("interrupted") != std::string::npos);
  // An interrupted try and a failed one are retried by the same code, and read the same.
  bool said = false;
  for (const Event& e : testing::Must(h.store_->ListEvents("crash", run_id))) {
    said |= e.task_id == "b" && e.reason.find("interrupted") == 0 &&
            e.reason.find("; try 2 of 2 in 0s") != std::string::npos;
  }
  CHECK(said);
  h.Finish("b", Kind::kSuccess);
  h.Finish("c", Kind::kSuccess);
  REQUIRE(h.finished_.has_value());
  CHECK(h.finished_->state == RunState::kFailed);  // "once" is a failed leaf

  StatusOr<RunRecord> again = h.runner_->Resume("crash", run_id);
  CHECK_FALSE(again.ok());
  CHECK(again.status().message().find("already ended") != std::string::npos);
}

// Issue 15: a resume that ended the run (its only in-flight task had no retry left) recorded
// "failed", then "failed -> running: resumed", and left the run running with an ended_at.
TEST_CASE("Runner.Resume.ThatEndsTheRunLeavesItEnded" * testing::Timeout(30)) {
  Harness h;
  h.Trigger("[dag]\nid = \"end\"\n" + Task("a") + Task("b", "depends_on = [\"a\"]\nretries = 0\n"));
  h.Finish("a", Kind::kSuccess);
  REQUIRE(h.IsRunning("b"));
  const std::string run_id = h.run_.run_id;

  h.Restart();  // killed with b in flight
  StatusOr<RunRecord> resumed = h.runner_->Resume("end", run_id);
  REQUIRE_MESSAGE(resumed.ok(), resumed.status().ToString());
  h.Settle();
  CHECK(resumed->state == RunState::kFailed);
  StatusOr<RunRecord> stored = h.store_->GetRun("end", run_id);
  REQUIRE(stored.ok());
  CHECK(stored->state == RunState::kFailed);
  CHECK_FALSE(stored->ended_at.empty());
  REQUIRE(h.finished_.has_value());
  CHECK(h.finished_->state == RunState::kFailed);
  // The run's own events: resumed first, then the end, and nothing after it.
  std::vector<Event> run_events;
  for (const Event& e : testing::Must(h.store_->ListEvents("end", run_id))) {
    if (e.kind == "run_state") run_events.push_back(e);
  }
  REQUIRE(run_events.size() >= 2);
  CHECK(run_events.back().to == "failed");
  CHECK(run_events.back().reason.find("leaf task \"b\"") != std::string::npos);
  CHECK(run_events[run_events.size() - 2].reason == "resumed");
}

TEST_CASE("Runner.Trigger.UnknownStepCreatesNothing") {
  Harness h;
  DagLoadResult loaded = LoadDagText(
      "[dag]\nid = \"u\"\n[[task]]\nid = \"a\"\nplugin = \"train.nothing\"\n", "u.toml");
  REQUIRE(loaded.ok());
  TriggerRequest request;
  request.dag = std::shared_ptr<const Dag>(std::move(loaded.dag));
  StatusOr<RunRecord> run = h.runner_->Trigger(std::move(request));
  REQUIRE_FALSE(run.ok());
  CHECK(run.status().message().find("train.nothing") != std::string::npos);
  h.Settle();
  CHECK(testing::Must(h.store_->ListRuns("u", 10)).empty());
}

TEST_CASE("Runner.Params.OverridesAreCheckedAgainstTheDeclaredOnes") {
  DagLoadResult loaded = LoadDagText(
      "[dag]\nid = \"p\"\n[params]\nrate = 0.5\nname = \"a\"\nn = 3\nflag = false\n" + Task("a"),
      "p.toml");
  REQUIRE(loaded.ok());
  const DagSpec& spec = loaded.dag->spec();
  auto ok = ResolveRunParams(spec, {"rate=0.25", "name=123", "n=4", "flag=true"});
  REQUIRE(ok.ok());
  CHECK((*ok)["rate"] == 0.25);
  CHECK((*ok)["name"] == "123");
  CHECK((*ok)["n"] == 4);
  CHECK((*ok)["flag"] == true);
  auto unknown = ResolveRunParams(spec, {"rat=1"});
  REQUIRE_FALSE(unknown.ok());
  CHECK(unknown.status().message().find("declares no param \"rat\"") != std::string::npos);
  auto wrong = ResolveRunParams(spec, {"n=many"});
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.status().message().find("expected a value like the default 3") != std::string::npos);
  CHECK_FALSE(ResolveRunParams(spec, {"n=1.5"}).ok());
  CHECK_FALSE(ResolveRunParams(spec, {"novalue"}).ok());
}

TEST_CASE("Runner.Cancel.SkipsWhatHasNotStartedAndStopsWhatRuns" * testing::Timeout(30)) {
  Harness h;
  h.Trigger("[dag]\nid = \"c\"\n" + Task("a") + Task("slow") + Task("b", "depends_on = [\"a\"]\n") +
            Task("cleanup", "depends_on = [\"a\"]\ntrigger_rule = \"all_done\"\n"));
  REQUIRE(h.IsRunning("a"));
  REQUIRE(h.IsRunning("slow"));
  REQUIRE(h.runner_->CancelRun("c", h.run_.run_id, "api:alice").ok());
  h.Settle();
  CHECK(h.executor_.cancelled.size() == 2);
  // Not started: skipped at once, even a task whose trigger rule would run it.
  CHECK(h.State("b") == TaskState::kSkipped);
  CHECK(h.State("cleanup") == TaskState::kSkipped);
  CHECK(h.Latest("cleanup").reason == "run cancelled by api:alice");
  CHECK_FALSE(h.finished_.has_value());  // two tries are still stopping
  h.Finish("a", Kind::kCancelled, json::object(), "cancelled");
  CHECK(h.State("a") == TaskState::kFailed);
  CHECK(h.Latest("a").reason.find("run cancelled by api:alice") == 0);
  h.Finish("slow", Kind::kSuccess);  // it ended before it saw the request
  REQUIRE(h.finished_.has_value());
  CHECK(h.finished_->state == RunState::kFailed);
  std::vector<Event> events = testing::Must(h.store_->ListEvents("c", h.run_.run_id));
  bool by_alice = false;
  for (const Event& e : events) by_alice |= e.task_id == "b" && e.actor == "api:alice";
  CHECK(by_alice);
  CHECK(events.back().reason == "cancelled by api:alice");
  // An ended run cannot be cancelled again.
  Status again = h.runner_->CancelRun("c", h.run_.run_id, "api:alice");
  CHECK(again.code() == Status::Code::kFailedPrecondition);
  CHECK(again.message().find("already ended") != std::string::npos);
}

TEST_CASE("Runner.Clear.RerunsATaskAndItsDownstreamWithNewTries" * testing::Timeout(30)) {
  Harness h;
  const std::string dag = "[dag]\nid = \"cl\"\n" + Task("a") +
                          Task("b", "depends_on = [\"a\"]\nretries = 1\nretry_delay = \"1s\"\n") +
                          Task("c", "depends_on = [\"b\"]\n");
  h.Trigger(dag);
  h.Finish("a", Kind::kSuccess);
  h.Finish("b", Kind::kFailed);
  h.clock_.Advance(std::chrono::seconds(2));
  h.Settle();
  h.Finish("b", Kind::kFailed);
  REQUIRE(h.finished_.has_value());
  REQUIRE(h.finished_->state == RunState::kFailed);
  CHECK(h.State("c") == TaskState::kUpstreamFailed);

  // Naming an unknown task is an error that changes nothing.
  ClearRequest bad{"cl", h.run_.run_id, {"nope"}, true, false, "api:bob"};
  CHECK(h.runner_->ClearTasks(bad).status().code() == Status::Code::kNotFound);
  CHECK(h.store_->GetRun("cl", h.run_.run_id)->state == RunState::kFailed);

  h.finished_.reset();
  ClearRequest clear{"cl", h.run_.run_id, {"b"}, true, false, "api:bob"};
  StatusOr<std::vector<std::string>> cleared = h.runner_->ClearTasks(clear);
  REQUIRE_MESSAGE(cleared.ok(), cleared.status().ToString());
  CHECK(*cleared == std::vector<std::string>{"b", "c"});
  h.Settle();
  CHECK(h.store_->GetRun("cl", h.run_.run_id)->state == RunState::kRunning);
  REQUIRE(h.IsRunning("b"));
  CHECK(h.executor_.running["b"].key == "cl/" + h.run_.run_id + "/b/3");
  // Recorded before it runs: a crash now would not lose the clear of c.
  CHECK(h.Latest("c").state == TaskState::kPending);
  CHECK(h.Latest("c").try_number == 1);

  // Crash, restart: b's interrupted try is a failed try, and the clear gave it its retry back.
  h.Restart();
  REQUIRE(h.runner_->Resume("cl", h.run_.run_id).ok());
  h.Settle();
  CHECK(h.State("b") == TaskState::kUpForRetry);
  h.clock_.Advance(std::chrono::seconds(5));
  h.Settle();
  REQUIRE(h.IsRunning("b"));
  CHECK(h.executor_.running["b"].key == "cl/" + h.run_.run_id + "/b/4");
  h.Finish("b", Kind::kSuccess);
  REQUIRE(h.IsRunning("c"));
  CHECK(h.executor_.running["c"].key == "cl/" + h.run_.run_id + "/c/1");
  h.Finish("c", Kind::kSuccess);
  REQUIRE(h.finished_.has_value());
  CHECK(h.finished_->state == RunState::kSuccess);
  // The earlier tries stay in the history; a is untouched.
  int b_tries = 0;
  for (const TryRecord& t : testing::Must(h.store_->ListTries("cl", h.run_.run_id)))
    b_tries += t.task_id == "b";
  CHECK(b_tries == 4);
  CHECK(h.Latest("a").try_number == 1);
  // The latest try that ran is what logs show, not a placeholder.
  CHECK(h.store_->FindTry("cl", h.run_.run_id, "b", 0)->try_number == 4);
}

TEST_CASE("Runner.Clear.OnlyFailedAndRunningTasksAreRefused" * testing::Timeout(30)) {
  Harness h;
  h.Trigger("[dag]\nid = \"of\"\n" + Task("ok") + Task("bad") + Task("slow"));
  h.Finish("ok", Kind::kSuccess);
  h.Finish("bad", Kind::kFailed);
  ClearRequest running{"of", h.run_.run_id, {"slow"}, false, false, "api:bob"};
  auto refused = h.runner_->ClearTasks(running);
  CHECK(refused.status().code() == Status::Code::kFailedPrecondition);
  CHECK(refused.status().message().find("\"slow\" is queued; only ended tasks") !=
        std::string::npos);
  ClearRequest failed{"of", h.run_.run_id, {}, false, true, "api:bob"};
  auto cleared = h.runner_->ClearTasks(failed);
  REQUIRE(cleared.ok());
  CHECK(*cleared == std::vector<std::string>{"bad"});
  h.Settle();
  CHECK(h.IsRunning("bad"));
  CHECK(h.State("ok") == TaskState::kSuccess);
}

TEST_CASE("Runner.DagrunTimeout.CancelsTheRun" * testing::Timeout(30)) {
  Harness h;
  h.Trigger("[dag]\nid = \"t\"\ndagrun_timeout = \"10s\"\n" + Task("slow") +
            Task("after", "depends_on = [\"slow\"]\n"));
  h.clock_.Advance(std::chrono::seconds(9));
  h.Settle();
  CHECK(h.executor_.cancelled.empty());
  h.clock_.Advance(std::chrono::seconds(2));
  h.Settle();
  REQUIRE(h.executor_.cancelled.size() == 1);
  CHECK(h.State("after") == TaskState::kSkipped);
  h.Finish("slow", Kind::kCancelled, json::object(), "cancelled");
  REQUIRE(h.finished_.has_value());
  CHECK(h.finished_->state == RunState::kFailed);
  CHECK(testing::Must(h.store_->ListEvents("t", h.run_.run_id)).back().reason ==
        "cancelled by dagrun_timeout (10s)");
}

// Issue 17: `dagrun_timeout = "2s"` fired 1.6 s after the start: the deadline was computed
// from the start time cut to whole seconds. A run that starts at .9 of a second is cancelled
// at 2 s, not at 1.1 s.
TEST_CASE("Runner.DagrunTimeout.CountsFromTheStartToTheMicrosecond" * testing::Timeout(30)) {
  Harness h;
  h.clock_.Advance(std::chrono::milliseconds(900));
  h.Trigger("[dag]\nid = \"t\"\ndagrun_timeout = \"2s\"\n" + Task("slow"));
  h.clock_.Advance(std::chrono::milliseconds(1500));
  h.Settle();
  CHECK(h.executor_.cancelled.empty());
  h.clock_.Advance(std::chrono::milliseconds(499));
  h.Settle();
  CHECK(h.executor_.cancelled.empty());
  h.clock_.Advance(std::chrono::milliseconds(1));
  h.Settle();
  CHECK(h.executor_.cancelled.size() == 1);
}

TEST_CASE("Dag.ParseTimeUtcPrecise.KeepsFractionalSeconds") {
  const auto base = std::chrono::sys_days(std::chrono::year(2026) / 1 / 1);
  CHECK(ParseTimeUtcPrecise("2026-01-01T00:00:01.250000Z") ==
        base + std::chrono::milliseconds(1250));
  CHECK(ParseTimeUtcPrecise("2026-01-01T01:00:00.5+01:00") ==
        base + std::chrono::milliseconds(500));
  CHECK(ParseTimeUtc("2026-01-01T00:00:01.999Z") == base + std::chrono::seconds(1));
  CHECK_FALSE(ParseTimeUtcPrecise("2026-01-01T00:00:01.5X").has_value());
}

}  // namespace
}  // namespace sluice
