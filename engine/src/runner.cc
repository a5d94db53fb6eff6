#include "sluice/runner.h"

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <set>

#include "sluice/artifacts.h"
#include "sluice/dag_loader.h"
#include "sluice/expression.h"
#include "sluice/plugin_abi.h"
#include "sluice/registry.h"
#include "sluice/template.h"

namespace sluice {

using nlohmann::json;
using std::chrono::system_clock;

namespace {
// How a task's reason starts when its `when` could not be evaluated ("... is false" is a
// skip, not this).
constexpr char kWhenUnevaluable[] = "`when` condition \"";

// The value at path[from], path[from + 1], ... inside `root` (a dotted path into JSON), or
// null with the first name that is not there in `missing`.
const json* Descend(const json& root, const std::vector<std::string>& path, size_t from,
                    std::string* missing) {
  const json* node = &root;
  for (size_t k = from; k < path.size(); ++k) {
    if (!node->is_object() || !node->contains(path[k])) {
      *missing = path[k];
      return nullptr;
    }
    node = &(*node)[path[k]];
  }
  return node;
}
}  // namespace

// ---------------------------------------------------------------------------------------------
// Params

namespace {

Status CheckOverride(const DagSpec& dag, const std::string& name, const json& value,
                     const std::string& shown) {
  if (!dag.params.contains(name)) {
    std::string declared;
    for (const auto& item : dag.params.items())
      declared += (declared.empty() ? "" : ", ") + item.key();
    return Status::InvalidArgument(
        "param " + name + ": DAG \"" + dag.id + "\" declares no param \"" + name + "\"" +
        (declared.empty() ? " (it has no [params])" : " (declared: " + declared + ")"));
  }
  const json& declared = dag.params[name];
  bool ok = (declared.is_number() && value.is_number()) ||
            (declared.is_boolean() && value.is_boolean()) ||
            (declared.is_string() && value.is_string()) ||
            (declared.is_array() && value.is_array()) ||
            (declared.is_object() && value.is_object()) || declared.is_null();
  if (declared.is_number_integer() && value.is_number_float()) ok = false;
  if (!ok) {
    return Status::InvalidArgument("param " + name + "=" + shown +
                                   ": expected a value like the default " +
                                   declared.dump(-1, ' ', false, json::error_handler_t::replace) +
                                   " (" + std::string(declared.type_name()) + ")");
  }
  return Status::Ok();
}

}  // namespace

StatusOr<json> ResolveRunParams(const DagSpec& dag, const std::vector<std::string>& assignments) {
  json overrides = json::object();
  for (const std::string& assignment : assignments) {
    size_t eq = assignment.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::InvalidArgument("--param \"" + assignment + "\" is not NAME=VALUE");
    }
    const std::string name = assignment.substr(0, eq);
    const std::string text = assignment.substr(eq + 1);
    json value;
    try {
      value = json::parse(text);
    } catch (const json::exception&) {
      value = text;
    }
    // --param name=123 on a string param means the text "123".
    if (dag.params.contains(name) && dag.params[name].is_string() && !value.is_string())
      value = text;
    Status s = CheckOverride(dag, name, value, text);
    if (!s.ok()) return Status::InvalidArgument("--" + s.message());
    overrides[name] = value;
  }
  return ResolveRunParamsJson(dag, overrides);
}

Status CheckTags(const json& tags) {
  if (!tags.is_object()) return Status::InvalidArgument("tags must be an object of name: text");
  for (const auto& [name, value] : tags.items()) {
    const bool valid_name =
        !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
          return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' ||
                 c == ':';
        });
    if (!valid_name) {
      return Status::InvalidArgument("tag name \"" + name +
                                     "\" is not valid: use 1-64 letters, digits, _ . - or :");
    }
    if (!value.is_string()) {
      return Status::InvalidArgument("tag \"" + name + "\" must be text, got " +
                                     value.dump(-1, ' ', false, json::error_handler_t::replace));
    }
    if (value.get_ref<const std::string&>().size() > 1000) {
      return Status::InvalidArgument("tag \"" + name + "\" is longer than 1,000 bytes");
    }
  }
  return Status::Ok();
}

StatusOr<json> ParseTags(const std::vector<std::string>& assignments) {
  json tags = json::object();
  for (const std::string& a : assignments) {
    const size_t eq = a.find('=');
    if (eq == std::string::npos) {
      return Status::InvalidArgument("--tag \"" + a + "\" is not NAME=VALUE");
    }
    tags[a.substr(0, eq)] = a.substr(eq + 1);
  }
  SLUICE_RETURN_IF_ERROR(CheckTags(tags));
  return tags;
}

StatusOr<json> ResolveRunParamsJson(const DagSpec& dag, const json& overrides) {
  if (!overrides.is_object()) return Status::InvalidArgument("params must be a JSON object");
  json params = dag.params;
  for (const auto& item : overrides.items()) {
    SLUICE_RETURN_IF_ERROR(
        CheckOverride(dag, item.key(), item.value(),
                      item.value().dump(-1, ' ', false, json::error_handler_t::replace)));
    params[item.key()] = item.value();
  }
  return params;
}

// ---------------------------------------------------------------------------------------------
// Runtime state

struct Runner::TaskRt {
  TaskState state = TaskState::kPending;
  uint32_t waiting = 0;  // upstream tasks not yet ended
  uint32_t n_success = 0;
  uint32_t n_failed = 0;  // failed or upstream_failed
  uint32_t n_skipped = 0;
  bool decided = false;  // the trigger rule has fired (queued, running or ended)
  // record.try_number is the next try already (a cleared task), not the last one made.
  bool try_reserved = false;
  TryRecord record;  // the latest try, or try 0 for a task that ended without one
  FILE* log = nullptr;
  std::chrono::steady_clock::time_point started;
};

struct Runner::RunRt {
  uint64_t seq = 0;
  std::shared_ptr<const Dag> dag;
  RunRecord record;
  std::vector<TaskRt> tasks;
  std::vector<uint32_t> position;  // task -> index in topological order
  size_t ended = 0;
  bool finished = false;
  std::string cancelled_by;  // set by CancelRun: nothing more starts
  std::string key() const { return record.dag_id + "/" + record.run_id; }
};

namespace {

std::string_view LevelName(int level) {
  switch (level) {
    case SLUICE_LOG_DEBUG:
      return "DEBUG";
    case SLUICE_LOG_INFO:
      return "INFO ";
    case SLUICE_LOG_WARNING:
      return "WARN ";
    case SLUICE_LOG_ERROR:
      return "ERROR";
    default:
      return "INFO ";
  }
}

enum class Decision { kWait, kRun, kSkip, kUpstreamFailed };

Decision Evaluate(TriggerRule rule, uint32_t total, const Runner::TaskRt& t) {
  const bool all_done = t.waiting == 0;
  if (total == 0) return Decision::kRun;
  switch (rule) {
    case TriggerRule::kAlways:
      return Decision::kRun;
    case TriggerRule::kAllSuccess:
      if (!all_done) return Decision::kWait;
      if (t.n_success == total) return Decision::kRun;
      return t.n_failed > 0 ? Decision::kUpstreamFailed : Decision::kSkip;
    case TriggerRule::kAllFailed:
      if (!all_done) return Decision::kWait;
      return t.n_failed == total ? Decision::kRun : Decision::kSkip;
    case TriggerRule::kAllDone:
      return all_done ? Decision::kRun : Decision::kWait;
    case TriggerRule::kOneSuccess:
      if (t.n_success > 0) return Decision::kRun;
      if (!all_done) return Decision::kWait;
      return t.n_failed == total ? Decision::kUpstreamFailed : Decision::kSkip;
    case TriggerRule::kOneFailed:
      if (t.n_failed > 0) return Decision::kRun;
      return all_done ? Decision::kSkip : Decision::kWait;
    case TriggerRule::kNoneFailed:
      if (!all_done) return Decision::kWait;
      return t.n_failed == 0 ? Decision::kRun : Decision::kUpstreamFailed;
    case TriggerRule::kNoneFailedMinOneSuccess:
      if (!all_done) return Decision::kWait;
      if (t.n_failed > 0) return Decision::kUpstreamFailed;
      return t.n_success > 0 ? Decision::kRun : Decision::kSkip;
    case TriggerRule::kNoneSkipped:
      if (!all_done) return Decision::kWait;
      return t.n_skipped == 0 ? Decision::kRun : Decision::kSkip;
  }
  return Decision::kWait;
}

std::string IsoUtc(system_clock::time_point t) {
  return FormatTimeUtc(std::chrono::floor<std::chrono::seconds>(t));
}

// "abc" -> an output value for `when` and inputs.
const json* LookupOutput(const TryRecord& upstream, const std::string& name) {
  auto it = upstream.outputs.find(name);
  return it == upstream.outputs.end() ? nullptr : &*it;
}

}  // namespace

