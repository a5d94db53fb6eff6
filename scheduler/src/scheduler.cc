#include "sluice/scheduler.h"

#include <date/date.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdio>
#include <set>

#include "sluice/cron.h"
#include "sluice/dag_loader.h"
#include "sluice/intervals.h"
#include "sluice/plugin_check.h"
#include "src/run_ids.h"

namespace sluice {

namespace fs = std::filesystem;
using std::chrono::sys_seconds;

struct Scheduler::Timer {
  explicit Timer(boost::asio::io_context& io) : timer(io) {}
  boost::asio::steady_timer timer;
};

namespace {

// The logical date a scheduled run id names, if it is one.
std::optional<sys_seconds> LogicalDateOf(const std::string& run_id) {
  if (run_id.rfind(kScheduledPrefix, 0) != 0) return std::nullopt;
  int y, mo, d, h, mi, s;
  if (std::sscanf(run_id.c_str() + kScheduledPrefix.size(), "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d, &h,
                  &mi, &s) != 6) {
    return std::nullopt;
  }
  const date::year_month_day ymd{date::year(y), date::month(static_cast<unsigned>(mo)),
                                 date::day(static_cast<unsigned>(d))};
  return sys_seconds(date::sys_days(ymd).time_since_epoch()) + std::chrono::hours(h) +
         std::chrono::minutes(mi) + std::chrono::seconds(s);
}

TriggerRequest ScheduledRequest(const Scheduler::DagEntry& entry, const DataInterval& interval) {
  TriggerRequest request;
  request.dag = entry.dag;
  request.dag_source = entry.source;
  request.run_type = "scheduled";
  request.logical_date = interval.start;
  request.data_interval_end = interval.end;
  request.run_id = ScheduledRunId(interval.start);
  return request;
}

// How long after a fire time the loop wakes: the floor to whole seconds must see it due.
constexpr std::chrono::microseconds kFireSlack(200);

}  // namespace

Scheduler::Scheduler(boost::asio::io_context& io, StateStore* store, Runner* runner,
                     const PluginCatalog* catalog, Clock* clock, Options options)
    : io_(io),
      store_(store),
      runner_(runner),
      catalog_(catalog),
      clock_(clock),
      options_(std::move(options)),
      timer_(std::make_unique<Timer>(io)) {}

Scheduler::~Scheduler() { Stop(); }

Status Scheduler::Start() {
  started_ = std::chrono::floor<std::chrono::seconds>(clock_->Now());
  std::error_code ec;
  if (!fs::is_directory(options_.dags_dir, ec)) {
    return Status::NotFound("DAG folder " + options_.dags_dir +
                            " does not exist (pass --dags DIR)");
  }
  // Unfinished runs of an earlier process go on first, so that their tries are retried before
  // anything new is owed.
  StatusOr<std::vector<RunRecord>> runs = store_->ListRuns("", std::numeric_limits<size_t>::max());
  if (!runs.ok()) return runs.status();
  for (const RunRecord& run : *runs) {
    if (run.state != RunState::kQueued && run.state != RunState::kRunning) continue;
    StatusOr<RunRecord> resumed = runner_->Resume(run.dag_id, run.run_id);
    if (!resumed.ok()) {
      std::fprintf(stderr, "sluice serve: cannot resume run %s of DAG %s: %s\n", run.run_id.c_str(),
                   run.dag_id.c_str(), resumed.status().message().c_str());
    }
  }
  Scan();
  SLUICE_RETURN_IF_ERROR(LoadControl());
  Tick();
  return Status::Ok();
}

const Scheduler::DagEntry* Scheduler::FindDag(const std::string& dag_id) const {
  for (const auto& [path, entry] : dags_) {
    if (entry.dag && entry.dag->id() == dag_id) return &entry;
  }
  return nullptr;
}

void Scheduler::Stop() {
  stopped_ = true;
  timer_->timer.cancel();
}

void Scheduler::RunEnded(const std::string& dag_id) {
  bool backfilling = false;
  for (const auto& [id, backfill] : backfills_) {
    backfilling |= backfill["dag_id"] == dag_id && backfill["state"] == "running";
  }
  if (held_.erase(dag_id) == 0 && !backfilling) return;
  if (pass_posted_) return;
  pass_posted_ = true;
  boost::asio::post(io_, [this, alive = std::weak_ptr<int>(alive_)] {
    if (alive.expired()) return;
    pass_posted_ = false;
    Tick();
  });
}

void Scheduler::SetMetrics(Metrics* metrics) {
  metrics_ = metrics;
  metrics_->Declare("sluice_scheduler_loop_duration_seconds", "histogram",
                    "Time of one scheduler pass (rescan, run creation, backfills)",
                    Metrics::DurationBuckets());
  metrics_->Declare("sluice_scheduler_prepare_duration_seconds", "histogram",
                    "Time of the step before a cron boundary that rescans the folder and "
                    "prepares the runs due at it",
                    Metrics::DurationBuckets());
  metrics_->Declare("sluice_cron_trigger_lag_seconds", "histogram",
                    "Scheduled run created minus the end of its data interval",
                    Metrics::DurationBuckets());
}

void Scheduler::Arm(sys_seconds now) {
  if (stopped_) return;
  // Wake at the next fire time of any DAG, so that runs are created on time, not up to a
  // tick late (just after it, so that the floor to whole seconds sees it due), and
  // `prepare_ahead` before it to prepare the runs it will owe. A fire time already past (a
  // DAG that could not be scheduled this pass) waits for the regular tick rather than
  // spinning the loop.
  using std::chrono::microseconds;
  microseconds wait = options_.tick;
  const auto clock_now = clock_->Now();
  std::optional<sys_seconds> next;
  for (const auto& [path, entry] : dags_) {
    if (!entry.next_fire || *entry.next_fire < now) continue;
    if (!next || *entry.next_fire < *next) next = entry.next_fire;
  }
  bool prepare = false;
  if (next) {
    const auto until = std::chrono::duration_cast<microseconds>(*next - clock_now);
    // A prepare step that ran past the boundary would delay every run by its overrun: when
    // the last one took more than half the lead (a slow disk, a busy machine, a bigger
    // folder), lead by twice that instead.
    const microseconds ahead =
        options_.prepare_ahead > microseconds::zero()
            ? std::max(std::chrono::duration_cast<microseconds>(options_.prepare_ahead),
                       2 * last_prepare_)
            : microseconds::zero();
    if (ahead > microseconds::zero() && prepared_for_ != next && until > ahead &&
        until - ahead < wait) {
      wait = until - ahead;
      prepare = true;
    } else {
      wait = std::min(wait, std::max(until + kFireSlack, kFireSlack));
    }
  }
  timer_->timer.expires_after(wait);
  // A timer that fired just before the scheduler was destroyed still runs its handler (with
  // no error): `alive` says whether `this` is still there.
  timer_->timer.async_wait(
      [this, prepare, next, alive = std::weak_ptr<int>(alive_)](boost::system::error_code ec) {
        if (ec || alive.expired()) return;
        if (!prepare) {
          Tick();
          return;
        }
        // The folder as it is now, so that what is prepared is what will be owed.
        const auto started = std::chrono::steady_clock::now();
        Scan();
        PrepareDue(*next);
        last_prepare_ = std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - started);
        if (metrics_) {
          metrics_->Observe("sluice_scheduler_prepare_duration_seconds", {},
                            std::chrono::duration<double>(last_prepare_).count());
        }
        Arm(std::chrono::floor<std::chrono::seconds>(clock_->Now()));
      });
}

