// Runner: the run logic. It turns DAG runs into task tries, hands them to an Executor and
// records every transition in the StateStore before acting on it.
//
// How a run moves:
// - Each task keeps a count of upstream tasks that have not finished, and counts of how the
//   finished ones ended. When a task ends, only its downstream tasks are looked at (never a
//   scan of the DAG), and their trigger rules decide: wait, run, skip or upstream_failed.
// - A task that may run is checked against its `when` condition, then queued. Queued tasks
//   are dispatched by priority (higher first), then run age, then DAG order, as long as the
//   executor has a free slot and the task's pool has one.
// - A failed try is retried after RetryDelay() while retries remain; a timed-out or crashed
//   try counts as failed.
// - Transitions are gathered into one StateStore batch per turn of the event loop and
//   committed (fsync) before anything is dispatched: durable first, acted on second.
// - A run ends when every task has ended: failed if any leaf task (one without downstream
//   tasks) failed or is upstream_failed, success otherwise.
//
// Threading: everything happens on the io_context thread given at construction.
#ifndef SLUICE_RUNNER_H_
#define SLUICE_RUNNER_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "sluice/dag.h"
#include "sluice/executor.h"
#include "sluice/plugin_host.h"
#include "sluice/state_store.h"

namespace boost::asio {
class io_context;
}

namespace sluice {

// Parses `--param NAME=VALUE` overrides against the DAG's declared params. VALUE is read as
// JSON when it parses (numbers, true/false, arrays, quoted strings) and as text otherwise,
// then must have the declared param's type. Errors name the param and what to do.
StatusOr<nlohmann::json> ResolveRunParams(const DagSpec& dag,
                                          const std::vector<std::string>& assignments);
// The same for overrides given as a JSON object (the API's trigger body): every key must be
// a declared param and every value of the declared param's type.
StatusOr<nlohmann::json> ResolveRunParamsJson(const DagSpec& dag, const nlohmann::json& overrides);

// Parses `--tag NAME=VALUE` assignments into {name: value}. Names are 1-64 characters of
// letters, digits and `_ . - :`; values are text of at most 1,000 bytes.
StatusOr<nlohmann::json> ParseTags(const std::vector<std::string>& assignments);
// Checks a tags object (the API's): the same rules, values must be strings.
Status CheckTags(const nlohmann::json& tags);

struct RunnerOptions {
  std::string state_dir;  // logs and outputs are kept under it
  std::string actor;      // who acts, recorded with every event ("cli:alice@host")
  // Pool name -> slots. Pools not listed here have no limit beyond the executor's capacity.
  std::map<std::string, int> pools;
  uint64_t random_seed = std::random_device{}();  // jitter of retry delays
};

class RunObserver {
 public:
  virtual ~RunObserver() = default;
  virtual void OnTaskChanged(const RunRecord& /*run*/, const TryRecord& /*task*/) {}
  virtual void OnRunChanged(const RunRecord& /*run*/) {}
  // A line a running try wrote to its log (level: SLUICE_LOG_*), as it arrives.
  virtual void OnTaskLog(const RunRecord& /*run*/, const TryRecord& /*task*/, int /*level*/,
                         std::string_view /*line*/) {}
};

struct TriggerRequest {
  std::shared_ptr<const Dag> dag;
  std::string dag_source;  // the DAG file's text, kept with the run for --resume
  nlohmann::json params = nlohmann::json::object();  // overrides (already resolved)
  std::string run_type = "manual";
  std::optional<std::chrono::system_clock::time_point> logical_date;  // default: now
  // The data interval; default: empty, at the logical date (a manual run).
  std::optional<std::chrono::system_clock::time_point> data_interval_end;
  std::string run_id;        // default: "<run_type>__<logical date>"
  std::string triggered_by;  // who asked for the run; default: RunnerOptions::actor
  bool no_cache = false;     // recompute cached tasks (their results still refresh the cache)
  nlohmann::json tags = nlohmann::json::object();  // name -> text
  std::string note;
};

// Clearing tasks of a run so that they run again (Airflow's "clear"). Earlier tries stay in
// the history; the next try of each cleared task gets the next try number.
struct ClearRequest {
  std::string dag_id;
  std::string run_id;
  std::vector<std::string> task_ids;  // empty: every task of the run
  bool downstream = false;            // also the tasks downstream of them, transitively
  bool only_failed = false;           // only tasks that ended failed or upstream_failed
  std::string actor;                  // who asked, recorded with every event
};

class Runner : public ExecutorListener {
 public:
  struct RunRt;
  struct TaskRt;