Runner::Runner(boost::asio::io_context& io, StateStore* store, const PluginCatalog* catalog,
               Clock* clock, RunnerOptions options)
    : io_(io),
      store_(store),
      catalog_(catalog),
      clock_(clock),
      options_(std::move(options)),
      rng_(options_.random_seed) {
  // Absolute: paths in records and requests must mean the same in every worker's directory.
  std::error_code ec;
  if (!options_.state_dir.empty()) {
    options_.state_dir = std::filesystem::absolute(options_.state_dir, ec).lexically_normal();
  }
  artifact_root_ = ArtifactStore::RootFor(options_.state_dir).string();
}

Runner::~Runner() {
  for (auto& [key, run] : runs_) {
    for (TaskRt& t : run->tasks) {
      if (t.log) std::fclose(t.log);
    }
  }
}

size_t Runner::active_runs() const { return runs_.size(); }

size_t Runner::active_runs(const std::string& dag_id) const {
  size_t n = 0;
  for (auto it = runs_.lower_bound(dag_id + "/");
       it != runs_.end() && it->first.rfind(dag_id + "/", 0) == 0; ++it)
    ++n;
  return n;
}

bool Runner::IsActive(const std::string& dag_id, const std::string& run_id) const {
  auto it = runs_.find(dag_id + "/" + run_id);
  return it != runs_.end() && !it->second->finished;
}

std::map<TaskState, size_t> Runner::ActiveTaskStates() const {
  std::map<TaskState, size_t> counts;
  for (const auto& [key, run] : runs_) {
    for (const TaskRt& t : run->tasks) ++counts[t.state];
  }
  return counts;
}

std::map<std::string, size_t> Runner::ActiveRunsByDag() const {
  std::map<std::string, size_t> counts;
  for (const auto& [key, run] : runs_) {
    if (!run->finished) ++counts[run->record.dag_id];
  }
  return counts;
}

std::string Runner::Now() const { return FormatTimestamp(clock_->Now()); }

Status Runner::Sync() {
  Flush();
  return fatal_;
}

void Runner::MarkDirty() {
  if (flush_posted_) return;
  flush_posted_ = true;
  boost::asio::post(io_, [this] { Flush(); });
}

// ---------------------------------------------------------------------------------------------
// Recording

void Runner::RecordTask(RunRt* run, size_t task, TaskState from, const std::string& reason) {
  TaskRt& t = run->tasks[task];
  batch_.PutTry(t.record);
  Event e;
  e.time = Now();
  e.dag_id = run->record.dag_id;
  e.run_id = run->record.run_id;
  e.task_id = t.record.task_id;
  e.try_number = t.record.try_number;
  e.kind = "task_state";
  e.from = TaskStateName(from);
  e.to = TaskStateName(t.state);
  e.reason = reason;
  e.actor = Actor();
  batch_.AddEvent(std::move(e));
  changed_tasks_.emplace_back(run, task);
}

namespace {
// The event of a run's state change, without its time and actor.
Event RunStateEvent(const RunRecord& run, RunState from, std::string reason) {
  Event e;
  e.dag_id = run.dag_id;
  e.run_id = run.run_id;
  e.kind = "run_state";
  e.from = RunStateName(from);
  e.to = RunStateName(run.state);
  e.reason = std::move(reason);
  return e;
}
}  // namespace

void Runner::RecordRun(RunRt* run, RunState from, const std::string& reason) {
  batch_.PutRun(run->record);
  Event e = RunStateEvent(run->record, from, reason);
  e.time = Now();
  e.actor = Actor();
  batch_.AddEvent(std::move(e));
  changed_runs_.push_back(run);
}

// ---------------------------------------------------------------------------------------------
// Triggering and resuming

std::string Runner::NewRunId(const std::string& dag_id, const std::string& run_type,
                             system_clock::time_point logical_date) const {
  std::string base = run_type + "__" + FormatTimestamp(logical_date);
  std::string id = base;
  for (int n = 2; store_->HasRun(dag_id, id) || runs_.count(dag_id + "/" + id); ++n) {
    id = base + "." + std::to_string(n);
  }
  return id;
}

Runner::PreparedRun::PreparedRun() = default;
Runner::PreparedRun::~PreparedRun() = default;
const std::string& Runner::PreparedRun::dag_id() const { return run_->record.dag_id; }
const std::string& Runner::PreparedRun::run_id() const { return run_->record.run_id; }
const Dag* Runner::PreparedRun::dag() const { return run_->dag.get(); }

StatusOr<RunRecord> Runner::Trigger(TriggerRequest request) {
  StatusOr<std::unique_ptr<PreparedRun>> prepared = Prepare(std::move(request));
  if (!prepared.ok()) return prepared.status();
  RunRecord created;
  if (Status s = Launch(std::move(*prepared), &created); !s.ok()) return s;
  return created;
}

StatusOr<std::unique_ptr<Runner::PreparedRun>> Runner::Prepare(TriggerRequest request) {
  if (!fatal_.ok()) return fatal_;
  const Dag& dag = *request.dag;
  // Every step must exist before anything is recorded.
  for (const TaskSpec& task : dag.tasks()) {
    if (catalog_->FindStep(task.plugin) == nullptr) {
      return Status::FailedPrecondition(
          "task \"" + task.id + "\" uses plugin step \"" + task.plugin +
          "\", which no installed plugin provides (`sluice plugins list` "
          "shows them; SLUICE_PLUGIN_PATH adds folders)");
    }
  }
  const system_clock::time_point logical = request.logical_date.value_or(clock_->Now());
  std::unique_ptr<PreparedRun> prepared(new PreparedRun());
  prepared->run_ = std::make_unique<RunRt>();
  RunRt* run = prepared->run_.get();
  run->dag = request.dag;
  RunRecord& r = run->record;
  r.dag_id = dag.id();
  r.run_id =
      request.run_id.empty() ? NewRunId(dag.id(), request.run_type, logical) : request.run_id;
  // Before anything names a folder after it.
  SLUICE_RETURN_IF_ERROR(CheckRunId(r.run_id));
  if (runs_.count(r.dag_id + "/" + r.run_id) > 0 || store_->HasRun(r.dag_id, r.run_id)) {
    return Status::AlreadyExists("DAG \"" + r.dag_id + "\" already has a run \"" + r.run_id + "\"");
  }
  r.run_type = std::move(request.run_type);
  r.logical_date = IsoUtc(logical);
  r.data_interval_start = r.logical_date;
  r.data_interval_end =
      request.data_interval_end ? IsoUtc(*request.data_interval_end) : r.logical_date;
  json params = dag.spec().params;
  for (const auto& item : request.params.items()) params[item.key()] = item.value();
  r.params = std::move(params);
  // Absolute: a resume from another folder, and the steps that resolve relative paths
  // against the DAG's folder (dag_dir in the try request), must find the same file.
  std::error_code absolute_error;
  const std::filesystem::path absolute =
      std::filesystem::absolute(dag.spec().source_path, absolute_error);
  r.dag_path = absolute_error || dag.spec().source_path.empty()
                   ? dag.spec().source_path
                   : absolute.lexically_normal().string();
  r.dag_source = std::move(request.dag_source);
  r.triggered_by = request.triggered_by.empty() ? options_.actor : request.triggered_by;
  r.no_cache = request.no_cache;
  r.tags = std::move(request.tags);
  r.note = std::move(request.note);
  r.state = RunState::kRunning;
  run->tasks.resize(dag.size());
  for (size_t i = 0; i < dag.size(); ++i) {
    TaskRt& t = run->tasks[i];
    t.waiting = static_cast<uint32_t>(dag.upstream(i).size());
    t.record.dag_id = r.dag_id;
    t.record.run_id = r.run_id;
    t.record.task_id = dag.tasks()[i].id;
    t.record.try_number = 0;
  }
  run->position.resize(dag.size());
  for (size_t k = 0; k < dag.topological_order().size(); ++k)
    run->position[dag.topological_order()[k]] = static_cast<uint32_t>(k);
  // What Launch records: the run (stamped then) and its event.
  prepared->stored_ = r;
  prepared->event_ = RunStateEvent(r, RunState::kQueued, "triggered by " + r.triggered_by);
  prepared->runs_released_ = runs_released_;
  return prepared;
}

