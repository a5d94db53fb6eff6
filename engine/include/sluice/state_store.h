// StateStore: every run's state, durable, in RocksDB. Everything that touches RocksDB lives
// behind this interface; the rest of the engine sees records.
//
// Layout (one column family per kind; keys built for prefix scans; values are JSON):
//   meta            "schema_version" -> "1"
//   runs            dag_id/run_id                   -> RunRecord
//   run_index       run_id/dag_id                   -> ""      (find a run by its id alone)
//   task_instances  dag_id/run_id/task_id/TTTTT     -> TryRecord (TTTTT: try number, 5 digits)
//   events          dag_id/run_id/SSSSSSSSSSSS      -> Event     (append-only, 12-digit seq;
//                                                                  run_id empty: DAG events)
//   run_order       a/<created_at>/<dag_id>/<run_id> -> ""      (all runs, by creation time)
//                   d/<dag_id>/<created_at>/<run_id> -> ""      (one DAG's runs)
//   control         dag/<dag_id>, token/<sha256>, backfill/<id> -> JSON (operator state)
//   run_sources     dag_id/run_id                   -> the DAG file's text at trigger time
//                   (apart from the run record, so that listing runs stays cheap)
//   artifacts       <sha256>                        -> ArtifactRecord      (artifacts.h)
//   lineage         p/<sha256>/<try key>, c/<sha256>/<try key> -> produced / consumed by
//   cache           <cache key>                     -> the outputs of a successful try
//   models          m/<name>, v/<name>/<version>    -> model registry      (registry.h)
// Ids never contain '/': DAG and task ids are validated by the loader, run ids by CheckRunId
// (here, in Commit, and at every edge that accepts one: the API and the CLI).
//
// A state transition is one Batch (record + event) committed with sync before the engine
// acts on it. Commit groups everything added to the batch into one fsync, which is how the
// run loop amortizes durability over many transitions.
//
// Thread safety: one StateStore per state directory per process (RocksDB holds a lock on the
// directory, so a second process is refused). Reads may run concurrently with each other;
// Commit must be called from one thread at a time.
#ifndef SLUICE_STATE_STORE_H_
#define SLUICE_STATE_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/status.h"

namespace rocksdb {
class Env;
}

namespace sluice {

// The layout of the state store. 2: the creation-time index is kept newest first (1 kept it
// oldest first); StateStore::Open upgrades a version-1 store in place.
inline constexpr int kSchemaVersion = 2;

// Task-instance states; names and meanings follow Airflow's.
enum class TaskState {
  kPending,  // waiting for upstream tasks (no try yet)
  kQueued,   // ready; waiting for a worker (or a pool slot)
  kRunning,  // a try is running in a worker
  kSuccess,
  kFailed,          // the last try failed and no retry is left
  kUpForRetry,      // a try failed; the next one waits for its retry delay
  kUpstreamFailed,  // not run: the trigger rule cannot be met because upstream failed
  kSkipped,         // not run: trigger rule, `when` condition, or the step skipped itself
};
std::string_view TaskStateName(TaskState state);
std::optional<TaskState> ParseTaskState(std::string_view name);
bool IsTerminal(TaskState state);

enum class RunState { kQueued, kRunning, kSuccess, kFailed };
std::string_view RunStateName(RunState state);
std::optional<RunState> ParseRunState(std::string_view name);

// The run id grammar: 1 to kMaxRunIdBytes characters, the first a letter, a digit or '_', the
// rest letters, digits and "_.:+-". It holds every generated id
// ("manual__2026-11-28T00:02:26.810939Z", "backfill__2026-01-01T00:00:00+00:00") and what
// operators choose ("retrain-2026.q4"). A run id names a folder (logs/<dag>/<run>/) and a
// key segment, so it never holds '/', NUL, spaces or control characters, never starts with
// '.' or '-' (so ".." and "-x" are out), and is ASCII.
inline constexpr size_t kMaxRunIdBytes = 200;
// OK, or InvalidArgument naming the id (escaped) and the rule it breaks.
Status CheckRunId(std::string_view run_id);

// The key-value spaces that modules above the store (artifacts, lineage, step cache, model
// registry) own. They see keys and JSON values; only the store sees RocksDB.
enum class Space { kArtifacts, kLineage, kCache, kModels };

struct RunRecord {
  std::string dag_id;
  std::string run_id;
  RunState state = RunState::kQueued;
  std::string run_type = "manual";  // manual | scheduled | backfill
  std::string logical_date;         // ISO 8601 UTC
  std::string data_interval_start;
  std::string data_interval_end;
  nlohmann::json params = nlohmann::json::object();  // the effective params of the run
  std::string dag_path;                              // the DAG file it was started from
  std::string dag_source;  // the DAG file's text at trigger time: a resumed run uses it
  std::string created_at;
  std::string started_at;
  std::string ended_at;
  std::string triggered_by;  // who: "cli:user@host", "scheduler", "api:token-name"
  bool no_cache = false;     // recompute every task: the step cache is not read
  nlohmann::json tags = nlohmann::json::object();  // name -> text, set at trigger
  std::string note;                                // free text, set at trigger

