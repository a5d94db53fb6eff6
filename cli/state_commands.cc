// Commands that read the state directory: runs, tasks, logs, events. They open the store
// read-only, so they work while `sluice run` or the daemon owns it; `runs list` and
// `logs -f` ask the daemon when one owns the state dir (or --server names one), and read the
// state dir otherwise.
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include "client.h"
#include "commands.h"
#include "common.h"
#include "sluice/state_store.h"

namespace sluice::cli {
namespace {

using nlohmann::json;

struct StateOptions {
  std::string state_dir;
  std::string dag;
  std::string run_id;
  std::string task_id;
  int try_number = 0;
  size_t limit = 20;
  bool json = false;
  std::string state;
  bool follow = false;
  std::string server;
  std::string token;
};

// The daemon to ask, when one owns the state dir or --server / $SLUICE_SERVER names one.
std::optional<ServerTarget> Daemon(const StateOptions& o) {
  return FindServer(o.server, o.token, o.state_dir);
}

std::optional<json> Ask(const char* command, const ServerTarget& target, const std::string& path) {
  StatusOr<ApiReply> reply = CallApi(target, "GET", path);
  if (!reply.ok()) {
    std::fprintf(stderr, "sluice %s: %s\n", command, reply.status().message().c_str());
    return std::nullopt;
  }
  if (reply->status >= 400) {
    std::fprintf(stderr, "sluice %s: %s\n", command, ApiErrorText(*reply).c_str());
    return std::nullopt;
  }
  return reply->body;
}

StatusOr<std::unique_ptr<StateStore>> OpenStore(const StateOptions& o) {
  return OpenStateStoreReadOnly(o.state_dir);
}

StatusOr<RunRecord> FindRun(const StateStore& store, const StateOptions& o) {
  if (!o.dag.empty()) return store.GetRun(o.dag, o.run_id);
  return store.FindRun(o.run_id);
}

int Fail(const char* command, const Status& s) { return FailCommand(command, s); }

int Repair(const StateOptions& o) {
  Status repaired = StateStore::Repair(o.state_dir);
  if (!repaired.ok()) return Fail("state repair", repaired);
  auto store = OpenStateStoreReadOnly(o.state_dir);
  if (!store.ok()) return Fail("state repair", store.status());
  StateStore::RunQuery query;
  query.limit = 1000000;
  StatusOr<StateStore::RunPage> page = (*store)->QueryRuns(query);
  if (!page.ok()) return Fail("state repair", page.status());
  std::printf(
      "repaired the state store in %s: %zu runs read back; the files as they were are "
      "under %s/damaged/\n",
      o.state_dir.c_str(), page->runs.size(), o.state_dir.c_str());
  return kExitOk;
}

int RunsList(const StateOptions& o) {
  // The same JSON from the daemon or from the store, printed one way.
  json runs = json::array();
  if (std::optional<ServerTarget> daemon = Daemon(o)) {
    std::string path = "/api/v1/runs?limit=" + std::to_string(o.limit);
    if (!o.dag.empty()) path += "&dag_id=" + UrlEncode(o.dag);
    if (!o.state.empty()) path += "&state=" + UrlEncode(o.state);
    std::optional<json> body = Ask("runs list", *daemon, path);
    if (!body) return kExitFailed;
    runs = (*body)["runs"];
  } else {
    auto store = OpenStore(o);
    if (!store.ok()) return Fail("runs list", store.status());
    StateStore::RunQuery query;
    query.dag_id = o.dag;
    query.limit = o.limit;
    if (!o.state.empty()) {
      std::optional<RunState> state = ParseRunState(o.state);
      if (!state) {
        return Fail("runs list", Status::InvalidArgument("--state \"" + o.state +
                                                         "\" is not queued, running, success "
                                                         "or failed"));
      }
      query.states.push_back(*state);
    }
    StatusOr<StateStore::RunPage> page = (*store)->QueryRuns(query);
    if (!page.ok()) return Fail("runs list", page.status());
    for (RunRecord& r : page->runs) {
      json j = r.ToJson();
      j.erase("dag_source");
      runs.push_back(std::move(j));
    }
  }
  if (o.json) {
    std::printf("%s\n", runs.dump(2).c_str());
    return kExitOk;
  }
  if (runs.empty()) {
    std::printf("no runs in %s\n", o.state_dir.c_str());
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"DAG", "RUN", "STATE", "TYPE", "STARTED", "ENDED"}};
  for (const json& r : runs) {
    const std::string ended = r.value("ended_at", "");
    rows.push_back({r.value("dag_id", ""), r.value("run_id", ""), r.value("state", ""),
                    r.value("run_type", ""), r.value("started_at", ""),
                    ended.empty() ? "-" : ended});
  }
  PrintTable(rows);
  return kExitOk;
}

// `logs -f`: polls the daemon for what the log gained, until the try has ended.
int FollowLog(const StateOptions& o, const ServerTarget& daemon) {
  size_t offset = 0;
  std::string base = "/api/v1/runs/" + UrlEncode(o.run_id) + "/tasks/" + UrlEncode(o.task_id) +
                     "/log?try=" + std::to_string(o.try_number);
  if (!o.dag.empty()) base += "&dag_id=" + UrlEncode(o.dag);
  for (;;) {
    std::optional<json> body = Ask("logs", daemon, base + "&offset=" + std::to_string(offset));
    if (!body) return kExitFailed;
    const std::string text = body->value("text", "");
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
    offset = body->value("next_offset", offset);
    if (body->value("ended", false) && text.empty()) return kExitOk;
    if (text.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

// `logs -f` on a state dir (`sluice run` owns it, or nobody): prints what the try's log file
// gains as the run writes it, until the try has ended (read from the store, reopened
// read-only each second). A try that has not started yet is waited for. When no process has
// the store open any more and the try never ended, its run was interrupted: says so.
int FollowLocalLog(const StateOptions& o) {
  using Clock = std::chrono::steady_clock;
  std::string path;
  int try_number = o.try_number;
  bool ended = false;
  bool writer = true;
  uint64_t offset = 0;
  Clock::time_point checked{};
  for (;;) {
    if (path.empty() || Clock::now() - checked >= std::chrono::seconds(1)) {
      checked = Clock::now();
      writer = StateStore::HasWriter(o.state_dir);  // before reading: the end is then seen
      auto store = OpenStore(o);
      if (!store.ok()) return Fail("logs", store.status());
      auto run = FindRun(**store, o);
      if (!run.ok()) return Fail("logs", run.status());
      StatusOr<TryRecord> t = (*store)->FindTry(run->dag_id, run->run_id, o.task_id, try_number);
      if (t.ok()) {
        path = t->log_path;
        try_number = t->try_number;
        ended = IsTerminal(t->state) || t->state == TaskState::kUpForRetry;
      } else if (run->state == RunState::kSuccess || run->state == RunState::kFailed || !writer ||
                 t.status().message().find("has no task") != std::string::npos) {
        return Fail("logs", Status::NotFound(t.status().message() + " (`sluice tasks list " +
                                             run->run_id + "` lists the tries)"));
      }
    }
    bool grew = false;
    if (!path.empty()) {
      if (FILE* f = std::fopen(path.c_str(), "rb")) {
        if (fseeko(f, static_cast<off_t>(offset), SEEK_SET) == 0) {
          char buf[65536];
          for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) {
            std::fwrite(buf, 1, n, stdout);
            offset += n;
            grew = true;
          }
        }
        std::fclose(f);
        std::fflush(stdout);
      }
    }
    if (ended && !grew) return kExitOk;
    if (!writer && !ended && !grew) {
      std::fprintf(stderr,
                   "sluice logs: try %d of task \"%s\" did not end, and no process has %s open: "
                   "its run was interrupted (`sluice run --resume %s` continues it)\n",
                   try_number, o.task_id.c_str(), o.state_dir.c_str(), o.run_id.c_str());
      return kExitFailed;
    }
    if (!grew) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

int TasksList(const StateOptions& o) {
  auto store = OpenStore(o);
  if (!store.ok()) return Fail("tasks list", store.status());
  auto run = FindRun(**store, o);
  if (!run.ok()) return Fail("tasks list", run.status());
  StatusOr<std::vector<TryRecord>> stored = (*store)->ListTries(run->dag_id, run->run_id);
  if (!stored.ok()) return Fail("tasks list", stored.status());
  std::vector<TryRecord>& tries = *stored;
  if (o.json) {
    json out = json::array();
    for (const TryRecord& t : tries) out.push_back(t.ToJson());
    std::printf("%s\n", out.dump(2).c_str());
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"TASK", "TRY", "STATE", "STARTED", "DURATION", "REASON"}};
  std::vector<std::string> whole;
  for (const TryRecord& t : tries) {
    std::string reason = TableNote(t.task_id, std::to_string(t.try_number), t.reason, &whole);
    rows.push_back({t.task_id, std::to_string(t.try_number), std::string(TaskStateName(t.state)),
                    t.started_at.empty() ? "-" : t.started_at,
                    t.try_number > 0 ? FormatSeconds(t.duration_seconds) : "-", reason});
  }
  std::printf("run %s of DAG %s: %s\n", run->run_id.c_str(), run->dag_id.c_str(),
              std::string(RunStateName(run->state)).c_str());
  PrintTable(rows);
  PrintWholeNotes(whole);
  return kExitOk;
}

int Logs(const StateOptions& o) {
  if (o.follow && o.json) {
    return Fail("logs", Status::InvalidArgument(
                            "--json prints a finished log; -f follows one as text (use one)"));
  }
  if (o.follow) {
    if (std::optional<ServerTarget> daemon = Daemon(o)) return FollowLog(o, *daemon);
    return FollowLocalLog(o);
  }
  auto store = OpenStore(o);
  if (!store.ok()) return Fail("logs", store.status());
  auto run = FindRun(**store, o);
  if (!run.ok()) return Fail("logs", run.status());
  StatusOr<TryRecord> chosen = (*store)->FindTry(run->dag_id, run->run_id, o.task_id, o.try_number);
  if (!chosen.ok()) {
    return Fail("logs", Status::NotFound(chosen.status().message() + " (`sluice tasks list " +
                                         run->run_id + "` lists the tries)"));
  }
  std::ifstream in(chosen->log_path, std::ios::binary);
  if (o.json) {
    // Each line "TIME LEVEL text" (the level padded to 5) as {time, level, text}.
    json lines = json::array();
    for (std::string line; in && std::getline(in, line);) {
      const size_t space = line.find(' ');
      if (space == std::string::npos || line.size() < space + 7 || line[space + 6] != ' ') {
        lines.push_back({{"text", line}});
        continue;
      }
      std::string level = line.substr(space + 1, 5);
      while (!level.empty() && level.back() == ' ') level.pop_back();
      lines.push_back(
          {{"time", line.substr(0, space)}, {"level", level}, {"text", line.substr(space + 7)}});
    }
    json out = {{"dag_id", run->dag_id},
                {"run_id", run->run_id},
                {"task_id", chosen->task_id},
                {"try_number", chosen->try_number},
                {"state", std::string(TaskStateName(chosen->state))},
                {"log_path", chosen->log_path},
                {"lines", std::move(lines)}};
    std::printf("%s\n", out.dump(2, ' ', false, json::error_handler_t::replace).c_str());
    return kExitOk;
  }
  if (!in) {
    std::fprintf(stderr, "(try %d of %s wrote no log lines)\n", chosen->try_number,
                 o.task_id.c_str());
    return kExitOk;
  }
  std::cout << in.rdbuf();
  return kExitOk;
}

int Events(const StateOptions& o) {
  auto store = OpenStore(o);
  if (!store.ok()) return Fail("events", store.status());
  auto run = FindRun(**store, o);
  if (!run.ok()) return Fail("events", run.status());
  StatusOr<std::vector<Event>> stored = (*store)->ListEvents(run->dag_id, run->run_id);
  if (!stored.ok()) return Fail("events", stored.status());
  std::vector<Event>& events = *stored;
  if (o.json) {
    json out = json::array();
    for (const Event& e : events) out.push_back(e.ToJson());
    std::printf("%s\n", out.dump(2).c_str());
    return kExitOk;
  }
  for (const Event& e : events) {
    std::string what = e.task_id.empty() ? "run" : "task " + e.task_id;
    if (e.try_number > 0) what += " try " + std::to_string(e.try_number);
    std::printf("%6lld  %s  %-28s %s -> %s%s  [%s]\n", static_cast<long long>(e.seq),
                e.time.c_str(), what.c_str(), e.from.c_str(), e.to.c_str(),
                e.reason.empty() ? "" : (": " + e.reason).c_str(), e.actor.c_str());
  }
  return kExitOk;
}

void AddStateDir(CLI::App* cmd, StateOptions* o) {
  cmd->add_option("--state-dir", o->state_dir,
                  "State directory (default: $SLUICE_STATE_DIR or .sluice)");
}

}  // namespace

void AddStateCommands(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<StateOptions>();
  o->state_dir = DefaultStateDir();

  CLI::App* runs = app.add_subcommand("runs", "DAG runs: list, show, compare, cancel, delete");
  runs->require_subcommand(1);
  CLI::App* runs_list = runs->add_subcommand("list", "List runs, newest first");
  runs_list->add_option("--dag", o->dag, "Only runs of this DAG");
  runs_list->add_option("-n,--limit", o->limit, "At most this many runs (default 20)");
  runs_list->add_option("--state", o->state, "Only runs in this state (queued, running, ...)");
  runs_list->add_option("--server", o->server,
                        "Ask this daemon (default: $SLUICE_SERVER, else the daemon that owns "
                        "--state-dir, else read the state dir)");
  runs_list->add_option("--token", o->token, "API token (default: $SLUICE_TOKEN)");
  runs_list->add_flag("--json", o->json, "Print JSON");
  AddStateDir(runs_list, o.get());
  runs_list->callback([o, exit_code] { *exit_code = RunsList(*o); });

  CLI::App* tasks = app.add_subcommand("tasks", "Inspect the task instances of a run");
  tasks->require_subcommand(1);
  CLI::App* tasks_list =
      tasks->add_subcommand("list", "Every try of every task of a run, with its state and reason");
  tasks_list->add_option("run", o->run_id, "Run id")->required()->check(RunIdProblem);
  tasks_list->add_option("--dag", o->dag,
                         "The run's DAG, when several DAGs have a run with this id");
  tasks_list->add_flag("--json", o->json, "Print JSON");
  AddStateDir(tasks_list, o.get());
  tasks_list->callback([o, exit_code] { *exit_code = TasksList(*o); });

  CLI::App* logs =
      app.add_subcommand("logs", "Print the log of a task's try (default: its latest try)");
  logs->add_option("run", o->run_id, "Run id")->required()->check(RunIdProblem);
  logs->add_option("task", o->task_id, "Task id")->required();
  logs->add_option("--try", o->try_number, "Try number (1 for the first)");
  logs->add_flag("-f,--follow", o->follow,
                 "Keep printing what the try writes until it ends (through the daemon that "
                 "owns the state dir, else from the state dir: a `sluice run` in progress)");
  logs->add_option("--server", o->server,
                   "Daemon URL (default: $SLUICE_SERVER or the state "
                   "dir's daemon)");
  logs->add_option("--token", o->token, "API token (default: $SLUICE_TOKEN)");
  logs->add_option("--dag", o->dag, "The run's DAG, when several DAGs have a run with this id");
  logs->add_flag("--json", o->json,
                 "Print the try and its lines as JSON: {time, level, text} each (not with -f)");
  AddStateDir(logs, o.get());
  logs->callback([o, exit_code] { *exit_code = Logs(*o); });

  CLI::App* events = app.add_subcommand(
      "events", "Print a run's event log: every transition, why, and who caused it");
  events->add_option("run", o->run_id, "Run id")->required()->check(RunIdProblem);
  events->add_option("--dag", o->dag, "The run's DAG, when several DAGs have a run with this id");
  events->add_flag("--json", o->json, "Print JSON");
  AddStateDir(events, o.get());
  events->callback([o, exit_code] { *exit_code = Events(*o); });

  CLI::App* state = app.add_subcommand("state", "The state directory itself: repair damage");
  state->require_subcommand(1);
  CLI::App* repair = state->add_subcommand(
      "repair",
      "Rebuild a damaged state store from the files that are intact, after copying them to "
      "STATE_DIR/damaged/TIME/. Records held only by damaged files are lost. Stop the daemon "
      "first");
  AddStateDir(repair, o.get());
  repair->callback([o, exit_code] { *exit_code = Repair(*o); });
}

}  // namespace sluice::cli
