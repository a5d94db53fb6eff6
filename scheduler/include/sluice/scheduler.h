// Scheduler: the trigger loop of `sluice serve`. It keeps the DAG folder loaded, creates a
// run for every data interval a DAG is owed (per its schedule, start/end dates, catchup
// policy and max_active_runs), and resumes the runs a previous process left unfinished.
//
// Exactly-once per slot: a scheduled run's id is "scheduled__<logical date>", so creating it
// twice (after a crash, a restart, or a race) fails in the Runner and is treated as done.
// The cursor (the last interval that has a run) is read back from the stored runs on start.
//
// DAG folder: new, changed and deleted *.toml files are picked up on the next scan; a file
// that stops validating keeps its last good version scheduled and its errors visible.
//
// Threading: everything runs on the io_context thread given at construction.
#ifndef SLUICE_SCHEDULER_H_
#define SLUICE_SCHEDULER_H_

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sluice/dag.h"
#include "sluice/diagnostics.h"
#include "sluice/executor.h"
#include "sluice/intervals.h"
#include "sluice/metrics.h"
#include "sluice/plugin_host.h"
#include "sluice/runner.h"
#include "sluice/state_store.h"

namespace date {
class time_zone;
}

namespace boost::asio {
class io_context;
}

namespace sluice {

class Scheduler {
 public:
  struct Options {
    std::string dags_dir;
    Duration tick = std::chrono::seconds(1);    // how often due intervals are checked
    Duration rescan = std::chrono::seconds(2);  // how often the DAG folder is scanned
    // How long before a cron boundary the runs due at it are prepared (built in memory,
    // nothing recorded), so that at the boundary each costs only its record. 0: not ahead.
    // The lead grows to twice the last prepare step when that took longer than half of it.
    Duration prepare_ahead = std::chrono::milliseconds(50);
  };

  // What the scheduler knows of one DAG file.
  struct DagEntry {
    std::string path;
    std::shared_ptr<const Dag> dag;  // the last version that validated; null if none ever did
    std::string source;              // its text
    Diagnostics errors;              // of the current file, when it does not validate
    std::filesystem::file_time_type mtime;
    uintmax_t size = 0;
    std::optional<std::chrono::sys_seconds> cursor;     // start of the last interval with a run
    std::optional<std::chrono::sys_seconds> next_fire;  // after the last check; null: unknown
    const date::time_zone* zone = nullptr;              // of the loaded DAG's `timezone`
  };

  // `catalog`: the plugins DAGs are checked against when loaded (a DAG that does not fit them
  // is treated like one that does not validate).
  Scheduler(boost::asio::io_context& io, StateStore* store, Runner* runner,
            const PluginCatalog* catalog, Clock* clock, Options options);
  ~Scheduler();

  // Scans the DAG folder, resumes unfinished runs, and starts the loop.
  Status Start();
  void Stop();

  // One pass, for tests and for the loop: rescan if due, then create the runs that are owed.
  // The loop wakes at the next fire time of any DAG (or after `tick`, whichever is first),
  // and `prepare_ahead` before it to prepare the runs it will owe.
  void Tick();
  // Prepares the runs that will be owed at the fire time `at` (the loop calls it ahead of
  // `at`); the pass at `at` launches them, unless something changed (the DAG file, a pause,
  // a run taking the slot), in which case it creates them as usual. Returns how many.
  size_t PrepareDue(std::chrono::sys_seconds at);
  // Prepared runs that were launched as prepared, since the start.
  size_t prepared_launched() const { return prepared_launched_; }

  // A run of `dag_id` ended: when the DAG was held back by max_active_runs, or has a backfill
  // going, a pass runs soon (at most one per loop turn, however many runs ended).
  void RunEnded(const std::string& dag_id);

  // Where the loop's duration and the cron trigger lag (run created - interval end) go.
  void SetMetrics(Metrics* metrics);

  const std::map<std::string, DagEntry>& dags() const { return dags_; }  // by path
  // The loaded DAG with this id, or null.
  const DagEntry* FindDag(const std::string& dag_id) const;

  // Pausing stops new scheduled and backfill runs of a DAG; runs in progress go on (cancel
  // them to stop them). Manual triggers still work. The flag is kept in the state store with
  // who set it, and survives restarts. On unpause, missed intervals follow the catchup policy
  // (with catchup = "none", intervals that ended while paused are not run). A DAG whose file
  // says `paused = true` is paused until it is unpaused once; that unpause is kept too.
  Status SetPaused(const std::string& dag_id, bool paused, const std::string& actor);
  bool paused(const std::string& dag_id) const;
  // The same for a loaded DAG at hand, without looking it up by id (the per-fire loop).
  bool paused(const DagSpec& spec) const;