void Runner::ReserveLaunches(size_t runs) {
  // Each launch records the run, its first tasks as queued, and an event for each.
  batch_.Reserve(runs, runs, 2 * runs);
  changed_runs_.reserve(changed_runs_.size() + runs);
  changed_tasks_.reserve(changed_tasks_.size() + runs);
}

Status Runner::Launch(std::unique_ptr<PreparedRun> prepared, RunRecord* created) {
  if (!fatal_.ok()) return fatal_;
  std::unique_ptr<RunRt> run = std::move(prepared->run_);
  RunRecord& r = run->record;
  // Prepare checked the id; a run made since (by the API, a backfill) may have taken it. It
  // is in runs_, unless it has ended already: only then the store must say.
  if (runs_.count(run->key()) > 0 ||
      (runs_released_ != prepared->runs_released_ && store_->HasRun(r.dag_id, r.run_id))) {
    return Status::AlreadyExists("DAG \"" + r.dag_id + "\" already has a run \"" + r.run_id + "\"");
  }
  r.created_at = Now();
  r.started_at = r.created_at;
  RunRecord& stored = prepared->stored_;
  stored.created_at = r.created_at;
  stored.started_at = r.created_at;
  batch_.PutRun(std::move(stored));
  prepared->event_.time = r.created_at;
  prepared->event_.actor = Actor();
  batch_.AddEvent(std::move(prepared->event_));
  changed_runs_.push_back(run.get());
  if (created) *created = r;
  StartRun(std::move(run));
  return Status::Ok();
}

StatusOr<Runner::RunRt*> Runner::LoadRun(const RunRecord& stored) {
  const std::string& dag_id = stored.dag_id;
  const std::string& run_id = stored.run_id;
  if (runs_.count(dag_id + "/" + run_id)) {
    return Status::FailedPrecondition("run \"" + run_id + "\" is already running here");
  }
  // The run goes on with the DAG as it was when the run started, not as the file is now.
  DagLoadResult loaded = LoadDagText(stored.dag_source, stored.dag_path);
  if (!loaded.ok()) {
    return Status::Corruption("the DAG stored with run \"" + run_id + "\" no longer validates");
  }
  std::shared_ptr<const Dag> dag(std::move(loaded.dag));
  for (const TaskSpec& task : dag->tasks()) {
    if (catalog_->FindStep(task.plugin) == nullptr) {
      return Status::FailedPrecondition("task \"" + task.id + "\" uses plugin step \"" +
                                        task.plugin + "\", which no installed plugin provides");
    }
  }
  auto run = std::make_unique<RunRt>();
  run->dag = dag;
  run->record = stored;
  run->tasks.resize(dag->size());
  for (size_t i = 0; i < dag->size(); ++i) {
    TaskRt& t = run->tasks[i];
    t.record.dag_id = dag_id;
    t.record.run_id = run_id;
    t.record.task_id = dag->tasks()[i].id;
    t.record.try_number = 0;
  }
  // The latest record of each task carries its state. A history that cannot be read in
  // full is not resumed: a missing success would run a task again.
  StatusOr<std::vector<TryRecord>> tries = store_->ListTries(dag_id, run_id);
  if (!tries.ok()) return tries.status();
  for (TryRecord& tr : *tries) {
    int64_t i = dag->IndexOf(tr.task_id);
    if (i < 0) continue;
    TaskRt& t = run->tasks[static_cast<size_t>(i)];
    if (tr.try_number >= t.record.try_number) {
      t.state = tr.state;
      t.record = std::move(tr);
    }
  }
  RunRt* r = run.get();
  runs_[r->key()] = std::move(run);
  r->seq = next_run_seq_++;
  r->position.resize(dag->size());
  for (size_t k = 0; k < dag->topological_order().size(); ++k)
    r->position[dag->topological_order()[k]] = static_cast<uint32_t>(k);

  // Rebuild the counters from the ended tasks.
  for (size_t i = 0; i < dag->size(); ++i) {
    TaskRt& t = r->tasks[i];
    t.waiting = 0;
    for (uint32_t u : dag->upstream(i)) {
      const TaskState s = r->tasks[u].state;
      if (!IsTerminal(s)) {
        ++t.waiting;
      } else if (s == TaskState::kSuccess) {
        ++t.n_success;
      } else if (s == TaskState::kSkipped) {
        ++t.n_skipped;
      } else {
        ++t.n_failed;
      }
    }
    if (IsTerminal(t.state)) {
      t.decided = true;
      ++r->ended;
    }
    // A cleared task's record is its next try, recorded as pending.
    if (t.state == TaskState::kPending && t.record.try_number > 0) t.try_reserved = true;
  }
  return r;
}

StatusOr<RunRecord> Runner::Resume(const std::string& dag_id, const std::string& run_id) {
  if (!fatal_.ok()) return fatal_;
  StatusOr<RunRecord> stored = store_->GetRun(dag_id, run_id);
  if (!stored.ok()) return stored.status();
  if (stored->state == RunState::kSuccess || stored->state == RunState::kFailed) {
    return Status::FailedPrecondition("run \"" + run_id + "\" already ended (" +
                                      std::string(RunStateName(stored->state)) +
                                      "); nothing to resume");
  }
  StatusOr<RunRt*> loaded = LoadRun(*stored);
  if (!loaded.ok()) return loaded.status();
  RunRt* r = *loaded;
  const Dag* dag = r->dag.get();
  // The run is running again before any of its tasks is decided: deciding an in-flight try
  // with no retry left can end the run, and that end must be the last word.
  const RunState run_from = r->record.state;
  r->record.state = RunState::kRunning;
  RecordRun(r, run_from, "resumed");
  ArmRunTimeout(r);
  // Tries that were in flight died with the previous process: each is a failed try.
  for (size_t i = 0; i < dag->size(); ++i) {
    TaskRt& t = r->tasks[i];
    if (t.state == TaskState::kRunning || t.state == TaskState::kQueued) {
      t.decided = true;
      const TaskState from = t.state;
      t.record.ended_at = Now();
      RetryOrFail(r, i, from,
                  "interrupted: the process running this try stopped (crash, kill or reboot) "
                  "before it finished",
                  /*may_retry=*/true);
    } else if (t.state == TaskState::kUpForRetry) {
      // Its retry delay ran out while no process was there to act on it, or is partly
      // spent: the retry goes ahead now.
      t.decided = true;
      ScheduleRetry(r, i, Duration(0));
    }
  }
  for (size_t i = 0; i < dag->size(); ++i) {
    if (!r->tasks[i].decided) Decide(r, i);
  }
  FinishRunIfDone(r);
  MarkDirty();
  return r->record;
}