  nlohmann::json ToJson() const;
  static StatusOr<RunRecord> FromJson(const nlohmann::json& j);
};

// One try of one task; the latest try of a task carries the task's state.
struct TryRecord {
  std::string dag_id;
  std::string run_id;
  std::string task_id;
  int try_number = 1;
  // Tries made before the task was last cleared: retries count from here, so a cleared task
  // gets its full `retries` again.
  int retry_base = 0;
  TaskState state = TaskState::kQueued;
  std::string reason;  // why it is in this state ("command exited with code 2", …)
  std::string queued_at;
  std::string started_at;
  std::string ended_at;
  double duration_seconds = 0;
  int64_t worker_pid = 0;
  std::string retry_at;  // for up_for_retry: when the next try may start (ISO 8601 UTC)
  std::string log_path;
  nlohmann::json outputs = nlohmann::json::object();  // name -> {kind, path|value}
  nlohmann::json metrics = nlohmann::json::array();   // [{name, value, step}]
  nlohmann::json params = nlohmann::json::object();   // rendered params given to the step
  nlohmann::json inputs = nlohmann::json::object();   // input name -> artifact id it read
  nlohmann::json tags = nlohmann::json::object();     // name -> text, set by the step
  std::string plugin_version;                         // "core 1.0.0": the code that ran
  std::string cache_key;                              // set when the task is cached (cache = true)
  nlohmann::json cached_from;  // {dag_id, run_id, task_id, try_number} on a cache hit

  std::string idempotency_key() const {
    return dag_id + "/" + run_id + "/" + task_id + "/" + std::to_string(try_number);
  }
  nlohmann::json ToJson() const;
  static StatusOr<TryRecord> FromJson(const nlohmann::json& j);
};

struct Event {
  int64_t seq = 0;  // assigned by the store, increasing per run
  std::string time;
  std::string dag_id;
  std::string run_id;
  std::string task_id;  // empty for run-level events
  int try_number = 0;
  std::string kind;  // "run_state" | "task_state" | "note"
  std::string from;
  std::string to;
  std::string reason;
  std::string actor;  // who or what caused it

  nlohmann::json ToJson() const;
  static StatusOr<Event> FromJson(const nlohmann::json& j);
};

class StateStore {
 public:
  struct Options {
    // Default: true. Turning it off loses the last transitions on a machine crash (not on
    // a process crash); only benchmarks that measure the cost of fsync use it.
    bool sync = true;
    // The rocksdb::Env the store does its I/O through. Default: null, RocksDB's own. Tests
    // pass an EnvWrapper that fails reads or writes on demand (tests/engine/fault_env.h), as
    // leveldb's tests do with SpecialEnv; it must outlive the store.
    rocksdb::Env* env = nullptr;
  };

