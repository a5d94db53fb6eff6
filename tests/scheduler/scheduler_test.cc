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

using nlohmann::json;
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
    scheduler_options.rescan = rescan;
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
    for (const RunRecord& r : testing::Must(store_->ListRuns(dag, 1000))) {
      if (r.run_type == "scheduled") out.push_back(r.logical_date.substr(11, 5));
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  Duration rescan = std::chrono::seconds(2);  // of the scheduler, at the next Start
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

TEST_CASE("Scheduler.Catchup.AllLatestNone" * testing::Timeout(30)) {
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

TEST_CASE("Scheduler.Pause.StopsRunsAndUnpauseFollowsCatchup" * testing::Timeout(30)) {
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
  std::vector<Event> events = testing::Must(loop.store_->ListEvents("all", ""));
  REQUIRE(events.size() == 2);
  CHECK(events[0].kind == "dag_paused");
  CHECK(events[0].actor == "api:alice");
  CHECK(events[1].kind == "dag_unpaused");
  CHECK(events[1].actor == "api:bob");
}

// `paused = true` in [dag]: a daemon that first sees the DAG schedules nothing of it (the
// drift example used to retrain and move production as soon as `sluice serve --dags dags`
// started). One unpause ends that for good, across restarts; a pause after it still holds.
TEST_CASE("Scheduler.Pause.PausedInTheFileHoldsUntilUnpausedOnce" * testing::Timeout(30)) {
  Loop loop;
  loop.Dag("held", "[dag]\nid = \"held\"\n" + kHourly + "catchup = \"all\"\npaused = true\n");
  loop.Start();  // 03:00: three intervals are owed
  CHECK(loop.scheduler_->paused("held"));
  CHECK(loop.Runs("held").empty());
  loop.At(std::chrono::minutes(60));
  CHECK(loop.Runs("held").empty());
  loop.Start();  // a restart: still paused, by the file
  CHECK(loop.Runs("held").empty());

  REQUIRE(loop.scheduler_->SetPaused("held", false, "api:bob").ok());
  loop.scheduler_->Tick();
  loop.Settle();
  CHECK(loop.Runs("held").size() == 4);  // catchup = all: 00:00 .. 03:00
  loop.Start();  // the unpause outlives the restart; the file still says paused = true
  CHECK_FALSE(loop.scheduler_->paused("held"));
  loop.At(std::chrono::minutes(60));
  CHECK(loop.Runs("held").size() == 5);

  REQUIRE(loop.scheduler_->SetPaused("held", true, "api:alice").ok());
  loop.Start();
  CHECK(loop.scheduler_->paused("held"));
}

// `--to 2026-11-13` (a date) takes in that whole day in the DAG's time zone: the 02:30
// Berlin slot of the last day used to be left out, since the date meant 00:00 UTC.
TEST_CASE("Scheduler.Backfill.DatesAreWholeDaysInTheDagsTimeZone" * testing::Timeout(30)) {
  Loop loop;
  loop.Dag("berlin",
           "[dag]\nid = \"berlin\"\nschedule = \"30 2 * * *\"\ntimezone = \"Europe/Berlin\"\n"
           "start_date = 2025-12-01\ncatchup = \"none\"\n");
  loop.Start();  // 2026-01-02T03:00:00Z
  Scheduler::BackfillRequest request;
  request.dag_id = "berlin";
  request.from = *ParseTimeUtc("2025-12-28");
  request.to = *ParseTimeUtc("2025-12-31");
  request.from_is_date = request.to_is_date = true;
  request.dry_run = true;
  StatusOr<json> plan = loop.scheduler_->CreateBackfill(request);
  REQUIRE_MESSAGE(plan.ok(), plan.status().ToString());
  std::vector<std::string> dates;
  for (const json& item : (*plan)["items"]) dates.push_back(item["logical_date"]);
  // 02:30 in Berlin is 01:30 UTC in winter.
  CHECK(dates == std::vector<std::string>{"2025-12-28T01:30:00Z", "2025-12-29T01:30:00Z",
                                          "2025-12-30T01:30:00Z", "2025-12-31T01:30:00Z"});
  // A time is taken as it is: up to 01:00 UTC on the 31st leaves that day's slot out.
  request.from_is_date = request.to_is_date = false;
  request.to = *ParseTimeUtc("2025-12-31T01:00:00Z");
  plan = loop.scheduler_->CreateBackfill(request);
  REQUIRE(plan.ok());
  CHECK((*plan)["items"].size() == 3);
}

// The DAG's max_active_runs is a ceiling on all of its runs together: a backfill allowed 2 at
// a time on a DAG that allows 1 used to give it 3 active runs (its own 2 and the scheduled one).
TEST_CASE("Scheduler.Backfill.TheDagsMaxActiveRunsCapsEveryRunTogether" * testing::Timeout(30)) {
  Loop loop;
  loop.Dag("one",
           "[dag]\nid = \"one\"\n" + kHourly + "catchup = \"latest\"\nmax_active_runs = 1\n");
  loop.Start();  // 03:00: the latest interval (02:00) gets its scheduled run
  REQUIRE(loop.runner_->active_runs("one") == 1);
  Scheduler::BackfillRequest request;
  request.dag_id = "one";
  request.from = *ParseTimeUtc("2026-01-02T00:00:00Z");
  request.to = *ParseTimeUtc("2026-01-02T01:00:00Z");
  request.max_active_runs = 2;
  StatusOr<json> created = loop.scheduler_->CreateBackfill(request);
  REQUIRE_MESSAGE(created.ok(), created.status().ToString());
  loop.Settle();
  loop.scheduler_->Tick();
  loop.Settle();
  CHECK(loop.runner_->active_runs("one") == 1);
  CHECK(loop.Runs("one") == std::vector<std::string>{"02:00"});
}

TEST_CASE("Scheduler.Limits.EndDateAndMaxActiveRuns" * testing::Timeout(30)) {
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

TEST_CASE("Scheduler.Prepare.LaunchedAtTheBoundaryOrMadeAfresh" * testing::Timeout(30)) {
  Loop loop;
  loop.rescan = Duration::zero();  // every pass rescans, so an edited file is seen at once
  for (const char* id : {"a", "paused", "taken", "edited"}) {
    loop.Dag(id, std::string("[dag]\nid = \"") + id + "\"\n" + kHourly + "catchup = \"none\"\n");
  }
  loop.Start();  // 03:00: catchup none owes nothing yet
  loop.clock_.Advance(std::chrono::minutes(59) + std::chrono::seconds(59) +
                      std::chrono::milliseconds(950));
  const auto four = std::chrono::sys_seconds(
      std::chrono::floor<std::chrono::seconds>(loop.clock_.Now() + std::chrono::milliseconds(50)));
  // Nothing is recorded by preparing.
  CHECK(loop.scheduler_->PrepareDue(four) == 4);
  CHECK(loop.Runs("a").empty());
  CHECK(testing::Must(loop.store_->ListEvents("a", "")).empty());

  // Between preparing and the boundary: a pause, a run that takes a slot, an edited file.
  REQUIRE(loop.scheduler_->SetPaused("paused", true, "api:alice").ok());
  TriggerRequest manual;
  manual.dag = loop.scheduler_->FindDag("taken")->dag;
  manual.run_id = "scheduled__2026-01-02T03:00:00Z";
  manual.triggered_by = "api:bob";
  REQUIRE(loop.runner_->Trigger(manual).ok());
  testing::WriteFile(loop.dir_.file("dags/edited.toml"),
                     "[dag]\nid = \"edited\"\n" + kHourly +
                         "catchup = \"none\"\n[[task]]\nid = \"first\"\nplugin = \"core.noop\"\n"
                         "[[task]]\nid = \"second\"\nplugin = \"core.noop\"\n"
                         "depends_on = [\"first\"]\n");
  loop.At(std::chrono::minutes(0));  // 03:59:59.950: not due yet
  CHECK(loop.Runs("a").empty());
  loop.clock_.Advance(std::chrono::milliseconds(50));
  loop.At(std::chrono::minutes(0));  // 04:00:00.000

  // Only a's prepared run was launched as prepared; it is recorded as created at the
  // boundary, not when it was prepared.
  CHECK(loop.scheduler_->prepared_launched() == 1);
  const std::vector<RunRecord> a = testing::Must(loop.store_->ListRuns("a", 10));
  REQUIRE(a.size() == 1);
  CHECK(a[0].run_id == "scheduled__2026-01-02T03:00:00Z");
  CHECK(a[0].created_at == "2026-01-02T04:00:00.000000Z");
  CHECK(a[0].data_interval_end == "2026-01-02T04:00:00Z");
  CHECK(testing::Must(loop.store_->ListEvents("a", a[0].run_id)).size() >=
        2);  // the run's, its task's
  CHECK(loop.Runs("paused").empty());
  // The slot taken in between keeps its one run.
  const std::vector<RunRecord> taken = testing::Must(loop.store_->ListRuns("taken", 10));
  REQUIRE(taken.size() == 1);
  CHECK(taken[0].triggered_by == "api:bob");
  // The edited DAG's run is made from the new file, not from what was prepared.
  const std::vector<RunRecord> edited = testing::Must(loop.store_->ListRuns("edited", 10));
  REQUIRE(edited.size() == 1);
  StatusOr<RunRecord> stored = loop.store_->GetRun("edited", edited[0].run_id);
  REQUIRE(stored.ok());
  CHECK(stored->dag_source.find("second") != std::string::npos);
  CHECK(testing::Must(loop.store_->ListTries("edited", edited[0].run_id)).size() >= 1);
  // Launched: taken's task (before the boundary), then a's and the edited DAG's first task.
  CHECK(loop.executor_.order == std::vector<std::string>{"t", "t", "first"});
}

}  // namespace
}  // namespace sluice