Status Runner::CancelRun(const std::string& dag_id, const std::string& run_id,
                         const std::string& actor) {
  if (!fatal_.ok()) return fatal_;
  auto found = runs_.find(dag_id + "/" + run_id);
  if (found == runs_.end() || found->second->finished) {
    StatusOr<RunRecord> stored = store_->GetRun(dag_id, run_id);
    if (!stored.ok()) return stored.status();
    if (stored->state == RunState::kSuccess || stored->state == RunState::kFailed) {
      return Status::FailedPrecondition("run \"" + run_id + "\" already ended (" +
                                        std::string(RunStateName(stored->state)) +
                                        "); there is nothing to cancel");
    }
    return Status::FailedPrecondition("run \"" + run_id +
                                      "\" is not in progress in this process (is another "
                                      "process running it?)");
  }
  RunRt* run = found->second.get();
  if (!run->cancelled_by.empty()) {
    return Status::FailedPrecondition("run \"" + run_id + "\" is already being cancelled (by " +
                                      run->cancelled_by + ")");
  }
  acting_ = actor;
  run->cancelled_by = actor;
  const std::string reason = "run cancelled by " + actor;
  // Queued tasks leave the ready queue and end; so do tasks waiting for upstream tasks or a
  // retry. Running tries are asked to stop and end when the executor says so.
  for (auto it = ready_.begin(); it != ready_.end();) {
    it = it->second.run == run ? ready_.erase(it) : std::next(it);
  }
  std::vector<std::string> in_flight;
  for (const auto& [key, where] : running_) {
    if (where.run == run) in_flight.push_back(key);
  }
  for (uint32_t i : run->dag->topological_order()) {
    TaskRt& t = run->tasks[i];
    if (IsTerminal(t.state)) continue;
    if (t.state == TaskState::kUpForRetry) {
      EndTask(run, i, TaskState::kFailed, t.record.reason + "; no retry: " + reason);
    } else if (t.state == TaskState::kPending || !running_.count(t.record.idempotency_key())) {
      EndTask(run, i, TaskState::kSkipped, reason);
    }
  }
  for (const std::string& key : in_flight) executor_->Cancel(key);
  MarkDirty();
  acting_.clear();
  return Status::Ok();
}

StatusOr<std::vector<std::string>> Runner::ClearTasks(const ClearRequest& request) {
  Flush();  // a run that ended this turn is then in the store, and out of runs_
  if (!fatal_.ok()) return fatal_;
  RunRt* run = nullptr;
  bool reopened = false;
  if (auto found = runs_.find(request.dag_id + "/" + request.run_id);
      found != runs_.end() && !found->second->finished) {
    run = found->second.get();
    if (!run->cancelled_by.empty()) {
      return Status::FailedPrecondition("run \"" + request.run_id +
                                        "\" is being cancelled; clear it once it has ended");
    }
  } else {
    StatusOr<RunRecord> stored = store_->GetRun(request.dag_id, request.run_id);
    if (!stored.ok()) return stored.status();
    if (stored->state != RunState::kSuccess && stored->state != RunState::kFailed) {
      return Status::FailedPrecondition("run \"" + request.run_id +
                                        "\" is in progress in another process");
    }
    StatusOr<RunRt*> loaded = LoadRun(*stored);
    if (!loaded.ok()) return loaded.status();
    run = *loaded;
    reopened = true;
  }
  const Dag& dag = *run->dag;
  auto give_up = [&](Status status) -> Status {
    if (reopened) {
      runs_.erase(run->key());
      ++runs_released_;
    }
    return status;
  };
  std::vector<char> chosen(dag.size(), request.task_ids.empty() ? 1 : 0);
  for (const std::string& id : request.task_ids) {
    const int64_t i = dag.IndexOf(id);
    if (i < 0) {
      return give_up(Status::NotFound("DAG \"" + dag.id() + "\" has no task \"" + id + "\"" +
                                      " (run " + request.run_id + ")"));
    }
    const TaskState state = run->tasks[static_cast<size_t>(i)].state;
    if (state == TaskState::kQueued || state == TaskState::kRunning ||
        state == TaskState::kUpForRetry) {
      return give_up(Status::FailedPrecondition(
          "task \"" + id + "\" is " + std::string(TaskStateName(state)) +
          "; only ended tasks can be cleared (wait for it, or cancel the run)"));
    }
    chosen[static_cast<size_t>(i)] = 1;
  }
  if (request.downstream) {
    for (uint32_t i : dag.topological_order()) {
      if (!chosen[i]) continue;
      for (uint32_t d : dag.downstream(i)) chosen[d] = 1;
    }
  }
  std::vector<std::string> cleared;
  for (uint32_t i : dag.topological_order()) {
    const TaskState state = run->tasks[i].state;
    if (!chosen[i] || !IsTerminal(state)) {
      chosen[i] = 0;
      continue;
    }
    if (request.only_failed && state != TaskState::kFailed && state != TaskState::kUpstreamFailed) {
      chosen[i] = 0;
      continue;
    }
    cleared.push_back(dag.tasks()[i].id);
  }
  if (cleared.empty()) {
    return give_up(Status::FailedPrecondition(
        "nothing to clear in run " + request.run_id +
        (request.only_failed ? ": no chosen task ended failed" : ": no chosen task has ended")));
  }
  acting_ = request.actor;
  const std::string reason = "cleared by " + request.actor;
  for (uint32_t i : dag.topological_order()) {
    if (!chosen[i]) continue;
    TaskRt& t = run->tasks[i];
    const TaskState from = t.state;
    // Its downstream tasks wait for it again.
    for (uint32_t d : dag.downstream(i)) {
      TaskRt& dt = run->tasks[d];
      ++dt.waiting;
      if (from == TaskState::kSuccess) {
        --dt.n_success;
      } else if (from == TaskState::kSkipped) {
        --dt.n_skipped;
      } else {
        --dt.n_failed;
      }
    }
    --run->ended;
    t.state = TaskState::kPending;
    t.decided = false;
    TryRecord& rec = t.record;
    rec.retry_base = rec.try_number;
    rec.try_number += 1;
    t.try_reserved = true;
    rec.state = TaskState::kPending;
    rec.reason = reason;
    rec.queued_at.clear();
    rec.started_at.clear();
    rec.ended_at.clear();
    rec.retry_at.clear();
    rec.duration_seconds = 0;
    rec.worker_pid = 0;
    rec.log_path.clear();
    rec.outputs = json::object();
    rec.metrics = json::array();
    RecordTask(run, i, from, reason);
  }
  if (run->finished || reopened) {
    run->finished = false;
    const RunState from = run->record.state;
    run->record.state = RunState::kRunning;
    run->record.ended_at.clear();
    RecordRun(run, from, std::to_string(cleared.size()) + " task(s) " + reason);
  }
  for (uint32_t i : dag.topological_order()) {
    if (chosen[i] && run->tasks[i].waiting == 0) Decide(run, i);
  }
  MarkDirty();
  acting_.clear();
  return cleared;
}

void Runner::ArmRunTimeout(RunRt* run) {
  const std::optional<Duration>& timeout = run->dag->spec().dagrun_timeout;
  if (!timeout) return;
  Duration left = *timeout;
  // From the start to the microsecond: whole seconds made a 2 s timeout fire after 1.6 s.
  if (std::optional<system_clock::time_point> started =
          ParseTimeUtcPrecise(run->record.started_at)) {
    left -= std::chrono::duration_cast<Duration>(clock_->Now() - *started);
  }
  const std::string dag_id = run->record.dag_id;
  const std::string run_id = run->record.run_id;
  const std::string actor = "dagrun_timeout (" + FormatDuration(*timeout) + ")";
  clock_->RunAfter(std::max(left, Duration(0)), [this, dag_id, run_id, actor] {
    auto it = runs_.find(dag_id + "/" + run_id);
    if (it == runs_.end() || it->second->finished || !it->second->cancelled_by.empty()) return;
    CancelRun(dag_id, run_id, actor).IgnoreError();
  });
}

void Runner::StartRun(std::unique_ptr<RunRt> run) {
  RunRt* r = run.get();
  ArmRunTimeout(r);
  r->seq = next_run_seq_++;
  const Dag& dag = *r->dag;
  runs_[r->key()] = std::move(run);
  for (uint32_t i : dag.topological_order()) {
    if (r->tasks[i].waiting == 0 || dag.tasks()[i].trigger_rule == TriggerRule::kAlways)
      Decide(r, i);
  }
  MarkDirty();
}

// ---------------------------------------------------------------------------------------------
// Deciding, queueing, dispatching

