// The scheduler's operator state: pause flags and backfills (see scheduler.h).
//
// A backfill is planned once, at creation: one item per schedule interval whose logical date
// is in [from, to], each saying what will happen to that slot (create a run, rerun the
// existing one, or skip it and why). The plan is stored under "backfill/<id>" in the
// control column family, with a cursor (`next`). Items are started in order, at most
// max_active_runs at a time.
//
// Crash safety: an item is marked started, durably, before it is acted on. At the next
// start, every started item of a running backfill is checked: a run that was to be created
// and does not exist is created; a run that was to be rerun and has no event from this
// backfill is cleared. Creating is idempotent (the run id is the slot), so nothing is lost
// and nothing is done twice.
#include <date/date.h>
#include <date/tz.h>

#include <algorithm>
#include <cstdio>

#include "sluice/cron.h"
#include "sluice/intervals.h"
#include "sluice/scheduler.h"
#include "src/run_ids.h"

namespace sluice {

using nlohmann::json;
using std::chrono::sys_seconds;

namespace {

constexpr std::string_view kBackfillPrefix = "backfill/";
constexpr std::string_view kDagPrefix = "dag/";
constexpr size_t kMaxBackfillIntervals = 10000;

std::string NowText() { return FormatTimestamp(std::chrono::system_clock::now()); }

bool Ended(RunState state) { return state == RunState::kSuccess || state == RunState::kFailed; }

}  // namespace

Status Scheduler::RecordDagEvent(const std::string& dag_id, const std::string& kind,
                                 const std::string& reason, const std::string& actor,
                                 StateStore::Batch* batch) {
  Event e;
  e.time = NowText();
  e.dag_id = dag_id;
  e.kind = kind;
  e.reason = reason;
  e.actor = actor;
  batch->AddEvent(std::move(e));
  return store_->Commit(batch);
}

Status Scheduler::LoadControl() {
  StatusOr<std::vector<std::pair<std::string, json>>> dags =
      store_->ListControl(std::string(kDagPrefix));
  if (!dags.ok()) return dags.status();
  StatusOr<std::vector<std::pair<std::string, json>>> backfills =
      store_->ListControl(std::string(kBackfillPrefix));
  if (!backfills.ok()) return backfills.status();
  for (auto& [key, value] : *dags) {
    if (value.value("paused", false)) {
      paused_[key.substr(kDagPrefix.size())] = value;
    } else {
      unpaused_.insert(key.substr(kDagPrefix.size()));
    }
  }
  for (auto& [key, value] : *backfills) {
    const std::string id = key.substr(kBackfillPrefix.size());
    if (value.value("state", "") == "running") {
      // Items started before a crash: make sure each was acted on, exactly once.
      for (const json& item : value["items"]) {
        if (item.value("started", false)) ActOnBackfillItem(value, item, /*recovering=*/true);
      }
    }
    backfills_[id] = std::move(value);
  }
  return Status::Ok();
}

bool Scheduler::paused(const std::string& dag_id) const {
  if (paused_.count(dag_id) > 0) return true;
  const DagEntry* entry = FindDag(dag_id);
  return entry != nullptr && paused(entry->dag->spec());
}

bool Scheduler::paused(const DagSpec& spec) const {
  if (paused_.count(spec.id) > 0) return true;
  return spec.paused && unpaused_.count(spec.id) == 0;
}

Status Scheduler::SetPaused(const std::string& dag_id, bool pause, const std::string& actor) {
  if (FindDag(dag_id) == nullptr) return Status::NotFound("no DAG \"" + dag_id + "\"");
  if (pause == paused(dag_id)) return Status::Ok();  // already so: nothing to record
  StateStore::Batch batch;
  json value = {{"paused", pause}, {"by", actor}, {"at", NowText()}};
  // An unpause is kept as a record of its own: it outlives a file that says paused = true.
  batch.PutControl(std::string(kDagPrefix) + dag_id, value);
  SLUICE_RETURN_IF_ERROR(RecordDagEvent(dag_id, pause ? "dag_paused" : "dag_unpaused",
                                        pause ? "paused" : "unpaused", actor, &batch));
  if (pause) {
    paused_[dag_id] = value;
    unpaused_.erase(dag_id);
  } else {
    paused_.erase(dag_id);
    unpaused_.insert(dag_id);
    for (auto& [path, entry] : dags_) {
      if (entry.dag && entry.dag->id() == dag_id) entry.next_fire.reset();
    }
    unpaused_at_[dag_id] = std::chrono::floor<std::chrono::seconds>(clock_->Now());
  }
  return Status::Ok();
}

StatusOr<json> Scheduler::CreateBackfill(const BackfillRequest& request) {
  const DagEntry* entry = FindDag(request.dag_id);
  if (entry == nullptr) return Status::NotFound("no DAG \"" + request.dag_id + "\"");
  const DagSpec& spec = entry->dag->spec();
  if (!spec.cron) {
    return Status::InvalidArgument("DAG \"" + spec.id +
                                   "\" has no schedule, so it has no intervals to backfill; "
                                   "trigger its runs by hand instead");
  }
  if (request.to < request.from) {
    return Status::InvalidArgument("the range ends (" + FormatTimeUtc(request.to) +
                                   ") before it starts (" + FormatTimeUtc(request.from) + ")");
  }
  if (request.reprocess != "none" && request.reprocess != "failed" && request.reprocess != "all") {
    return Status::InvalidArgument("reprocess must be none, failed or all, not \"" +
                                   request.reprocess + "\"");
  }
  if (request.max_active_runs < 0) {
    return Status::InvalidArgument("max_active_runs must be at least 1 (0: the DAG's)");
  }
  StatusOr<const date::time_zone*> zone = FindTimeZone(spec.timezone);
  if (!zone.ok()) return zone.status();
  const sys_seconds now = std::chrono::floor<std::chrono::seconds>(clock_->Now());
  // A date is a whole day where the DAG lives: from its local midnight to the last second
  // before the next one.
  auto local_midnight = [&](sys_seconds utc_date) {
    const date::local_days day{std::chrono::floor<date::days>(utc_date).time_since_epoch()};
    return std::chrono::floor<std::chrono::seconds>(
        (*zone)->to_sys(date::local_seconds(day), date::choose::earliest));
  };
  const sys_seconds from = request.from_is_date ? local_midnight(request.from) : request.from;
  const sys_seconds to = request.to_is_date
                             ? local_midnight(request.to + date::days(1)) - std::chrono::seconds(1)
                             : request.to;

  json items = json::array();
  std::optional<DataInterval> interval = FirstInterval(*spec.cron, *zone, from);
  for (; interval && interval->start <= to; interval = NextInterval(*spec.cron, *zone, *interval)) {
    if (items.size() == kMaxBackfillIntervals) {
      return Status::InvalidArgument("the range holds more than " +
                                     std::to_string(kMaxBackfillIntervals) +
                                     " intervals of DAG \"" + spec.id + "\"; split it");
    }
    json item = {{"logical_date", FormatTimeUtc(interval->start)},
                 {"data_interval_end", FormatTimeUtc(interval->end)}};
    if (interval->end > now) {
      item["action"] = "skip";
      item["why"] = "not due yet (its interval ends " + FormatTimeUtc(interval->end) + ")";
      items.push_back(std::move(item));
      continue;
    }
    std::optional<RunRecord> existing;
    for (const std::string& id :
         {ScheduledRunId(interval->start), BackfillRunId(interval->start)}) {
      if (StatusOr<RunRecord> run = store_->GetRun(spec.id, id); run.ok()) existing = *run;
    }
    if (!existing) {
      item["action"] = "create";
      item["run_id"] = BackfillRunId(interval->start);
    } else {
      item["run_id"] = existing->run_id;
      const std::string state(RunStateName(existing->state));
      const bool rerun = Ended(existing->state) &&
                         (request.reprocess == "all" ||
                          (request.reprocess == "failed" && existing->state == RunState::kFailed));
      item["action"] = rerun ? "rerun" : "skip";
      if (!rerun) {
        item["why"] = !Ended(existing->state) ? "run " + existing->run_id + " is in progress"
                                              : "run " + existing->run_id + " exists (" + state +
                                                    "; reprocess = " + request.reprocess + ")";
      }
    }
    items.push_back(std::move(item));
  }
  if (items.empty()) {
    return Status::InvalidArgument("no interval of DAG \"" + spec.id + "\" starts between " +
                                   FormatTimeUtc(from) + " and " + FormatTimeUtc(to) +
                                   " (schedule \"" + spec.schedule.value_or("") + "\")");
  }
  json backfill = {{"dag_id", spec.id},
                   {"from", FormatTimeUtc(from)},
                   {"to", FormatTimeUtc(to)},
                   {"reprocess", request.reprocess},
                   {"max_active_runs",
                    request.max_active_runs > 0 ? request.max_active_runs : spec.max_active_runs},
                   {"created_by", request.actor},
                   {"created_at", NowText()},
                   {"next", 0},
                   {"items", std::move(items)}};
  if (request.dry_run) {
    backfill["id"] = nullptr;
    backfill["state"] = "dry_run";
    return BackfillView(backfill);
  }
  size_t seq = 1;
  for (const auto& [id, existing] : backfills_) seq = std::max(seq, existing.value("seq", 0ul) + 1);
  char id[32];
  std::snprintf(id, sizeof id, "bf-%06zu", seq);
  backfill["id"] = id;
  backfill["seq"] = seq;
  backfill["state"] = "running";
  SLUICE_RETURN_IF_ERROR(
      SaveBackfill(backfill,
                   "backfill " + std::string(id) + " created: " + FormatTimeUtc(request.from) +
                       " to " + FormatTimeUtc(request.to) + ", reprocess " + request.reprocess,
                   request.actor));
  backfills_[id] = backfill;
  AdvanceBackfills();
  return BackfillView(backfills_[id]);
}

Status Scheduler::SaveBackfill(const json& backfill, const std::string& event_reason,
                               const std::string& actor) {
  StateStore::Batch batch;
  batch.PutControl(std::string(kBackfillPrefix) + backfill["id"].get<std::string>(), backfill);
  if (event_reason.empty()) return store_->Commit(&batch);
  return RecordDagEvent(backfill["dag_id"], "backfill", event_reason, actor, &batch);
}

Status Scheduler::CancelBackfill(const std::string& id, const std::string& actor) {
  auto it = backfills_.find(id);
  if (it == backfills_.end()) return Status::NotFound("no backfill \"" + id + "\"");
  json& backfill = it->second;
  if (backfill["state"] != "running") {
    return Status::FailedPrecondition("backfill " + id + " already ended (" +
                                      backfill["state"].get<std::string>() + ")");
  }
  backfill["state"] = "cancelled";
  backfill["ended_at"] = NowText();
  backfill["cancelled_by"] = actor;
  SLUICE_RETURN_IF_ERROR(SaveBackfill(backfill, "backfill " + id + " cancelled", actor));
  // Its runs in progress are cancelled too: a cancelled backfill leaves nothing running.
  const std::string dag_id = backfill["dag_id"];
  for (const json& item : backfill["items"]) {
    if (!item.value("started", false)) continue;
    const std::string run_id = item.value("run_id", "");
    if (runner_->IsActive(dag_id, run_id)) {
      Status s = runner_->CancelRun(dag_id, run_id, actor + " (backfill " + id + " cancelled)");
      if (!s.ok() && s.code() != Status::Code::kFailedPrecondition) return s;
    }
  }
  return Status::Ok();
}

void Scheduler::ActOnBackfillItem(const json& backfill, const json& item, bool recovering) {
  const std::string id = backfill["id"];
  const std::string dag_id = backfill["dag_id"];
  const std::string run_id = item.value("run_id", "");
  const std::string action = item.value("action", "skip");
  const std::string actor = "backfill " + id + " (by " + backfill.value("created_by", "") + ")";
  if (action == "create") {
    if (recovering && store_->HasRun(dag_id, run_id)) return;
    const DagEntry* entry = FindDag(dag_id);
    if (entry == nullptr) {
      std::fprintf(stderr, "sluice serve: backfill %s: DAG %s is no longer loaded; %s skipped\n",
                   id.c_str(), dag_id.c_str(), run_id.c_str());
      return;
    }
    TriggerRequest request;
    request.dag = entry->dag;
    request.dag_source = entry->source;
    request.run_type = "backfill";
    request.logical_date = ParseTimeUtc(item["logical_date"]);
    request.data_interval_end = ParseTimeUtc(item["data_interval_end"]);
    request.run_id = run_id;
    request.triggered_by = actor;
    ++backfill_runs_made_;
    StatusOr<RunRecord> run = runner_->Trigger(std::move(request));
    if (!run.ok() && run.status().code() != Status::Code::kAlreadyExists) {
      std::fprintf(stderr, "sluice serve: backfill %s: cannot create %s: %s\n", id.c_str(),
                   run_id.c_str(), run.status().message().c_str());
    }
    return;
  }
  if (action == "rerun") {
    if (recovering) {
      StatusOr<std::vector<Event>> events = store_->ListEvents(dag_id, run_id);
      if (!events.ok()) {
        // Unknown whether it was cleared: clearing twice would run it twice.
        std::fprintf(stderr, "sluice serve: backfill %s: cannot tell whether %s was rerun: %s\n",
                     id.c_str(), run_id.c_str(), events.status().message().c_str());
        return;
      }
      for (const Event& e : *events) {
        if (e.actor == actor) return;  // cleared before the crash
      }
    }
    ClearRequest clear;
    clear.dag_id = dag_id;
    clear.run_id = run_id;
    clear.only_failed = backfill.value("reprocess", "") == "failed";
    clear.actor = actor;
    StatusOr<std::vector<std::string>> cleared = runner_->ClearTasks(clear);
    if (!cleared.ok()) {
      std::fprintf(stderr, "sluice serve: backfill %s: cannot rerun %s: %s\n", id.c_str(),
                   run_id.c_str(), cleared.status().message().c_str());
    }
  }
}

bool Scheduler::AdvanceBackfill(json& backfill) {
  const std::string dag_id = backfill["dag_id"];
  json& items = backfill["items"];
  size_t next = backfill["next"].get<size_t>();
  size_t active = 0;
  for (size_t i = 0; i < next; ++i) {
    if (items[i].value("started", false) && runner_->IsActive(dag_id, items[i].value("run_id", "")))
      ++active;
  }
  const size_t limit = backfill.value("max_active_runs", 1);
  bool changed = false;
  const DagEntry* entry = FindDag(dag_id);
  const bool can_start = entry != nullptr && !paused(entry->dag->spec());
  // The DAG's own max_active_runs caps all of its runs together: scheduled, manual, and every
  // backfill's. The backfill's limit can only be lower.
  size_t dag_active = runner_->active_runs(dag_id);
  const size_t dag_limit =
      entry != nullptr ? static_cast<size_t>(entry->dag->spec().max_active_runs) : 0;
  while (can_start && next < items.size() && active < limit &&
         (dag_active < dag_limit || items[next]["action"] == "skip")) {
    json& item = items[next++];
    backfill["next"] = next;
    changed = true;
    if (item["action"] == "skip") continue;
    item["started"] = true;
    // Durable before acted on: see the recovery at the top of this file.
    Status saved = SaveBackfill(backfill, "", "");
    if (!saved.ok()) {
      std::fprintf(stderr, "sluice serve: cannot record backfill progress: %s\n",
                   saved.message().c_str());
      return false;
    }
    ActOnBackfillItem(backfill, item, /*recovering=*/false);
    ++active;
    ++dag_active;
  }
  if (next == items.size() && active == 0) {
    backfill["state"] = "done";
    backfill["ended_at"] = NowText();
    Status saved = SaveBackfill(backfill, "backfill " + backfill["id"].get<std::string>() + " done",
                                "scheduler");
    if (!saved.ok()) {
      std::fprintf(stderr, "sluice serve: cannot record backfill progress: %s\n",
                   saved.message().c_str());
    }
    return true;
  }
  if (changed) SaveBackfill(backfill, "", "").IgnoreError();
  return changed;
}

void Scheduler::AdvanceBackfills() {
  for (auto& [id, backfill] : backfills_) {
    if (backfill["state"] == "running") AdvanceBackfill(backfill);
  }
}

json Scheduler::BackfillView(const json& backfill) const {
  json view = backfill;
  view.erase("seq");
  json counts = {{"planned", 0}, {"skipped", 0}, {"waiting", 0},
                 {"running", 0}, {"success", 0}, {"failed", 0}};
  const std::string dag_id = backfill["dag_id"];
  for (json& item : view["items"]) {
    counts["planned"] = counts["planned"].get<int>() + 1;
    std::string state;
    if (item["action"] == "skip") {
      state = "skipped";
    } else if (!item.value("started", false)) {
      state = "waiting";
    } else if (StatusOr<RunRecord> run = store_->GetRun(dag_id, item.value("run_id", ""));
               run.ok()) {
      state = Ended(run->state) ? std::string(RunStateName(run->state)) : "running";
      item["run_state"] = RunStateName(run->state);
    } else {
      state = "running";  // created this turn, committed at the end of it
    }
    if (counts.contains(state)) counts[state] = counts[state].get<int>() + 1;
  }
  view["counts"] = counts;
  return view;
}

StatusOr<json> Scheduler::GetBackfill(const std::string& id) const {
  auto it = backfills_.find(id);
  if (it == backfills_.end()) return Status::NotFound("no backfill \"" + id + "\"");
  return BackfillView(it->second);
}

std::vector<json> Scheduler::ListBackfills(const std::string& dag_id) const {
  std::vector<json> out;
  for (auto it = backfills_.rbegin(); it != backfills_.rend(); ++it) {
    if (!dag_id.empty() && it->second["dag_id"] != dag_id) continue;
    json view = BackfillView(it->second);
    view.erase("items");  // the list is a summary; GET /backfills/{id} has the items
    out.push_back(std::move(view));
  }
  return out;
}

}  // namespace sluice