  // Backfills: the daemon creates (or reruns) the runs of a date range itself, at most
  // max_active_runs at a time, and keeps going across restarts.
  struct BackfillRequest {
    std::string dag_id;
    std::chrono::sys_seconds from;  // logical dates from..to, inclusive
    std::chrono::sys_seconds to;
    // `from` / `to` were given as dates (2026-11-13, read as 00:00 UTC): each then means that
    // whole day in the DAG's time zone, from its first second to its last.
    bool from_is_date = false;
    bool to_is_date = false;
    std::string reprocess = "none";  // none | failed | all: what to do with slots that have a run
    int max_active_runs = 0;         // 0: the DAG's max_active_runs
    bool dry_run = false;            // plan only
    std::string actor;
  };
  // The plan (and, unless dry_run, the started backfill) as JSON; see docs/api.md.
  StatusOr<nlohmann::json> CreateBackfill(const BackfillRequest& request);
  Status CancelBackfill(const std::string& id, const std::string& actor);
  StatusOr<nlohmann::json> GetBackfill(const std::string& id) const;
  std::vector<nlohmann::json> ListBackfills(const std::string& dag_id) const;

 private:
  void Scan();
  void ScheduleDag(DagEntry* entry, std::chrono::sys_seconds now);
  // The intervals of a cron DAG owed at `now` (none when paused or without a free
  // max_active_runs slot); `next_due` gets the next fire time; `full` says the slots ran out.
  std::vector<DataInterval> OwedIntervals(const DagEntry& entry, std::chrono::sys_seconds now,
                                          std::optional<std::chrono::sys_seconds>* next_due,
                                          bool* full) const;
  void Arm(std::chrono::sys_seconds now);
  Status LoadControl();
  void AdvanceBackfills();
  bool AdvanceBackfill(nlohmann::json& backfill);  // true when it changed
  void ActOnBackfillItem(const nlohmann::json& backfill, const nlohmann::json& item,
                         bool recovering);
  Status SaveBackfill(const nlohmann::json& backfill, const std::string& event_reason,
                      const std::string& actor);
  nlohmann::json BackfillView(const nlohmann::json& backfill) const;
  Status RecordDagEvent(const std::string& dag_id, const std::string& kind,
                        const std::string& reason, const std::string& actor,
                        StateStore::Batch* batch);

  boost::asio::io_context& io_;
  StateStore* store_;
  Runner* runner_;
  const PluginCatalog* catalog_;
  Clock* clock_;
  Options options_;
  std::map<std::string, DagEntry> dags_;
  std::chrono::sys_seconds started_;
  Metrics* metrics_ = nullptr;
  std::map<std::string, nlohmann::json> paused_;  // dag id -> {by, at}
  std::set<std::string> unpaused_;  // DAGs unpaused by someone: their file's `paused` is spent
  std::map<std::string, std::chrono::sys_seconds> unpaused_at_;
  std::map<std::string, nlohmann::json> backfills_;  // id -> record
  std::set<std::string> held_;  // DAGs with intervals owed but no max_active_runs slot free
  // Runs prepared for the fire time prepared_for_, by "dag id/run id".
  std::map<std::string, std::unique_ptr<Runner::PreparedRun>> prepared_;
  std::optional<std::chrono::sys_seconds> prepared_for_;
  size_t prepared_launched_ = 0;
  std::chrono::microseconds last_prepare_{0};  // how long the last rescan + prepare took
  // Backfill runs made since the start, and when runs were last prepared: while it has not
  // moved, no backfill can have taken a prepared run's slot.
  uint64_t backfill_runs_made_ = 0;
  uint64_t backfill_runs_when_prepared_ = 0;
  std::vector<std::pair<std::string, double>> lags_;  // this pass's: dag id, seconds
  bool pass_posted_ = false;
  // Handlers posted to the io_context hold a weak_ptr to this: they do nothing once the
  // scheduler is gone.
  std::shared_ptr<int> alive_ = std::make_shared<int>(0);
  std::chrono::steady_clock::time_point last_scan_{};
  struct Timer;
  std::unique_ptr<Timer> timer_;
  bool stopped_ = false;
};

}  // namespace sluice

#endif  // SLUICE_SCHEDULER_H_