size_t Scheduler::PrepareDue(sys_seconds at) {
  prepared_.clear();
  prepared_for_ = at;
  backfill_runs_when_prepared_ = backfill_runs_made_;
  for (auto& [path, entry] : dags_) {
    if (!entry.dag || !entry.dag->spec().cron || entry.zone == nullptr) continue;
    if (!entry.next_fire || *entry.next_fire != at || paused(entry.dag->spec())) continue;
    std::optional<sys_seconds> next_due;
    bool full = false;
    for (const DataInterval& interval : OwedIntervals(entry, at, &next_due, &full)) {
      if (store_->HasRun(entry.dag->id(), BackfillRunId(interval.start))) continue;
      StatusOr<std::unique_ptr<Runner::PreparedRun>> run =
          runner_->Prepare(ScheduledRequest(entry, interval));
      // A run that cannot be prepared is left to the pass, which reports why.
      if (run.ok()) prepared_[entry.dag->id() + "/" + (*run)->run_id()] = std::move(*run);
    }
  }
  runner_->ReserveLaunches(prepared_.size());
  lags_.reserve(prepared_.size());
  return prepared_.size();
}

void Scheduler::Scan() {
  std::set<std::string> seen;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(options_.dags_dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (!it->is_regular_file(ec) || it->path().extension() != ".toml") continue;
    const std::string path = it->path().string();
    seen.insert(path);
    DagEntry& entry = dags_[path];
    entry.path = path;
    const auto mtime = fs::last_write_time(it->path(), ec);
    const auto size = fs::file_size(it->path(), ec);
    if (entry.dag && mtime == entry.mtime && size == entry.size) continue;
    if (!entry.dag && !entry.errors.empty() && mtime == entry.mtime && size == entry.size) continue;
    entry.mtime = mtime;
    entry.size = size;
    DagLoadResult loaded = LoadDagFile(path);
    if (loaded.ok()) {
      CheckDagAgainstPlugins(*loaded.dag, *catalog_, &loaded.diagnostics);
      if (loaded.diagnostics.has_errors()) loaded.dag.reset();
    }
    if (!loaded.ok()) {
      // Keep the last good version scheduled; make the errors visible.
      entry.errors = loaded.diagnostics;
      for (const Diagnostic& d : loaded.diagnostics.items()) {
        std::fprintf(stderr, "%s", Render(d).c_str());
      }
      std::fprintf(stderr, "sluice serve: %s does not validate; %s\n", path.c_str(),
                   entry.dag ? "its last good version stays scheduled" : "it is not scheduled");
      continue;
    }
    // A DAG id is owned by one file.
    bool taken = false;
    for (const auto& [other_path, other] : dags_) {
      if (other_path != path && other.dag && other.dag->id() == loaded.dag->id()) taken = true;
    }
    if (taken) {
      entry.errors = Diagnostics();
      entry.errors.Error(path, loaded.dag->spec().id_pos,
                         "DAG id \"" + loaded.dag->id() + "\" is used by another file",
                         "DAG ids must be unique in the DAG folder");
      std::fprintf(stderr, "%s", Render(entry.errors.items()[0]).c_str());
      continue;
    }
    const bool first_load = entry.dag == nullptr;
    entry.next_fire.reset();
    entry.errors = Diagnostics();
    entry.source = loaded.source;
    entry.dag = std::shared_ptr<const Dag>(std::move(loaded.dag));
    StatusOr<const date::time_zone*> zone = FindTimeZone(entry.dag->spec().timezone);
    entry.zone = zone.ok() ? *zone : nullptr;  // the loader has checked it
    if (first_load) {
      // The cursor: the latest scheduled run already recorded for this DAG. Unread, it is
      // not guessed: the DAG waits for the next rescan rather than catch up on slots it ran.
      StatusOr<std::vector<RunRecord>> runs =
          store_->ListRuns(entry.dag->id(), std::numeric_limits<size_t>::max());
      if (!runs.ok()) {
        entry.errors.Error(path, {}, "cannot read the DAG's runs: " + runs.status().message(),
                           "it is scheduled again once the state store can be read");
        entry.dag.reset();
        continue;
      }
      for (const RunRecord& run : *runs) {
        std::optional<sys_seconds> start = LogicalDateOf(run.run_id);
        if (start && (!entry.cursor || *start > *entry.cursor)) entry.cursor = start;
      }
    }
  }
  // Deleted files stop being scheduled; their runs in progress go on.
  for (auto it = dags_.begin(); it != dags_.end();) {
    it = seen.count(it->first) ? std::next(it) : dags_.erase(it);
  }
  last_scan_ = std::chrono::steady_clock::now();
}