  // A set of writes committed atomically. Events get their sequence numbers at Commit.
  class Batch {
   public:
    void PutRun(const RunRecord& run);
    void PutRun(RunRecord&& run);
    void PutTry(const TryRecord& record);
    void AddEvent(Event event);
    // Room for this many more runs, tries and events, so that adding them allocates nothing.
    void Reserve(size_t runs, size_t tries, size_t events);
    // Operator state (pause flags, tokens, backfills): a JSON value, or null to delete.
    void PutControl(const std::string& key, nlohmann::json value);
    // A value in one of the module spaces, or null to delete it.
    void Put(Space space, std::string key, nlohmann::json value);
    bool empty() const {
      return runs_.empty() && tries_.empty() && events_.empty() && control_.empty() && kv_.empty();
    }
    size_t size() const {
      return runs_.size() + tries_.size() + events_.size() + control_.size() + kv_.size();
    }

   private:
    friend class StateStore;
    void Clear() {
      runs_.clear();
      tries_.clear();
      events_.clear();
      control_.clear();
      kv_.clear();
    }
    std::vector<RunRecord> runs_;
    std::vector<TryRecord> tries_;
    std::vector<Event> events_;
    std::vector<std::pair<std::string, nlohmann::json>> control_;
    struct Kv {
      Space space;
      std::string key;
      nlohmann::json value;
    };
    std::vector<Kv> kv_;
  };

  // A page of runs, newest first. Filters apply before the page is cut.
  struct RunQuery {
    std::string dag_id;            // empty: every DAG
    std::vector<RunState> states;  // empty: any state
    std::string run_type;          // empty: any type
    size_t limit = 50;
    std::string page_token;  // from RunPage::next_page_token; empty: the first page
    // Also fill RunPage::raw with each run's stored JSON. Without filters, `runs` then holds
    // only the ids and created_at of each run (nothing is parsed): the fast path of the API.
    bool raw = false;
  };
  struct RunPage {
    std::vector<RunRecord> runs;
    std::vector<std::string> raw;  // with RunQuery::raw: the stored JSON, without dag_source
    std::string next_page_token;   // empty when there are no more
  };

  // Opens (creating if needed) the store in `dir`. Fails with a clear message when another
  // process holds it, or when it was written with another schema version.
  static StatusOr<std::unique_ptr<StateStore>> Open(const std::string& dir, Options options);
  static StatusOr<std::unique_ptr<StateStore>> Open(const std::string& dir) {
    return Open(dir, Options());
  }
  // Opens for reading only, without the lock: works while a daemon or `sluice run` owns the
  // directory (it sees what was committed when it opened). Commit fails on such a store.
  static StatusOr<std::unique_ptr<StateStore>> OpenReadOnly(const std::string& dir);
  ~StateStore();

  const std::string& dir() const { return dir_; }

  // What opening had to give up, one sentence each, for the caller to print or log: RocksDB
  // drops the unreadable end of a damaged write-ahead log (point-in-time recovery), and each
  // warning names the log, the bytes dropped and the commits kept. Empty on a clean open.
  // A writer's open also keeps a copy of the damaged logs under `<dir>/damaged/`, which the
  // warning names. Damage that loses more than a log's end (a MANIFEST that no longer lists
  // data, a table file that does not read) fails the open with Corruption instead, before
  // anything is written.
  const std::vector<std::string>& open_warnings() const { return warnings_; }

  // Rebuilds a damaged store from its intact files (RocksDB's RepairDB), after copying the
  // whole database folder to `<dir>/damaged/<time>/db`. Records that were only in damaged
  // files are lost. Must not run while another process has the store open.
  static Status Repair(const std::string& dir);

  // Whether a process has the store at `dir` open for writing (`sluice run`, the daemon):
  // it holds the database's lock, which this only tests and never takes.
  static bool HasWriter(const std::string& dir);