void Runner::Decide(RunRt* run, size_t task) {
  TaskRt& t = run->tasks[task];
  if (t.decided) return;
  if (!run->cancelled_by.empty()) {
    EndTask(run, task, TaskState::kSkipped, "run cancelled by " + run->cancelled_by);
    return;
  }
  const TaskSpec& spec = run->dag->tasks()[task];
  const uint32_t total = static_cast<uint32_t>(run->dag->upstream(task).size());
  switch (Evaluate(spec.trigger_rule, total, t)) {
    case Decision::kWait:
      return;
    case Decision::kSkip:
      t.decided = true;
      EndTask(run, task, TaskState::kSkipped,
              "trigger rule " + std::string(TriggerRuleName(spec.trigger_rule)) +
                  " not met by the upstream tasks");
      return;
    case Decision::kUpstreamFailed:
      t.decided = true;
      EndTask(run, task, TaskState::kUpstreamFailed,
              "an upstream task failed (trigger rule " +
                  std::string(TriggerRuleName(spec.trigger_rule)) + ")");
      return;
    case Decision::kRun:
      break;
  }
  t.decided = true;
  if (spec.when) {
    const Dag& dag = *run->dag;
    StatusOr<bool> go =
        spec.when->EvaluateCondition([&](const std::vector<std::string>& path) -> StatusOr<json> {
          std::string missing;
          if (path[0] == "params") {
            const json* node = Descend(run->record.params, path, 1, &missing);
            if (node == nullptr) return Status::NotFound("param \"" + missing + "\" has no value");
            return *node;
          }
          int64_t up = dag.IndexOf(path[0]);
          if (up < 0) return Status::NotFound("no task \"" + path[0] + "\"");
          const TaskRt& ut = run->tasks[static_cast<size_t>(up)];
          const json* out = LookupOutput(ut.record, path[1]);
          if (out == nullptr) {
            return Status::NotFound("task \"" + path[0] + "\" (" +
                                    std::string(TaskStateName(ut.state)) + ") has no output \"" +
                                    path[1] + "\"");
          }
          const json value =
              out->contains("value") ? (*out)["value"] : json(out->value("path", ""));
          const json* node = Descend(value, path, 2, &missing);
          if (node == nullptr) {
            return Status::NotFound("output \"" + path[0] + "." + path[1] + "\" has no field \"" +
                                    missing + "\"");
          }
          return *node;
        });
    if (!go.ok()) {
      // A bug in the DAG, not a data outcome: it fails the run (FinishRunIfDone), whatever
      // the leaves did.
      EndTask(run, task, TaskState::kFailed,
              kWhenUnevaluable + spec.when->text() + "\": " + go.status().message());
      return;
    }
    if (!*go) {
      EndTask(run, task, TaskState::kSkipped, "`when` condition is false: " + spec.when->text());
      return;
    }
  }
  Enqueue(run, task);
}

void Runner::Enqueue(RunRt* run, size_t task) {
  TaskRt& t = run->tasks[task];
  t.state = TaskState::kQueued;
  t.record.state = TaskState::kQueued;
  const TaskSpec& spec = run->dag->tasks()[task];
  ready_.emplace(ReadyKey{spec.priority, run->seq, run->position[task]}, Running{run, task});
  changed_tasks_.emplace_back(run, task);
  MarkDirty();
}

void Runner::Dispatch() {
  if (executor_ == nullptr || !fatal_.ok() || !dispatching_) return;
  for (auto it = ready_.begin(); it != ready_.end() && in_flight_ < executor_->capacity();) {
    RunRt* run = it->second.run;
    const size_t task = it->second.task;
    const TaskSpec& spec = run->dag->tasks()[task];
    auto pool = options_.pools.find(spec.pool);
    if (pool != options_.pools.end() && pool_used_[spec.pool] >= pool->second) {
      ++it;  // its pool is full; others may still go
      continue;
    }
    it = ready_.erase(it);
    PrepareAndLaunch(run, task);
  }
}

namespace {

// {{ dag.folder }}: the DAG file's folder, absolute (a run's dag_path is kept as given).
std::string DagFolder(const std::string& dag_path) {
  if (dag_path.empty()) return "";
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(dag_path, ec);
  return ec ? std::string() : p.lexically_normal().parent_path().string();
}

// Params as the step cache sees them: the DAG folder in any string (what {{ dag.folder }}
// rendered to) is written as "{{ dag.folder }}" again, so that a copied checkout, the same
// DAG and data in another folder, finds the results cached by the first.
json FolderFreeParams(const json& params, const std::string& folder) {
  if (folder.empty() || folder == "/") return params;
  if (params.is_string()) {
    std::string text = params.get<std::string>();
    for (size_t at = 0; (at = text.find(folder, at)) != std::string::npos;) {
      text.replace(at, folder.size(), "{{ dag.folder }}");
      at += std::string_view("{{ dag.folder }}").size();
    }
    return text;
  }
  if (params.is_array() || params.is_object()) {
    json out = params;
    for (auto& item : out) item = FolderFreeParams(item, folder);
    return out;
  }
  return params;
}

}  // namespace

json Runner::TemplateContext(const RunRt& run, const TaskSpec& task) const {
  const RunRecord& r = run.record;
  const std::string ds = r.logical_date.substr(0, 10);
  std::string nodash;
  for (char c : ds) {
    if (c != '-') nodash += c;
  }
  std::string ts = r.logical_date;
  if (!ts.empty() && ts.back() == 'Z') ts = ts.substr(0, ts.size() - 1) + "+00:00";
  return {{"params", r.params},
          {"ds", ds},
          {"ds_nodash", nodash},
          {"ts", ts},
          {"logical_date", r.logical_date},
          {"data_interval_start", r.data_interval_start},
          {"data_interval_end", r.data_interval_end},
          {"run_id", r.run_id},
          {"dag", {{"id", r.dag_id}, {"folder", DagFolder(r.dag_path)}}},
          {"task", {{"id", task.id}}}};
}

namespace {

// Renders every string in `value` that holds a placeholder. The context is built on first
// need: most params of most tasks hold no placeholder.
Status RenderTree(json& value, const std::function<const json&()>& context) {
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    if (text.find("{{") == std::string::npos) return Status::Ok();
    TemplateError error;
    std::optional<Template> t = Template::Parse(text, &error);
    if (!t) return Status::InvalidArgument(error.message);
    StatusOr<json> rendered = t->Render(context());
    if (!rendered.ok()) return rendered.status();
    value = std::move(*rendered);
    return Status::Ok();
  }
  if (value.is_object() || value.is_array()) {
    for (auto& item : value) SLUICE_RETURN_IF_ERROR(RenderTree(item, context));
  }
  return Status::Ok();
}

}  // namespace