std::vector<DataInterval> Scheduler::OwedIntervals(const DagEntry& entry, sys_seconds now,
                                                   std::optional<sys_seconds>* next_due,
                                                   bool* full) const {
  const DagSpec& spec = entry.dag->spec();
  const size_t active = runner_->active_runs(spec.id);
  const size_t slots = static_cast<size_t>(spec.max_active_runs);
  *full = active >= slots;
  if (*full) return {};
  DueQuery query;
  query.next_due = next_due;
  query.now = now;
  query.last_start = entry.cursor;
  query.since = started_;
  if (auto it = unpaused_at_.find(spec.id); it != unpaused_at_.end() && it->second > started_)
    query.since = it->second;
  query.limit = slots - active;
  std::vector<DataInterval> due = DueIntervals(spec, entry.zone, query);
  *full = due.size() >= query.limit;
  return due;
}

void Scheduler::ScheduleDag(DagEntry* entry, sys_seconds now) {
  if (!entry->dag || !entry->dag->spec().cron) return;
  const DagSpec& spec = entry->dag->spec();
  if (paused(spec)) {
    entry->next_fire.reset();  // nothing to wake for; unpause looks afresh
    return;
  }
  if (entry->next_fire && *entry->next_fire > now) return;  // nothing new can be due
  if (entry->zone == nullptr) return;
  entry->next_fire.reset();
  bool full = false;
  const std::vector<DataInterval> due = OwedIntervals(*entry, now, &entry->next_fire, &full);
  if (full) {
    entry->next_fire.reset();  // more may be owed once runs end: check again then
    held_.insert(spec.id);
  }
  for (const DataInterval& interval : due) {
    // Prepared ahead of the fire time (for this version of the DAG), or made now.
    auto ready = prepared_.find(spec.id + "/" + ScheduledRunId(interval.start));
    const bool prepared = ready != prepared_.end() && ready->second->dag() == entry->dag.get();
    // One run per slot: a backfill may have made this one already (when prepared, the store
    // was asked then; only a backfill run made since can have taken the slot).
    if ((!prepared || backfill_runs_made_ != backfill_runs_when_prepared_) &&
        store_->HasRun(spec.id, BackfillRunId(interval.start))) {
      entry->cursor = interval.start;
      continue;
    }
    Status made;
    if (prepared) {
      made = runner_->Launch(std::move(ready->second));
      prepared_.erase(ready);
      prepared_launched_ += made.ok();
    } else {
      made = runner_->Trigger(ScheduledRequest(*entry, interval)).status();
    }
    if (!made.ok() && made.code() != Status::Code::kAlreadyExists) {
      std::fprintf(stderr, "sluice serve: DAG %s: cannot create the run for %s: %s\n",
                   spec.id.c_str(), FormatTimeUtc(interval.start).c_str(), made.message().c_str());
      return;  // try again next tick
    }
    if (made.ok() && metrics_) {
      lags_.emplace_back(spec.id,
                         std::chrono::duration<double>(clock_->Now() - interval.end).count());
    }
    entry->cursor = interval.start;  // created now, or by an earlier process: done either way
  }
}