  // Writes the batch durably (fsync unless Options::sync is off) and clears it. With
  // `durable` false it is written without an fsync of its own: it becomes durable with the
  // next durable commit (the log is one sequence), or is lost in a crash before that.
  // A batch holding a run whose id breaks CheckRunId is refused whole (InvalidArgument).
  // After a failed write (a full disk, an I/O error) the store stops writing: this and every
  // later Commit return the same IoError, which names the state dir and what to do, and
  // nothing more reaches RocksDB in this process. Reopening the store (`--resume`, a daemon
  // restart) continues from what was durable.
  Status Commit(Batch* batch, bool durable = true);
  // The first write error, or OK while writes succeed.
  Status write_error() const;

  StatusOr<RunRecord> GetRun(const std::string& dag_id, const std::string& run_id) const;
  // Whether the run exists: one point read, nothing parsed.
  bool HasRun(const std::string& dag_id, const std::string& run_id) const;
  // Finds a run by id alone. NotFound if none; InvalidArgument if several DAGs have it.
  StatusOr<RunRecord> FindRun(const std::string& run_id) const;
  // Every list and scan below fails rather than return part of what is stored: an IoError
  // when RocksDB cannot read (the iterator's status), Corruption naming the key when a run,
  // try or event record does not parse. (Module-space and control values that do not parse
  // are skipped: the modules check what they read.)
  //
  // Runs, newest first (by created_at), optionally of one DAG; at most `limit`.
  StatusOr<std::vector<RunRecord>> ListRuns(const std::string& dag_id, size_t limit) const;
  // A page of runs through the creation-time index: O(page), not O(runs), without filters.
  StatusOr<RunPage> QueryRuns(const RunQuery& query) const;
  // Every try of every task of a run, ordered by task id then try number.
  StatusOr<std::vector<TryRecord>> ListTries(const std::string& dag_id,
                                             const std::string& run_id) const;
  // One try of a task: `try_number`, or the latest that ran when it is 0. NotFound says
  // whether the task or only that try is missing.
  StatusOr<TryRecord> FindTry(const std::string& dag_id, const std::string& run_id,
                              const std::string& task_id, int try_number) const;
  StatusOr<std::vector<Event>> ListEvents(const std::string& dag_id,
                                          const std::string& run_id) const;
  // Every try of every run (for garbage collection); `fn` returning false stops the scan.
  Status ScanTries(const std::function<bool(const TryRecord&)>& fn) const;

  // Operator state. NotFound when the key has no value.
  StatusOr<nlohmann::json> GetControl(const std::string& key) const;
  // Every (key, value) whose key starts with `prefix`, in key order.
  StatusOr<std::vector<std::pair<std::string, nlohmann::json>>> ListControl(
      const std::string& prefix) const;

  // Module spaces. Get: NotFound when the key has no value. Scan: (key, value) pairs whose key
  // starts with `prefix`, in key order, at most `limit`; `fn` returning false stops it.
  StatusOr<nlohmann::json> Get(Space space, const std::string& key) const;
  bool Has(Space space, const std::string& key) const;
  Status Scan(
      Space space, const std::string& prefix,
      const std::function<bool(const std::string& key, const nlohmann::json& value)>& fn) const;
  // Keys only, nothing parsed.
  Status ScanKeys(Space space, const std::string& prefix,
                  const std::function<bool(const std::string& key)>& fn) const;

  // Deletes an ended run: its record, tries, source and index entries (its events stay: the
  // audit log is append-only). Logs and files under the state dir are the caller's.
  Status DeleteRun(const std::string& dag_id, const std::string& run_id);

  // Held by read-modify-write updates of a module space (the model registry), so that
  // concurrent callers in this process see each other's writes.
  std::unique_lock<std::mutex> LockForUpdate() const;

 private:
  StateStore();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string dir_;
  std::vector<std::string> warnings_;
};

}  // namespace sluice

#endif  // SLUICE_STATE_STORE_H_
