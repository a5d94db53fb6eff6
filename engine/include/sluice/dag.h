// The DAG model: what a validated DAG file means, with [defaults] already applied.
//
// A Dag is produced only by the loader (dag_loader.h) and only when the whole file is valid:
// every task has a known plugin name, dependencies name existing tasks, the graph has no
// cycle, inputs and `when` conditions read only from upstream tasks, templates use only
// known variables. Code that receives a Dag may rely on all of that.
//
// Thread safety: a Dag is immutable after loading and may be shared across threads.
#ifndef SLUICE_DAG_H_
#define SLUICE_DAG_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "sluice/cron.h"
#include "sluice/diagnostics.h"
#include "sluice/duration.h"
#include "sluice/expression.h"

namespace sluice {

using TimePoint = std::chrono::sys_seconds;

// When a task runs, given the states of its direct upstream tasks. Semantics match Airflow's
// trigger rules of the same names; docs/dag-format.md has the table.
enum class TriggerRule {
  kAllSuccess,
  kAllFailed,
  kAllDone,
  kOneSuccess,
  kOneFailed,
  kNoneFailed,
  kNoneFailedMinOneSuccess,
  kNoneSkipped,
  kAlways,
};
std::string_view TriggerRuleName(TriggerRule rule);
std::optional<TriggerRule> ParseTriggerRule(std::string_view name);
std::vector<std::string> TriggerRuleNames();

// Which missed schedule intervals the scheduler creates runs for.
enum class CatchupPolicy {
  kAll,     // every interval since start_date (or the last run)
  kLatest,  // only the most recent complete interval
  kNone,    // no missed interval; only those that fall due while the scheduler runs
};
std::string_view CatchupPolicyName(CatchupPolicy policy);

// Exponential backoff between retries. Try n (n >= 1 failed tries so far) waits
// min(max_delay, retry_delay * multiplier^(n-1)), then jitter shortens it by a random
// fraction up to `jitter` (0 = exact, 1 = anywhere between 0 and the delay).
struct RetryBackoff {
  bool exponential = false;
  double multiplier = 2.0;
  Duration max_delay = std::chrono::hours(1);
  double jitter = 0.0;
};

// The wait before the next try after `failed_tries` (>= 1) failed tries; `random01` is a
// uniform random number in [0, 1) that the caller draws (so tests can fix it).
Duration RetryDelay(Duration retry_delay, const RetryBackoff& backoff, int failed_tries,
                    double random01);

// Limits on the worker process while it runs one try, set with setrlimit. Cheap and coarse:
// memory is the address space of the whole worker process (its own ~100 MiB included);
// CPU time counts from the start of the try; both apply to commands the step starts.
struct ResourceLimits {
  std::optional<uint64_t> memory_bytes;  // RLIMIT_AS: allocation fails beyond it
  std::optional<Duration> cpu_time;      // RLIMIT_CPU: the worker gets SIGXCPU and dies
  std::optional<int64_t> open_files;     // RLIMIT_NOFILE
  bool empty() const { return !memory_bytes && !cpu_time && !open_files; }
};

struct TaskSpec {
  std::string id;
  std::string plugin;
  std::string description;
  std::vector<std::string> depends_on;  // as written, in order
  nlohmann::json params = nlohmann::json::object();
  // Input name -> "task.output" reference to an upstream task's output.
  struct Input {
    std::string name;
    std::string task;
    std::string output;
    SourcePos output_pos;  // where OUTPUT is written in the file
  };
  std::vector<Input> inputs;
  int retries = 0;
  Duration retry_delay = std::chrono::seconds(30);
  RetryBackoff retry_backoff;
  std::optional<Duration> timeout;  // none = no limit
  // After a timeout, how long the cancelled step has to stop before its worker's process
  // group is killed; none = the executor's default (10 s).
  std::optional<Duration> timeout_grace;
  TriggerRule trigger_rule = TriggerRule::kAllSuccess;
  std::string pool = "default";
  int priority = 1;  // higher runs first among ready tasks
  bool cache = false;
  ResourceLimits limits;
  std::shared_ptr<const Expression> when;  // null = always run
  // Where each of when->references() starts in the file, in the same order.
  std::vector<SourcePos> when_ref_pos;