void Runner::PrepareAndLaunch(RunRt* run, size_t task) {
  TaskRt& t = run->tasks[task];
  const TaskSpec& spec = run->dag->tasks()[task];
  const Dag& dag = *run->dag;
  const TaskState from = t.state;

  TryRecord& rec = t.record;
  const bool was_reserved = t.try_reserved;
  if (t.try_reserved) {
    t.try_reserved = false;  // a cleared task: its next try number is recorded already
  } else {
    rec.try_number += 1;
  }
  rec.reason.clear();
  rec.outputs = json::object();
  rec.metrics = json::array();
  rec.inputs = json::object();
  rec.tags = json::object();
  rec.cache_key.clear();
  rec.cached_from = json();
  rec.queued_at = Now();
  rec.started_at = rec.queued_at;
  rec.ended_at.clear();
  rec.retry_at.clear();
  rec.duration_seconds = 0;
  rec.worker_pid = 0;
  namespace fs = std::filesystem;
  // The try's private dirs; the worker removes them after the try (outputs go to the
  // artifact store). Flat, so that nothing is left behind.
  const fs::path try_dir = fs::path(options_.state_dir) / "work" /
                           (run->record.dag_id + "~" + run->record.run_id + "~" + spec.id + "~" +
                            std::to_string(rec.try_number));
  rec.log_path = (fs::path(options_.state_dir) / "logs" / run->record.dag_id / run->record.run_id /
                  spec.id / (std::to_string(rec.try_number) + ".log"))
                     .string();

  json params = spec.params;
  std::optional<json> context;
  Status rendered = RenderTree(params, [&]() -> const json& {
    if (!context) context = TemplateContext(*run, spec);
    return *context;
  });
  json inputs = json::object();
  std::string problem;
  if (!rendered.ok()) problem = "cannot render params: " + rendered.message();
  for (const TaskSpec::Input& input : spec.inputs) {
    if (!problem.empty()) break;
    const TaskRt& up = run->tasks[static_cast<size_t>(dag.IndexOf(input.task))];
    const json* out = LookupOutput(up.record, input.output);
    if (out == nullptr) {
      std::string produced;
      for (const auto& item : up.record.outputs.items())
        produced += (produced.empty() ? "" : ", ") + item.key();
      problem = "input \"" + input.name + "\" needs output \"" + input.output + "\" of task \"" +
                input.task + "\", which it did not produce (" +
                std::string(TaskStateName(up.state)) +
                (produced.empty() ? ", no outputs" : "; outputs: " + produced) + ")";
      break;
    }
    json in = {{"kind", out->value("kind", "value")}};
    if (out->contains("path")) in["path"] = (*out)["path"];
    if (out->contains("value")) in["value"] = (*out)["value"];
    if (out->contains("artifact")) {
      in["artifact"] = (*out)["artifact"];
      rec.inputs[input.name] = (*out)["artifact"];
    }
    inputs[input.name] = std::move(in);
  }
  rec.params = params;
  const PluginManifest* plugin = catalog_->FindPluginOfStep(spec.plugin);
  rec.plugin_version = plugin ? plugin->name + " " + plugin->version : "";
  // Queued on a worker (it may wait in the worker's inbox behind another try); running when
  // the executor says it started.
  rec.state = TaskState::kQueued;
  t.state = TaskState::kQueued;
  if (!problem.empty()) {
    // Not a try the step could have made better by retrying: the task fails here.
    t.state = from;
    if (was_reserved) {
      t.try_reserved = true;
    } else {
      rec.try_number -= 1;
    }
    EndTask(run, task, TaskState::kFailed, problem);
    return;
  }
  for (const auto& item : rec.inputs.items()) {
    RecordConsumed(&batch_, item.value().get<std::string>(), rec, item.key());
  }
  const StepManifest* step = catalog_->FindStep(spec.plugin);
  if (spec.cache && step != nullptr && step->cacheable) {
    // The files a step's code params name (a script, its modules) are part of what it
    // computes: an edit to them must not be served from the cache.
    const json code = CodeHashes(step->code_params, params,
                                 std::filesystem::path(run->record.dag_path).parent_path().string(),
                                 step->code_defaults);
    rec.cache_key =
        StepCacheKey(spec.plugin, rec.plugin_version,
                     FolderFreeParams(params, DagFolder(run->record.dag_path)), rec.inputs, code);
    if (!run->record.no_cache && ServeFromCache(run, task)) return;
  }
  RecordTask(run, task, from, "dispatched to a worker");

  TaskLaunch launch;
  launch.key = rec.idempotency_key();
  launch.step = spec.plugin;
  launch.plugin_file = plugin ? plugin->file : "";
  launch.artifact_dir = artifact_root_;
  launch.timeout = spec.timeout;
  launch.timeout_grace = spec.timeout_grace;
  launch.limits = spec.limits;
  launch.request = {{"params", std::move(params)},
                    {"inputs", std::move(inputs)},
                    {"scratch_dir", (try_dir / "tmp").string()},
                    {"output_dir", (try_dir / "out").string()},
                    {"dag_dir", std::filesystem::path(run->record.dag_path).parent_path().string()},
                    {"run",
                     {{"dag_id", run->record.dag_id},
                      {"run_id", run->record.run_id},
                      {"task_id", spec.id},
                      {"try_number", rec.try_number},
                      {"logical_date", run->record.logical_date},
                      {"idempotency_key", launch.key}}}};
  running_[launch.key] = Running{run, task};
  ++in_flight_;
  ++pool_used_[spec.pool];
  t.started = std::chrono::steady_clock::now();
  launches_.push_back(std::move(launch));
}

bool Runner::ServeFromCache(RunRt* run, size_t task) {
  TaskRt& t = run->tasks[task];
  TryRecord& rec = t.record;
  StatusOr<json> entry = store_->Get(Space::kCache, rec.cache_key);
  if (!entry.ok()) return false;
  const json& outputs = (*entry)["outputs"];
  if (!outputs.is_object()) return false;
  // An entry whose objects are gone (removed by hand) is a miss: the step runs again.
  const ArtifactStore objects(artifact_root_);
  for (const auto& item : outputs.items()) {
    if (item.value().value("kind", "") != "value" &&
        !objects.Exists(item.value().value("artifact", ""))) {
      return false;
    }
  }
  rec.outputs = outputs;
  rec.metrics = entry->value("metrics", json::array());
  rec.tags = entry->value("tags", json::object());
  rec.cached_from = {{"dag_id", entry->value("dag_id", "")},
                     {"run_id", entry->value("run_id", "")},
                     {"task_id", entry->value("task_id", "")},
                     {"try_number", entry->value("try_number", 0)}};
  rec.ended_at = rec.started_at;
  EndTask(run, task, TaskState::kSuccess,
          "cached from run " + entry->value("run_id", "") + " (task " +
              entry->value("task_id", "") + ", try " +
              std::to_string(entry->value("try_number", 0)) + ")");
  return true;
}

// ---------------------------------------------------------------------------------------------
// Ending tasks and runs

void Runner::EndTask(RunRt* run, size_t task, TaskState state, const std::string& reason) {
  TaskRt& t = run->tasks[task];
  const TaskState from = t.state;
  t.state = state;
  t.decided = true;
  t.record.state = state;
  t.record.reason = reason;
  if (t.record.ended_at.empty() || from != TaskState::kRunning) t.record.ended_at = Now();
  if (t.log) {
    std::fclose(t.log);
    t.log = nullptr;
  }
  RecordTask(run, task, from, reason);
  ++run->ended;
  Cascade(run, task);
  FinishRunIfDone(run);
  MarkDirty();
}

void Runner::Cascade(RunRt* run, size_t task) {
  const TaskState state = run->tasks[task].state;
  for (uint32_t d : run->dag->downstream(task)) {
    TaskRt& dt = run->tasks[d];
    if (dt.waiting > 0) --dt.waiting;
    if (state == TaskState::kSuccess)
      ++dt.n_success;
    else if (state == TaskState::kSkipped)
      ++dt.n_skipped;
    else
      ++dt.n_failed;
    if (!dt.decided) Decide(run, d);
  }
}

void Runner::FinishRunIfDone(RunRt* run) {
  if (run->finished || run->ended < run->tasks.size()) return;
  run->finished = true;
  const Dag& dag = *run->dag;
  std::string failed_leaf;
  for (size_t i = 0; i < dag.size(); ++i) {
    const TaskState s = run->tasks[i].state;
    if (dag.downstream(i).empty() && (s == TaskState::kFailed || s == TaskState::kUpstreamFailed)) {
      failed_leaf = dag.tasks()[i].id;
      break;
    }
  }
  // A `when` that could not be evaluated fails the run even when an all_done leaf succeeded.
  std::string bad_when;
  for (size_t i = 0; i < dag.size() && bad_when.empty(); ++i) {
    const TaskRt& t = run->tasks[i];
    if (t.state == TaskState::kFailed && t.record.reason.rfind(kWhenUnevaluable, 0) == 0) {
      bad_when = dag.tasks()[i].id;
    }
  }
  const RunState from = run->record.state;
  run->record.state = failed_leaf.empty() && bad_when.empty() && run->cancelled_by.empty()
                          ? RunState::kSuccess
                          : RunState::kFailed;
  run->record.ended_at = Now();
  RecordRun(run, from,
            !run->cancelled_by.empty() ? "cancelled by " + run->cancelled_by
            : !bad_when.empty()
                ? "task \"" + bad_when + "\": its `when` could not be evaluated (a bug in the DAG)"
            : failed_leaf.empty() ? "every task ended without a failed leaf"
                                  : "leaf task \"" + failed_leaf + "\" did not succeed");
}

