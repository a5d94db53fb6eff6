// The trigger loop with an injected clock: catchup policies, pause and unpause, start/end
// dates, max_active_runs, and a restart on the same store. Runs go to a recording executor;
// the state store is a real RocksDB.
#include "sluice/scheduler.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>

#include "../engine/fakes.h"
#include "test_util.h"

namespace sluice {
namespace {

using testing::FakeExecutor;
using testing::ManualClock;

// A scheduler over one DAG folder, a runner and a store, all restartable as a crash would.
class Loop {
 public:
  Loop() : clock_(io_), executor_(256) {
    auto opened = StateStore::Open(dir_.file("state"));
    REQUIRE(opened.ok());
    store_ = std::move(*opened);
    catalog_ = testing::FakeCatalog({"core.noop"});
  }

  void Dag(const std::string& name, const std::string& dag_header) {
    testing::WriteFile(dir_.file("dags/" + name + ".toml"),
                       dag_header + "[[task]]\nid = \"t\"\nplugin = \"core.noop\"\n");
  }

  void Start() {
    scheduler_.reset();
    executor_.running.clear();
    RunnerOptions options;
    options.state_dir = dir_.file("state");
    options.actor = "test";
    runner_ = std::make_unique<Runner>(io_, store_.get(), &catalog_, &clock_, options);
    runner_->AttachExecutor(&executor_);
    Scheduler::Options scheduler_options;
    scheduler_options.dags_dir = dir_.file("dags");
    scheduler_ = std::make_unique<Scheduler>(io_, store_.get(), runner_.get(), &catalog_, &clock_,
                                             scheduler_options);
    REQUIRE(scheduler_->Start().ok());
    Settle();
  }

  void Settle() {
    io_.restart();
    io_.poll();
    REQUIRE(runner_->Sync().ok());
  }

  void At(std::chrono::minutes since_start) {
    clock_.Advance(since_start);
    scheduler_->Tick();
    Settle();
  }

  // Logical dates (HH:MM) of the scheduled runs of `dag`, oldest first.
  std::vector<std::string> Runs(const std::string& dag) {
    std::vector<std::string> out;
    for (const RunRecord& r : store_->ListRuns(dag, 1000)) {
      if (r.run_type == "scheduled") out.push_back(r.logical_date.substr(11, 5));
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  boost::asio::io_context io_;
  testing::TempDir dir_;
  ManualClock clock_;  // starts at 2026-01-02T03:00:00Z
  FakeExecutor executor_;
  std::unique_ptr<StateStore> store_;
  PluginCatalog catalog_;
  std::unique_ptr<Runner> runner_;
  std::unique_ptr<Scheduler> scheduler_;
};

const std::string kHourly = "schedule = \"@hourly\"\nstart_date = 2026-01-02T00:00:00Z\n";

TEST_CASE("Scheduler.Catchup.AllLatestNone" * doctest::timeout(30)) {
  Loop loop;
  loop.Dag("all", "[dag]\nid = \"all\"\n" + kHourly + "catchup = \"all\"\n");
  loop.Dag("latest", "[dag]\nid = \"latest\"\n" + kHourly + "catchup = \"latest\"\n");
  loop.Dag("none", "[dag]\nid = \"none\"\n" + kHourly + "catchup = \"none\"\n");
  loop.Start();  // 03:00: intervals 00-01, 01-02, 02-03 are due
  CHECK(loop.Runs("all") == std::vector<std::string>{"00:00", "01:00", "02:00"});
  CHECK(loop.Runs("latest") == std::vector<std::string>{"02:00"});
  CHECK(loop.Runs("none").empty());
  loop.At(std::chrono::minutes(60));  // 04:00
  CHECK(loop.Runs("none") == std::vector<std::string>{"03:00"});
  CHECK(loop.Runs("all").size() == 4);
}

TEST_CASE("Scheduler.Pause.StopsRunsAndUnpauseFollowsCatchup" * doctest::timeout(30)) {
  Loop loop;
  loop.Dag("all", "[dag]\nid = \"all\"\n" + kHourly + "catchup = \"all\"\n");
  loop.Dag("none", "[dag]\nid = \"none\"\n" + kHourly + "catchup = \"none\"\n");
  loop.Start();
  REQUIRE(loop.scheduler_->SetPaused("all", true, "api:alice").ok());
  REQUIRE(loop.scheduler_->SetPaused("none", true, "api:alice").ok());
  CHECK(loop.scheduler_->SetPaused("nope", true, "api:alice").code() == Status::Code::kNotFound);
  loop.At(std::chrono::minutes(120));  // 05:00: 03-04 and 04-05 fell due while paused
  CHECK(loop.Runs("all").size() == 3);
  CHECK(loop.Runs("none").empty());

  // A restart keeps the pause.
  loop.Start();
  CHECK(loop.scheduler_->paused("all"));
  CHECK(loop.Runs("all").size() == 3);

  REQUIRE(loop.scheduler_->SetPaused("all", false, "api:bob").ok());
  REQUIRE(loop.scheduler_->SetPaused("none", false, "api:bob").ok());
  loop.scheduler_->Tick();
  loop.Settle();
  // catchup = all: every missed interval; none: not those that ended while paused.
  CHECK(loop.Runs("all") == std::vector<std::string>{"00:00", "01:00", "02:00", "03:00", "04:00"});
  CHECK(loop.Runs("none").empty());
  loop.At(std::chrono::minutes(60));  // 06:00
  CHECK(loop.Runs("none") == std::vector<std::string>{"05:00"});
  std::vector<Event> events = loop.store_->ListEvents("all", "");
  REQUIRE(events.size() == 2);
  CHECK(events[0].kind == "dag_paused");
  CHECK(events[0].actor == "api:alice");
  CHECK(events[1].kind == "dag_unpaused");
  CHECK(events[1].actor == "api:bob");
}

TEST_CASE("Scheduler.Limits.EndDateAndMaxActiveRuns" * doctest::timeout(30)) {
  Loop loop;
  loop.Dag("ended", "[dag]\nid = \"ended\"\n" + kHourly +
                        "end_date = 2026-01-02T01:00:00Z\ncatchup = \"all\"\n");
  loop.Dag("two", "[dag]\nid = \"two\"\n" + kHourly + "catchup = \"all\"\nmax_active_runs = 2\n");
  loop.Start();
  CHECK(loop.Runs("ended") == std::vector<std::string>{"00:00", "01:00"});
  CHECK(loop.Runs("two") == std::vector<std::string>{"00:00", "01:00"});
  // One run of "two" ends: the next owed interval gets its run.
  for (auto it = loop.executor_.running.begin(); it != loop.executor_.running.end(); ++it) {
    if (it->second.request["run"]["dag_id"] != "two") continue;
    const std::string key = it->second.key;
    loop.executor_.running.erase(it);
    loop.runner_->OnFinished(key, {TaskOutcome::Kind::kSuccess, ""});
    break;
  }
  loop.Settle();
  loop.scheduler_->Tick();
  loop.Settle();
  CHECK(loop.Runs("two") == std::vector<std::string>{"00:00", "01:00", "02:00"});
  // A restart creates no second run for any slot.
  loop.Start();
  loop.At(std::chrono::minutes(0));
  CHECK(loop.Runs("ended").size() == 2);
  CHECK(loop.Runs("two").size() == 3);
}

}  // namespace
}  // namespace sluice