  // Where things were written, for messages that point back into the file.
  SourcePos pos;                                               // the [[task]] header
  SourcePos plugin_pos;                                        // the plugin value
  std::unordered_map<std::string, SourcePos> param_pos;        // param name -> its key
  std::unordered_map<std::string, SourcePos> param_value_pos;  // param name -> its value
};

struct DagSpec {
  std::string id;
  std::string description;
  std::string owner;
  std::vector<std::string> tags;
  std::optional<std::string> schedule;       // cron text or @macro; absent = manual only
  std::shared_ptr<const CronSchedule> cron;  // `schedule`, parsed; null when absent
  std::string timezone = "UTC";
  std::optional<TimePoint> start_date;
  std::optional<TimePoint> end_date;
  CatchupPolicy catchup = CatchupPolicy::kLatest;
  int max_active_runs = 16;
  // Paused when a daemon first sees it, until someone unpauses it (Airflow's
  // dags_are_paused_at_creation, per DAG): for DAGs whose runs change what others rely on.
  bool paused = false;
  std::optional<Duration> dagrun_timeout;
  nlohmann::json params = nlohmann::json::object();  // defaults, overridable per trigger
  std::vector<TaskSpec> tasks;                       // in file order

  std::string source_path;  // the file it was loaded from, as given
  SourcePos id_pos;
  SourcePos schedule_pos;
};

// A validated DAG plus its graph, indexed for the run logic.
class Dag {
 public:
  explicit Dag(DagSpec spec);

  const DagSpec& spec() const { return spec_; }
  const std::string& id() const { return spec_.id; }
  const std::vector<TaskSpec>& tasks() const { return spec_.tasks; }
  size_t size() const { return spec_.tasks.size(); }

  // Index of a task by id, or -1.
  int64_t IndexOf(std::string_view task_id) const;
  // Direct upstream / downstream task indices, deduplicated.
  const std::vector<uint32_t>& upstream(size_t task) const { return upstream_[task]; }
  const std::vector<uint32_t>& downstream(size_t task) const { return downstream_[task]; }

  // A topological order: every task after all its upstream tasks; ties in file order.
  const std::vector<uint32_t>& topological_order() const { return order_; }
  // Layers: layer 0 holds tasks without upstream; layer k tasks whose longest upstream path
  // has k edges. Tasks in one layer could run at the same time.
  const std::vector<std::vector<uint32_t>>& layers() const { return layers_; }
  // Number of dependency edges.
  size_t edge_count() const { return edge_count_; }

 private:
  DagSpec spec_;
  std::unordered_map<std::string_view, uint32_t> index_;
  std::vector<std::vector<uint32_t>> upstream_;
  std::vector<std::vector<uint32_t>> downstream_;
  std::vector<uint32_t> order_;
  std::vector<std::vector<uint32_t>> layers_;
  size_t edge_count_ = 0;
};

// Formats a time point as ISO 8601 UTC: "2026-01-01T03:00:00Z".
std::string FormatTimeUtc(TimePoint t);
// An ISO 8601 instant: "2026-01-01T03:00:00Z", "2026-01-01T04:00:00+01:00", "2026-01-01T03:00"
// (UTC) or "2026-01-01" (midnight UTC). Fractional seconds are dropped. Null when malformed.
std::optional<std::chrono::sys_seconds> ParseTimeUtc(const std::string& text);
// The same, keeping fractional seconds (to the microsecond): for deadlines computed from a
// recorded time, such as a run's start.
std::optional<std::chrono::system_clock::time_point> ParseTimeUtcPrecise(const std::string& text);

// The resolved DAG as JSON (defaults applied; durations as text, times as ISO 8601 UTC), with
// its topological order and layers. The shape is documented in docs/dag-format.md.
nlohmann::json DagToJson(const Dag& dag);

}  // namespace sluice

#endif  // SLUICE_DAG_H_