void Runner::ScheduleRetry(RunRt* run, size_t task, Duration delay) {
  TaskRt& t = run->tasks[task];
  t.record.retry_at = FormatTimestamp(clock_->Now() + delay);
  const std::string run_key = run->key();
  clock_->RunAfter(delay, [this, run_key, task] {
    auto it = runs_.find(run_key);
    if (it == runs_.end()) return;
    RunRt* r = it->second.get();
    if (r->tasks[task].state != TaskState::kUpForRetry || !r->cancelled_by.empty()) return;
    Enqueue(r, task);
  });
}

// ---------------------------------------------------------------------------------------------
// The event loop's turn: dispatch, commit, act.

void Runner::Flush() {
  flush_posted_ = false;
  if (!fatal_.ok()) return;
  Dispatch();
  // A turn that records only tries starting (queued -> running), and launches nothing, is
  // written without an fsync: nothing is acted on because of it, and losing it in a machine
  // crash changes nothing (a queued try in flight is reconciled like a running one). The
  // next fsync makes it durable. In a chain this halves the fsyncs on the critical path.
  const bool durable = !launches_.empty() || batch_.size() != started_entries_;
  started_entries_ = 0;
  Status s = store_->Commit(&batch_, durable);
  if (!s.ok()) {
    // Nothing below is acted on: the engine stops rather than act on state it did not record.
    fatal_ = s;
    launches_.clear();
    for (auto& [key, r] : running_) executor_->Cancel(key);
    if (on_fatal_) boost::asio::post(io_, [this] { on_fatal_(fatal_); });
    return;
  }
  std::vector<TaskLaunch> launches;
  launches.swap(launches_);
  for (TaskLaunch& launch : launches) executor_->Launch(std::move(launch));

  std::vector<std::pair<RunRt*, size_t>> tasks;
  tasks.swap(changed_tasks_);
  std::vector<RunRt*> runs;
  runs.swap(changed_runs_);
  if (observer_) {
    for (RunRt* run : runs) observer_->OnRunChanged(run->record);
    // A task that changed twice in one turn is reported once, in its latest state.
    std::set<std::pair<RunRt*, size_t>> reported;
    for (auto& [run, task] : tasks) {
      if (!reported.insert({run, task}).second) continue;
      observer_->OnTaskChanged(run->record, run->tasks[task].record);
    }
  }
  // A run recorded twice in one turn (resumed, then ended) is listed twice: it must be
  // erased once, and not read after it is.
  std::set<RunRt*> ended;
  for (RunRt* run : runs) {
    if (ended.count(run) > 0 || !run->finished) continue;
    ended.insert(run);
    const RunRecord record = run->record;
    runs_.erase(run->key());
    ++runs_released_;
    if (on_finished_) on_finished_(record);
  }
}

// ---------------------------------------------------------------------------------------------
// Executor callbacks

void Runner::OnStarted(const std::string& key, int64_t worker_pid) {
  auto it = running_.find(key);
  if (it == running_.end()) return;
  RunRt* run = it->second.run;
  const size_t task = it->second.task;
  TaskRt& t = run->tasks[task];
  t.record.worker_pid = worker_pid;
  // Dispatched is not started: the try may have waited in the worker's inbox.
  t.record.started_at = Now();
  t.started = std::chrono::steady_clock::now();
  t.state = TaskState::kRunning;
  t.record.state = TaskState::kRunning;
  const size_t before = batch_.size();
  RecordTask(run, task, TaskState::kQueued, "started on worker pid " + std::to_string(worker_pid));
  started_entries_ += batch_.size() - before;
  MarkDirty();
}

void Runner::OnLog(const std::string& key, int level, std::string_view line) {
  auto it = running_.find(key);
  if (it == running_.end()) return;
  TaskRt& t = it->second.run->tasks[it->second.task];
  if (t.log == nullptr) {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(t.record.log_path).parent_path(), ec);
    t.log = std::fopen(t.record.log_path.c_str(), "a");
    if (t.log == nullptr) return;
  }
  const std::string stamp = FormatTimestamp(clock_->Now());
  std::fprintf(t.log, "%s %.*s %.*s\n", stamp.c_str(), static_cast<int>(LevelName(level).size()),
               LevelName(level).data(), static_cast<int>(line.size()), line.data());
  // The log streams: what arrived in one read from the worker is written out once it has
  // all been handled (one write for a burst of lines), so that `logs -f` sees it at once.
  if (logs_written_.empty()) boost::asio::post(io_, [this] { FlushLogs(); });
  if (logs_written_.empty() || logs_written_.back() != key) logs_written_.push_back(key);
  if (observer_) observer_->OnTaskLog(it->second.run->record, t.record, level, line);
}

void Runner::FlushLogs() {
  std::vector<std::string> keys;
  keys.swap(logs_written_);
  for (const std::string& key : keys) {
    auto it = running_.find(key);
    if (it == running_.end()) continue;  // ended: its log was closed, which flushed it
    TaskRt& t = it->second.run->tasks[it->second.task];
    if (t.log != nullptr) std::fflush(t.log);
  }
}

void Runner::OnMetric(const std::string& key, const std::string& name, double value, int64_t step) {
  auto it = running_.find(key);
  if (it == running_.end()) return;
  json point = {{"name", name}, {"value", value}};
  if (step >= 0) point["step"] = step;
  it->second.run->tasks[it->second.task].record.metrics.push_back(std::move(point));
}

namespace {

// The artifact record of an output a try declared.
ArtifactRecord ArtifactOf(const TryRecord& rec, const std::string& name, const json& output,
                          const std::string& now) {
  ArtifactRecord artifact;
  artifact.id = output["artifact"].get<std::string>();
  artifact.kind = output.value("kind", "value");
  artifact.size = output.value("size", uint64_t{0});
  artifact.files = output.value("files", artifact.kind == "file" ? uint64_t{1} : uint64_t{0});
  if (artifact.kind == "value") artifact.value = output.value("value", json());
  artifact.created_at = now;
  artifact.dag_id = rec.dag_id;
  artifact.run_id = rec.run_id;
  artifact.task_id = rec.task_id;
  artifact.try_number = rec.try_number;
  artifact.output = name;
  return artifact;
}

// The last value of each metric a try logged.
json LastMetrics(const json& points) {
  json last = json::object();
  for (const json& p : points) {
    if (p.contains("name") && p["value"].is_number())
      last[p["name"].get<std::string>()] = p["value"];
  }
  return last;
}

}  // namespace

void Runner::OnOutput(const std::string& key, const std::string& name, const json& output) {
  auto it = running_.find(key);
  if (it == running_.end()) return;
  TryRecord& rec = it->second.run->tasks[it->second.task].record;
  rec.outputs[name] = output;
  if (!output.contains("artifact")) return;
  RecordProduced(*store_, &batch_, ArtifactOf(rec, name, output, Now()));
}

namespace {

// The "expression.evaluate" service: {"expression", "values"} -> {"value", "references",
// "missing"}. A path that `values` does not hold is listed in "missing" (and "value" is
// null) rather than failing, so that a deploy gate can tell "no production model yet"
// from a typo. A syntax error throws, naming the offset.
json EvaluateExpression(const json& request) {
  const std::string text = request.at("expression").get<std::string>();
  const json values = request.value("values", json::object());
  ExpressionError error;
  std::unique_ptr<Expression> expression = Expression::Parse(text, &error);
  if (!expression) {
    throw std::invalid_argument("\"" + text + "\" at offset " + std::to_string(error.offset) +
                                ": " + error.message);
  }
  json missing = json::array();
  auto resolve = [&](const std::vector<std::string>& path) -> StatusOr<json> {
    const json* at = &values;
    for (const std::string& part : path) {
      if (!at->is_object() || !at->contains(part)) {
        std::string name;
        for (const std::string& p : path) name += (name.empty() ? "" : ".") + p;
        missing.push_back(name);
        return Status::NotFound(name + " is not known");
      }
      at = &(*at)[part];
    }
    return *at;
  };
  json references = json::array();
  for (const Expression::Reference& ref : expression->references()) {
    std::string name;
    for (const std::string& part : ref.path) name += (name.empty() ? "" : ".") + part;
    references.push_back(name);
  }
  StatusOr<json> value = expression->Evaluate(resolve);
  if (!value.ok() && missing.empty()) {
    throw std::invalid_argument("\"" + text + "\": " + value.status().message());
  }
  return {
      {"value", value.ok() ? *value : json()}, {"references", references}, {"missing", missing}};
}

}  // namespace