  Runner(boost::asio::io_context& io, StateStore* store, const PluginCatalog* catalog, Clock* clock,
         RunnerOptions options);
  ~Runner() override;

  // REQUIRES: called once, before Trigger or Resume.
  void AttachExecutor(Executor* executor) { executor_ = executor; }
  void SetObserver(RunObserver* observer) { observer_ = observer; }
  // Called (on the io thread) when a run ends.
  void OnRunFinished(std::function<void(const RunRecord&)> fn) { on_finished_ = std::move(fn); }
  // Called once (on the io thread, from a posted handler) when the runner stops on a state
  // store failure (see fatal_error()); the owner then stops its loop and reports it.
  void OnFatal(std::function<void(const Status&)> fn) { on_fatal_ = std::move(fn); }

  // Creates a run and starts it. Fails, creating nothing, when a task's plugin step is not
  // in the catalog or the run id is taken. Prepare, then Launch.
  StatusOr<RunRecord> Trigger(TriggerRequest request);

  // A run built ahead of the moment it is owed: Trigger's checks and everything the run
  // needs in memory, with nothing recorded. The scheduler prepares the runs due at the next
  // cron boundary shortly before it, so that at the boundary each costs only Launch.
  class PreparedRun {
   public:
    PreparedRun(const PreparedRun&) = delete;
    PreparedRun& operator=(const PreparedRun&) = delete;
    ~PreparedRun();
    const std::string& dag_id() const;
    const std::string& run_id() const;
    const Dag* dag() const;

   private:
    friend class Runner;
    PreparedRun();
    std::unique_ptr<RunRt> run_;
    RunRecord stored_;  // what Launch records, built ahead too
    Event event_;
    uint64_t runs_released_ = 0;  // the runner's count when prepared
  };
  StatusOr<std::unique_ptr<PreparedRun>> Prepare(TriggerRequest request);
  // Records a prepared run as created now, and starts it. AlreadyExists (nothing recorded)
  // when its run id was taken after Prepare. `created`, when given, gets the record.
  Status Launch(std::unique_ptr<PreparedRun> run, RunRecord* created = nullptr);
  // Makes room for launching `runs` runs at once without growing a buffer then (a large
  // allocation in the middle of a burst can cost milliseconds: it makes malloc consolidate).
  void ReserveLaunches(size_t runs);

  // Picks up an unfinished run from the store: tasks that ended keep their state; tries that
  // were in flight when the previous process stopped count as failed tries and are retried
  // per their policy; the rest continues. Fails for a run that already ended.
  StatusOr<RunRecord> Resume(const std::string& dag_id, const std::string& run_id);

  // Cancels a run in progress. Tasks that have not started end as skipped, a task waiting
  // for a retry ends as failed, and running tries are asked to stop (a command gets SIGTERM;
  // the executor kills the try after its grace period) and end as failed. The run ends as
  // failed with "cancelled by <actor>". FailedPrecondition when the run already ended.
  Status CancelRun(const std::string& dag_id, const std::string& run_id, const std::string& actor);

  // Clears ended tasks so that they run again, reopening the run if it had ended. Tasks that
  // are still pending are left as they are; naming a task that is queued or running is an
  // error (cancel the run, or wait for it). Returns the ids of the cleared tasks.
  StatusOr<std::vector<std::string>> ClearTasks(const ClearRequest& request);

  // For a graceful shutdown: nothing more is dispatched; tries in flight go on. in_flight()
  // says when they have all ended.
  void StopDispatching() { dispatching_ = false; }
  size_t in_flight() const { return in_flight_; }

  // Commits what is pending now (and dispatches), instead of at the end of this loop turn;
  // for callers that must not answer before a change is durable. Returns fatal_error().
  Status Sync();

  // The first state-store failure, which stops the runner (nothing more is dispatched).
  const Status& fatal_error() const { return fatal_; }
  size_t active_runs() const;
  // Runs of `dag_id` in progress in this runner.
  size_t active_runs(const std::string& dag_id) const;
  bool IsActive(const std::string& dag_id, const std::string& run_id) const;
  // Tries ready and waiting for a worker or a pool slot.
  size_t queue_depth() const { return ready_.size(); }
  // Pool name -> slots in use, and the configured slots (pools without a limit are absent).
  const std::map<std::string, int>& pool_usage() const { return pool_used_; }
  const std::map<std::string, int>& pool_slots() const { return options_.pools; }
  // Task states of the runs in progress, counted: state -> tasks.
  std::map<TaskState, size_t> ActiveTaskStates() const;
  // Runs in progress per DAG.
  std::map<std::string, size_t> ActiveRunsByDag() const;