void Scheduler::Tick() {
  if (stopped_) return;
  const auto loop_started = std::chrono::steady_clock::now();
  // The folder is rescanned when due, but not ahead of runs prepared for this moment (the
  // prepare step has just scanned it): a change found after them is scheduled right after.
  const bool rescan = loop_started - last_scan_ >= options_.rescan;
  const bool owed_prepared = !prepared_.empty();
  if (rescan && !owed_prepared) {
    Scan();
  }
  const sys_seconds now = std::chrono::floor<std::chrono::seconds>(clock_->Now());
  for (auto& [path, entry] : dags_) ScheduleDag(&entry, now);
  if (rescan && owed_prepared) {
    Scan();
    for (auto& [path, entry] : dags_) ScheduleDag(&entry, now);
  }
  if (prepared_for_ && now >= *prepared_for_) {
    prepared_.clear();  // what was not launched is no longer owed as prepared
    prepared_for_.reset();
  }
  // Observed after the burst, which they would otherwise slow down.
  if (metrics_) {
    for (const auto& [dag_id, lag] : lags_) {
      metrics_->Observe("sluice_cron_trigger_lag_seconds", {{"dag", dag_id}}, lag);
    }
  }
  lags_.clear();
  AdvanceBackfills();
  if (metrics_) {
    metrics_->Observe(
        "sluice_scheduler_loop_duration_seconds", {},
        std::chrono::duration<double>(std::chrono::steady_clock::now() - loop_started).count());
  }
  Arm(now);
}

}  // namespace sluice