json Runner::OnCall(const std::string& key, const std::string& method, const json& request) {
  auto fail = [&](const std::string& message) {
    return json{{"ok", false}, {"error", method + ": " + message}};
  };
  auto ok = [](json result) { return json{{"ok", true}, {"result", std::move(result)}}; };
  auto it = running_.find(key);
  if (it == running_.end()) return fail("the try is not running");
  if (!request.is_object()) return fail("the request must be a JSON object");
  TryRecord& rec = it->second.run->tasks[it->second.task].record;
  const std::string actor = "task:" + key;
  ModelRegistry registry(store_);
  try {
    if (method.rfind("models.", 0) == 0 && request.contains("model") &&
        request["model"].is_string()) {
      // The tag "models" lists the registered models a try looked at or changed, so that a
      // run's summary can show where they stand now.
      const std::string name = request["model"].get<std::string>();
      std::string listed = rec.tags.value("models", "");
      if (("," + listed + ",").find("," + name + ",") == std::string::npos) {
        rec.tags["models"] = listed.empty() ? name : listed + "," + name;
      }
    }
    if (method == "tags.set") {
      const json tag = {{request.at("name").get<std::string>(), request.at("value")}};
      if (Status s = CheckTags(tag); !s.ok()) return fail(s.message());
      rec.tags.update(tag);
      return ok(nullptr);
    }
    if (method == "models.get") {
      const std::string model = request.at("model").get<std::string>();
      StatusOr<ModelVersion> v =
          request.contains("version")
              ? registry.GetVersion(model, request["version"].get<int>())
              : registry.Resolve(model, request.value("alias", std::string("production")));
      if (!v.ok()) {
        return v.status().code() == Status::Code::kNotFound ? ok(nullptr)
                                                            : fail(v.status().message());
      }
      json version = v->ToJson();
      // Where the model is, read-only: a monitor compares new data with what it was
      // trained on.
      StatusOr<ArtifactRecord> artifact = FindArtifact(*store_, v->artifact);
      if (artifact.ok() && artifact->kind != "value") {
        version["path"] =
            ArtifactStore(artifact_root_).PathOf(v->artifact, artifact->kind).string();
      }
      return ok(version);
    }
    if (method == "models.register") {
      std::string artifact_id;
      if (request.contains("input")) {
        // A model that an upstream task made (a deploy step registers what it was given).
        const std::string input = request["input"].get<std::string>();
        auto in = rec.inputs.find(input);
        if (in == rec.inputs.end()) {
          return fail("this try has no input \"" + input + "\" from the artifact store");
        }
        artifact_id = in->get<std::string>();
      } else {
        const std::string output = request.at("output").get<std::string>();
        auto out = rec.outputs.find(output);
        if (out == rec.outputs.end() || !out->contains("artifact")) {
          return fail("this try has no output \"" + output +
                      "\" in the artifact store; declare it (OutputFile, OutputDir) first");
        }
        const ArtifactRecord artifact = ArtifactOf(rec, output, *out, Now());
        artifact_id = artifact.id;
        if (!store_->Has(Space::kArtifacts, artifact.id)) {
          // Recorded with the try's next commit; the version must not wait for it.
          StateStore::Batch batch;
          RecordProduced(*store_, &batch, artifact);
          if (Status s = store_->Commit(&batch); !s.ok()) return fail(s.message());
        }
      }
      ModelRegistry::Registration r;
      r.model = request.at("model").get<std::string>();
      r.artifact = artifact_id;
      r.dag_id = rec.dag_id;
      r.run_id = rec.run_id;
      r.task_id = rec.task_id;
      r.try_number = rec.try_number;
      if (request.contains("input")) {
        // The version says which try made the model, not which one registered it (that one
        // is its created_by).
        StatusOr<ArtifactRecord> made = FindArtifact(*store_, artifact_id);
        if (made.ok() && !made->run_id.empty()) {
          r.dag_id = made->dag_id;
          r.run_id = made->run_id;
          r.task_id = made->task_id;
          r.try_number = made->try_number;
        }
      }
      r.metrics = request.contains("metrics") ? request["metrics"] : LastMetrics(rec.metrics);
      r.tags = request.value("tags", json::object());
      r.description = request.value("description", "");
      r.alias = request.value("alias", "");
      r.reason = request.value("reason", "");
      r.actor = actor;
      StatusOr<ModelVersion> v = registry.Register(r);
      if (!v.ok()) return fail(v.status().message());
      return ok(v->ToJson());
    }
    if (method == "expression.evaluate") return ok(EvaluateExpression(request));
    if (method == "models.set_alias") {
      StatusOr<ModelVersion> v = registry.SetAlias(
          request.at("model").get<std::string>(), request.at("alias").get<std::string>(),
          request.at("version").get<int>(), actor, request.value("reason", ""));
      if (!v.ok()) return fail(v.status().message());
      return ok(v->ToJson());
    }
  } catch (const json::exception& e) {
    return fail(std::string("bad request: ") + e.what());
  } catch (const std::invalid_argument& e) {
    return fail(e.what());
  }
  return fail(
      "unknown method (tags.set, models.get, models.register, models.set_alias, "
      "expression.evaluate)");
}

void Runner::OnFinished(const std::string& key, TaskOutcome outcome) {
  auto it = running_.find(key);
  if (it == running_.end()) return;
  RunRt* run = it->second.run;
  const size_t task = it->second.task;
  running_.erase(it);
  --in_flight_;
  const TaskSpec& spec = run->dag->tasks()[task];
  --pool_used_[spec.pool];
  TaskRt& t = run->tasks[task];
  t.record.ended_at = Now();
  t.record.duration_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t.started).count();
  if (t.log) std::fflush(t.log);

  switch (outcome.kind) {
    case TaskOutcome::Kind::kSuccess:
      if (!t.record.cache_key.empty()) {
        // The next try with the same key is served from here.
        batch_.Put(Space::kCache, t.record.cache_key,
                   json{{"outputs", t.record.outputs},
                        {"metrics", t.record.metrics},
                        {"tags", t.record.tags},
                        {"dag_id", t.record.dag_id},
                        {"run_id", t.record.run_id},
                        {"task_id", t.record.task_id},
                        {"try_number", t.record.try_number},
                        {"created_at", t.record.ended_at}});
      }
      EndTask(run, task, TaskState::kSuccess, outcome.message);
      return;
    case TaskOutcome::Kind::kSkipped:
      EndTask(run, task, TaskState::kSkipped, "the step skipped itself: " + outcome.message);
      return;
    default:
      break;
  }
  std::string reason = outcome.message;
  if (outcome.kind == TaskOutcome::Kind::kFailed) reason = "the step failed: " + reason;
  if (!run->cancelled_by.empty()) {
    EndTask(run, task, TaskState::kFailed, "run cancelled by " + run->cancelled_by + ": " + reason);
    return;
  }
  RetryOrFail(run, task, t.state, reason,
              /*may_retry=*/outcome.kind != TaskOutcome::Kind::kCancelled);
}

void Runner::RetryOrFail(RunRt* run, size_t task, TaskState from, const std::string& reason,
                         bool may_retry) {
  TaskRt& t = run->tasks[task];
  const TaskSpec& spec = run->dag->tasks()[task];
  const int tries = t.record.try_number - t.record.retry_base;
  if (!may_retry || tries > spec.retries) {
    EndTask(run, task, TaskState::kFailed, reason);
    return;
  }
  t.state = TaskState::kUpForRetry;
  t.record.state = t.state;
  t.record.reason = reason;
  if (t.log) {
    std::fclose(t.log);
    t.log = nullptr;
  }
  const Duration delay = RetryDelay(spec.retry_delay, spec.retry_backoff, tries,
                                    std::uniform_real_distribution<double>(0, 1)(rng_));
  ScheduleRetry(run, task, delay);
  RecordTask(run, task, from,
             reason + "; try " + std::to_string(tries + 1) + " of " +
                 std::to_string(spec.retries + 1) + " in " + FormatDuration(delay));
  MarkDirty();
}

}  // namespace sluice