  // ExecutorListener.
  void OnStarted(const std::string& key, int64_t worker_pid) override;
  void OnLog(const std::string& key, int level, std::string_view line) override;
  void OnMetric(const std::string& key, const std::string& name, double value,
                int64_t step) override;
  void OnOutput(const std::string& key, const std::string& name,
                const nlohmann::json& output) override;
  void OnFinished(const std::string& key, TaskOutcome outcome) override;
  // Services for running steps: tags.set, models.get, models.register, models.set_alias.
  nlohmann::json OnCall(const std::string& key, const std::string& method,
                        const nlohmann::json& request) override;

 private:
  void MarkDirty();
  void FlushLogs();
  void Flush();
  void Dispatch();
  void StartRun(std::unique_ptr<RunRt> run);
  // Cancels the run when the DAG's dagrun_timeout has passed since it started.
  void ArmRunTimeout(RunRt* run);
  // Builds a stored run's runtime state (tasks, counters) and registers it. Tries that were
  // in flight are left as stored; the caller decides what they mean.
  StatusOr<RunRt*> LoadRun(const RunRecord& stored);
  const std::string& Actor() const { return acting_.empty() ? options_.actor : acting_; }
  void Decide(RunRt* run, size_t task);
  void Enqueue(RunRt* run, size_t task);
  void PrepareAndLaunch(RunRt* run, size_t task);
  // Ends the task as a success with the outputs of an earlier try with the same cache key;
  // false (nothing changed) on a miss.
  bool ServeFromCache(RunRt* run, size_t task);
  void EndTask(RunRt* run, size_t task, TaskState state, const std::string& reason);
  void Cascade(RunRt* run, size_t task);
  void FinishRunIfDone(RunRt* run);
  // A try that did not succeed (`from`: its state until now): the next try after the retry
  // delay while retries remain and `may_retry`, else the task fails. The one place for it,
  // so that every failed try closes its log and reads the same ("...; try 2 of 3 in 30s").
  void RetryOrFail(RunRt* run, size_t task, TaskState from, const std::string& reason,
                   bool may_retry);
  void ScheduleRetry(RunRt* run, size_t task, Duration delay);
  void RecordTask(RunRt* run, size_t task, TaskState from, const std::string& reason);
  void RecordRun(RunRt* run, RunState from, const std::string& reason);
  nlohmann::json TemplateContext(const RunRt& run, const TaskSpec& task) const;
  std::string NewRunId(const std::string& dag_id, const std::string& run_type,
                       std::chrono::system_clock::time_point logical_date) const;
  std::string Now() const;

  boost::asio::io_context& io_;
  StateStore* store_;
  const PluginCatalog* catalog_;
  Clock* clock_;
  RunnerOptions options_;
  std::string artifact_root_;  // <state_dir>/artifacts, absolute
  Executor* executor_ = nullptr;
  RunObserver* observer_ = nullptr;
  std::function<void(const RunRecord&)> on_finished_;
  std::function<void(const Status&)> on_fatal_;

  // Guarded by: the io thread.
  std::map<std::string, std::unique_ptr<RunRt>> runs_;  // "dag/run" -> run
  struct Running {
    RunRt* run;
    size_t task;
  };
  std::map<std::string, Running> running_;  // try key -> task
  struct ReadyKey {
    int priority;
    uint64_t run_seq;
    uint32_t position;  // in topological order
    bool operator<(const ReadyKey& o) const {
      if (priority != o.priority) return priority > o.priority;
      if (run_seq != o.run_seq) return run_seq < o.run_seq;
      return position < o.position;
    }
  };
  std::map<ReadyKey, Running> ready_;
  std::map<std::string, int> pool_used_;
  size_t in_flight_ = 0;
  uint64_t next_run_seq_ = 0;
  // Runs taken out of runs_ (ended, or a reopened run given up). While it has not moved,
  // every run made since a Prepare is still in runs_, so Launch need not ask the store.
  uint64_t runs_released_ = 0;
  size_t started_entries_ = 0;  // batch entries that only record tries starting
  StateStore::Batch batch_;
  std::vector<TaskLaunch> launches_;                      // to launch after the next commit
  std::vector<std::pair<RunRt*, size_t>> changed_tasks_;  // to tell the observer
  std::vector<RunRt*> changed_runs_;
  bool flush_posted_ = false;
  // Try keys whose log gained lines since the last FlushLogs, which is posted once.
  std::vector<std::string> logs_written_;
  bool dispatching_ = true;
  std::string acting_;  // who the current API call acts for; empty: options_.actor
  Status fatal_;
  std::mt19937_64 rng_;
};

}  // namespace sluice

#endif  // SLUICE_RUNNER_H_
