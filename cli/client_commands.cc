// Commands that drive a running daemon through its REST API: dags, trigger, runs show and
// cancel, tasks clear, backfill(s), tokens. They find the daemon with --server,
// $SLUICE_SERVER, or the daemon.json of the state dir (see client.h).
#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <thread>

#include "client.h"
#include "commands.h"
#include "common.h"
#include "sluice/runner.h"
#include "sluice/state_store.h"
#include "sluice/tokens.h"

namespace sluice::cli {
namespace {

using nlohmann::json;

struct ClientOptions {
  std::string server;
  std::string token;
  std::string state_dir;
  bool json = false;
  // Command arguments.
  std::string dag;
  std::string run_id;
  std::string id;
  std::vector<std::string> params;
  std::vector<std::string> tasks;
  std::string logical_date;
  bool downstream = false;
  bool only_failed = false;
  std::string from;
  std::string to;
  std::string reprocess = "none";
  int max_active_runs = 0;
  bool dry_run = false;
  std::string role = "viewer";
  bool no_cache = false;
  std::vector<std::string> tags;
  std::string note;
  bool wait = false;    // trigger: until the run ends
  bool follow = false;  // trigger: and print each task's changes meanwhile
};

void AddConnection(CLI::App* cmd, ClientOptions* o) {
  cmd->add_option("--server", o->server,
                  "Daemon URL (default: $SLUICE_SERVER, else the daemon that owns --state-dir)");
  cmd->add_option("--token", o->token, "API token (default: $SLUICE_TOKEN)");
  cmd->add_option("--state-dir", o->state_dir,
                  "State directory whose daemon to use (default: $SLUICE_STATE_DIR or .sluice)");
  cmd->add_flag("--json", o->json, "Print the API's JSON");
}

// Calls the daemon; prints the error and returns null on failure.
std::optional<json> Call(const char* command, const ClientOptions& o, const std::string& method,
                         const std::string& path, const json* body = nullptr) {
  std::optional<ServerTarget> target = FindServer(o.server, o.token, o.state_dir);
  if (!target) {
    std::fprintf(stderr,
                 "sluice %s: no daemon owns %s; start one with `sluice serve --state-dir %s`, or "
                 "pass --server URL (or set SLUICE_SERVER)\n",
                 command, o.state_dir.c_str(), o.state_dir.c_str());
    return std::nullopt;
  }
  StatusOr<ApiReply> reply = CallApi(*target, method, path, body);
  if (!reply.ok()) {
    std::fprintf(stderr, "sluice %s: %s\n", command, reply.status().message().c_str());
    return std::nullopt;
  }
  if (reply->status >= 400) {
    std::fprintf(stderr, "sluice %s: %s\n", command, ApiErrorText(*reply).c_str());
    if (reply->status == 401) {
      std::fprintf(stderr,
                   "  pass --token or set SLUICE_TOKEN (an admin creates tokens with "
                   "`sluice tokens create NAME --role operator`)\n");
    }
    return std::nullopt;
  }
  return reply->body;
}

int Print(const ClientOptions& o, const json& body) {
  if (o.json) std::printf("%s\n", body.dump(2).c_str());
  return kExitOk;
}

std::string Text(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return "-";
  if (j[key].is_string())
    return j[key].get<std::string>().empty() ? "-" : j[key].get<std::string>();
  return j[key].dump();
}

int DagsList(const ClientOptions& o) {
  auto body = Call("dags list", o, "GET", "/api/v1/dags");
  if (!body) return kExitFailed;
  if (o.json) return Print(o, *body);
  std::vector<std::vector<std::string>> rows = {
      {"DAG", "SCHEDULE", "TASKS", "PAUSED", "ACTIVE RUNS", "FILE"}};
  for (const json& d : (*body)["dags"]) {
    if (d["id"].is_null()) {
      rows.push_back({"(invalid)", "-", "-", "-", "-", Text(d, "path")});
      continue;
    }
    rows.push_back({Text(d, "id") + (d.value("valid", true) ? "" : " (file has errors)"),
                    Text(d, "schedule"), Text(d, "tasks"), d.value("paused", false) ? "yes" : "no",
                    Text(d, "active_runs"), Text(d, "path")});
  }
  PrintTable(rows);
  return kExitOk;
}

int DagsPause(const ClientOptions& o, bool pause) {
  auto body = Call(pause ? "dags pause" : "dags unpause", o, "POST",
                   "/api/v1/dags/" + UrlEncode(o.dag) + (pause ? "/pause" : "/unpause"));
  if (!body) return kExitFailed;
  if (o.json) return Print(o, *body);
  std::printf("DAG %s is %s\n", o.dag.c_str(), pause ? "paused" : "unpaused");
  return kExitOk;
}

int WaitForRun(const ClientOptions& o);

int Trigger(const ClientOptions& o) {
  // --param NAME=VALUE: the value is JSON when it parses, text otherwise; the daemon checks
  // it against the DAG's declared params.
  json params = json::object();
  for (const std::string& assignment : o.params) {
    const size_t eq = assignment.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "sluice trigger: --param \"%s\" is not NAME=VALUE\n",
                   assignment.c_str());
      return kExitUsage;
    }
    const std::string text = assignment.substr(eq + 1);
    try {
      params[assignment.substr(0, eq)] = json::parse(text);
    } catch (const json::exception&) {
      params[assignment.substr(0, eq)] = text;
    }
  }
  json request = {{"params", params}};
  if (!o.logical_date.empty()) request["logical_date"] = o.logical_date;
  if (o.no_cache) request["no_cache"] = true;
  if (!o.tags.empty()) {
    StatusOr<json> tags = ParseTags(o.tags);
    if (!tags.ok()) {
      std::fprintf(stderr, "sluice trigger: %s\n", tags.status().message().c_str());
      return kExitUsage;
    }
    request["tags"] = *tags;
  }
  if (!o.note.empty()) request["note"] = o.note;
  auto body = Call("trigger", o, "POST", "/api/v1/dags/" + UrlEncode(o.dag) + "/runs", &request);
  if (!body) return kExitFailed;
  if (o.json && !o.wait && !o.follow) return Print(o, *body);
  const json& run = (*body)["run"];
  if (o.json) {  // --wait --json: the ended run's JSON alone
    ClientOptions watched = o;
    watched.run_id = Text(run, "run_id");
    watched.follow = false;
    return WaitForRun(watched);
  }
  std::printf("triggered run %s of DAG %s (%s)\n", Text(run, "run_id").c_str(), o.dag.c_str(),
              Text(run, "state").c_str());
  if (!o.wait && !o.follow) {
    std::printf("  watch it: sluice trigger ... --follow, or sluice runs show %s --dag %s\n",
                Text(run, "run_id").c_str(), o.dag.c_str());
    return kExitOk;
  }
  std::fflush(stdout);
  ClientOptions watched = o;
  watched.run_id = Text(run, "run_id");
  return WaitForRun(watched);
}

std::string RunPath(const ClientOptions& o, const std::string& suffix) {
  return "/api/v1/runs/" + UrlEncode(o.run_id) + suffix +
         (o.dag.empty() ? "" : "?dag_id=" + UrlEncode(o.dag));
}

void PrintRun(const json& body) {
  const json& run = body["run"];
  std::printf("run %s of DAG %s: %s (%s, triggered by %s)\n", Text(run, "run_id").c_str(),
              Text(run, "dag_id").c_str(), Text(run, "state").c_str(),
              Text(run, "run_type").c_str(), Text(run, "triggered_by").c_str());
  std::printf("  logical date %s, started %s, ended %s\n", Text(run, "logical_date").c_str(),
              Text(run, "started_at").c_str(), Text(run, "ended_at").c_str());
  std::vector<std::vector<std::string>> rows = {{"TASK", "TRY", "STATE", "DURATION", "REASON"}};
  std::vector<std::string> whole;
  for (const json& t : body["tasks"]) {
    std::string reason =
        TableNote(Text(t, "task_id"), Text(t, "try_number"), t.value("reason", ""), &whole);
    rows.push_back({Text(t, "task_id"), Text(t, "try_number"), Text(t, "state"),
                    t.value("try_number", 0) > 0 && !t.value("started_at", "").empty()
                        ? FormatSeconds(t.value("duration_seconds", 0.0))
                        : "-",
                    reason.empty() ? "-" : reason});
  }
  PrintTable(rows);
  PrintWholeNotes(whole);
}

// trigger --wait / --follow: polls the run until it ends, printing (with --follow) each
// task's new state as it is seen, then the run as `runs show` prints it. Exit 0 when the
// run succeeded, 1 when it failed.
int WaitForRun(const ClientOptions& o) {
  std::map<std::string, std::string> seen;  // task -> "state/try"
  for (;;) {
    auto body = Call("trigger", o, "GET", RunPath(o, ""));
    if (!body) return kExitFailed;
    if (o.follow) {
      for (const json& t : (*body)["tasks"]) {
        const std::string now = Text(t, "state") + "/" + Text(t, "try_number");
        std::string& before = seen[Text(t, "task_id")];
        if (before == now) continue;
        before = now;
        const std::string reason = t.value("reason", "");
        std::printf("  %s  %s (try %s)%s%s\n", Text(t, "task_id").c_str(), Text(t, "state").c_str(),
                    Text(t, "try_number").c_str(), reason.empty() ? "" : ": ", reason.c_str());
      }
      std::fflush(stdout);
    }
    const std::string state = Text((*body)["run"], "state");
    if (state == "success" || state == "failed") {
      if (o.json) {
        Print(o, *body);
      } else {
        PrintRun(*body);
      }
      return state == "success" ? kExitOk : kExitFailed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

// `runs show` without a daemon: the same JSON the API gives (GET /api/v1/runs/ID), read
// from the state dir, as `runs list` does.
std::optional<json> RunFromStore(const ClientOptions& o) {
  StatusOr<std::unique_ptr<StateStore>> store = OpenStateStoreReadOnly(o.state_dir);
  if (!store.ok()) {
    std::fprintf(stderr, "sluice runs show: %s\n", store.status().message().c_str());
    return std::nullopt;
  }
  StatusOr<RunRecord> run =
      o.dag.empty() ? (*store)->FindRun(o.run_id) : (*store)->GetRun(o.dag, o.run_id);
  StatusOr<std::vector<TryRecord>> tries =
      run.ok() ? (*store)->ListTries(run->dag_id, run->run_id) : run.status();
  if (!tries.ok()) {
    std::fprintf(stderr, "sluice runs show: %s\n", tries.status().message().c_str());
    return std::nullopt;
  }
  json record = run->ToJson();
  record.erase("dag_source");
  json tasks = json::array();
  for (const TryRecord& t : *tries) tasks.push_back(t.ToJson());
  return json{{"run", std::move(record)}, {"tasks", std::move(tasks)}};
}

int RunsShow(const ClientOptions& o) {
  const bool daemon = FindServer(o.server, o.token, o.state_dir).has_value();
  auto body = daemon ? Call("runs show", o, "GET", RunPath(o, "")) : RunFromStore(o);
  if (!body) return kExitFailed;
  if (o.json) return Print(o, *body);
  PrintRun(*body);
  return kExitOk;
}

int RunsCancel(const ClientOptions& o) {
  auto body = Call("runs cancel", o, "POST", RunPath(o, "/cancel"));
  if (!body) return kExitFailed;
  if (o.json) return Print(o, *body);
  std::printf(
      "cancelling run %s: tasks not started are skipped; running tries are asked to stop "
      "(SIGTERM to commands), then killed after the grace period\n",
      o.run_id.c_str());
  PrintRun(*body);
  return kExitOk;
}

int TasksClear(const ClientOptions& o) {
  json request = {{"tasks", o.tasks}, {"downstream", o.downstream}, {"only_failed", o.only_failed}};
  auto body = Call("tasks clear", o, "POST", RunPath(o, "/clear"), &request);
  if (!body) return kExitFailed;
  if (o.json) return Print(o, *body);
  std::string list;
  for (const json& t : (*body)["cleared"])
    list += (list.empty() ? "" : ", ") + t.get<std::string>();
  std::printf("cleared in run %s: %s (they run again with new tries)\n", o.run_id.c_str(),
              list.c_str());
  return kExitOk;
}

void PrintBackfill(const json& b, bool items) {
  const json& c = b["counts"];
  std::printf("backfill %s of DAG %s: %s; %s to %s, reprocess %s, max_active_runs %s\n",
              Text(b, "id").c_str(), Text(b, "dag_id").c_str(), Text(b, "state").c_str(),
              Text(b, "from").c_str(), Text(b, "to").c_str(), Text(b, "reprocess").c_str(),
              Text(b, "max_active_runs").c_str());
  std::printf("  %s intervals: %s skipped, %s waiting, %s running, %s success, %s failed\n",
              Text(c, "planned").c_str(), Text(c, "skipped").c_str(), Text(c, "waiting").c_str(),
              Text(c, "running").c_str(), Text(c, "success").c_str(), Text(c, "failed").c_str());
  if (!items || !b.contains("items")) return;
  std::vector<std::vector<std::string>> rows = {{"LOGICAL DATE", "ACTION", "RUN", "STATE", "WHY"}};
  for (const json& item : b["items"]) {
    rows.push_back({Text(item, "logical_date"), Text(item, "action"), Text(item, "run_id"),
                    Text(item, "run_state"), Text(item, "why")});
  }
  PrintTable(rows);
}

int Backfill(const ClientOptions& o) {
  json request = {
      {"from", o.from}, {"to", o.to}, {"reprocess", o.reprocess}, {"dry_run", o.dry_run}};
  if (o.max_active_runs > 0) request["max_active_runs"] = o.max_active_runs;
  auto body =
      Call("backfill", o, "POST", "/api/v1/dags/" + UrlEncode(o.dag) + "/backfills", &request);
  if (!body) return kExitFailed;
  if (o.json) return Print(o, *body);
  if (o.dry_run) std::printf("dry run: nothing was created\n");
  PrintBackfill((*body)["backfill"], true);
  if (!o.dry_run) {
    std::printf("the daemon runs it; watch it with: sluice backfills show %s\n",
                Text((*body)["backfill"], "id").c_str());
  }
  return kExitOk;
}

int BackfillsList(const ClientOptions& o) {
  auto body = Call("backfills list", o, "GET",
                   "/api/v1/backfills" + (o.dag.empty() ? "" : "?dag_id=" + UrlEncode(o.dag)));
  if (!body) return kExitFailed;
  if (o.json) return Print(o, *body);
  if ((*body)["backfills"].empty()) std::printf("no backfills\n");
  for (const json& b : (*body)["backfills"]) PrintBackfill(b, false);
  return kExitOk;
}

int BackfillsShow(const ClientOptions& o, bool cancel) {
  auto body = Call(cancel ? "backfills cancel" : "backfills show", o, cancel ? "POST" : "GET",
                   "/api/v1/backfills/" + UrlEncode(o.id) + (cancel ? "/cancel" : ""));
  if (!body) return kExitFailed;
  if (o.json) return Print(o, *body);
  PrintBackfill((*body)["backfill"], true);
  return kExitOk;
}

// Tokens: through the daemon when one owns the state dir (admin token needed); otherwise
// straight in the state dir, which is how the first admin token is made.
int TokensCommand(const ClientOptions& o, const std::string& action) {
  const std::string command = "tokens " + action;
  if (FindServer(o.server, o.token, o.state_dir)) {
    std::optional<json> body;
    if (action == "create") {
      json request = {{"name", o.id}, {"role", o.role}};
      body = Call(command.c_str(), o, "POST", "/api/v1/tokens", &request);
    } else if (action == "revoke") {
      body = Call(command.c_str(), o, "DELETE", "/api/v1/tokens/" + UrlEncode(o.id));
    } else {
      body = Call(command.c_str(), o, "GET", "/api/v1/tokens");
    }
    if (!body) return kExitFailed;
    if (o.json) return Print(o, *body);
    if (action == "create") {
      std::printf("%s\n", (*body)["token"].get<std::string>().c_str());
      std::fprintf(stderr, "token \"%s\" (%s) created; it is shown only once\n", o.id.c_str(),
                   o.role.c_str());
    } else if (action == "revoke") {
      std::printf("token \"%s\" revoked\n", o.id.c_str());
    } else {
      std::vector<std::vector<std::string>> rows = {{"NAME", "ROLE", "CREATED", "BY"}};
      for (const json& t : (*body)["tokens"])
        rows.push_back(
            {Text(t, "name"), Text(t, "role"), Text(t, "created_at"), Text(t, "created_by")});
      PrintTable(rows);
    }
    return kExitOk;
  }
  StatusOr<std::unique_ptr<StateStore>> store = OpenStateStore(o.state_dir);
  if (!store.ok()) {
    std::fprintf(stderr, "sluice %s: %s\n", command.c_str(), store.status().message().c_str());
    return kExitFailed;
  }
  Tokens tokens(store->get());
  if (!tokens.load_status().ok()) {
    std::fprintf(stderr, "sluice %s: %s\n", command.c_str(),
                 tokens.load_status().message().c_str());
    return kExitFailed;
  }
  const char* user = std::getenv("USER");
  const std::string actor = std::string("cli:") + (user ? user : "unknown");
  if (action == "create") {
    std::optional<Role> role = ParseRole(o.role);
    if (!role) {
      std::fprintf(stderr, "sluice tokens create: --role \"%s\" is not viewer, operator or admin\n",
                   o.role.c_str());
      return kExitUsage;
    }
    StatusOr<std::string> secret = tokens.Create(o.id, *role, actor);
    if (!secret.ok()) {
      std::fprintf(stderr, "sluice tokens create: %s\n", secret.status().message().c_str());
      return kExitUsage;
    }
    if (o.json) return Print(o, {{"name", o.id}, {"role", o.role}, {"token", *secret}});
    std::printf("%s\n", secret->c_str());
    std::fprintf(stderr, "token \"%s\" (%s) created; it is shown only once\n", o.id.c_str(),
                 o.role.c_str());
    return kExitOk;
  }
  if (action == "revoke") {
    Status s = tokens.Revoke(o.id, actor);
    if (!s.ok()) {
      std::fprintf(stderr, "sluice tokens revoke: %s\n", s.message().c_str());
      return kExitUsage;
    }
    std::printf("token \"%s\" revoked\n", o.id.c_str());
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {{"NAME", "ROLE", "CREATED", "BY"}};
  json list = json::array();
  for (const TokenInfo& t : tokens.List()) {
    rows.push_back({t.name, std::string(RoleName(t.role)), t.created_at, t.created_by});
    list.push_back({{"name", t.name}, {"role", RoleName(t.role)}, {"created_at", t.created_at}});
  }
  if (o.json) return Print(o, {{"tokens", list}});
  PrintTable(rows);
  return kExitOk;
}

}  // namespace

void AddClientCommands(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<ClientOptions>();
  o->state_dir = DefaultStateDir();
  auto on = [o, exit_code](CLI::App* cmd, const std::function<int(const ClientOptions&)>& fn) {
    AddConnection(cmd, o.get());
    cmd->callback([o, exit_code, fn] { *exit_code = fn(*o); });
  };

  CLI::App* dags = app.add_subcommand("dags", "The daemon's DAGs: list, pause, unpause");
  dags->require_subcommand(1);
  on(dags->add_subcommand("list", "Every DAG file the daemon has loaded, with its state"),
     DagsList);
  for (bool pause : {true, false}) {
    CLI::App* cmd = dags->add_subcommand(
        pause ? "pause" : "unpause",
        pause ? "Stop new scheduled and backfill runs of a DAG (runs in progress go on)"
              : "Schedule a paused DAG again (missed intervals follow its catchup policy)");
    cmd->add_option("dag", o->dag, "DAG id")->required();
    on(cmd, [pause](const ClientOptions& opts) { return DagsPause(opts, pause); });
  }

  CLI::App* trigger = app.add_subcommand("trigger", "Start a run of a DAG on the daemon");
  trigger->add_option("dag", o->dag, "DAG id")->required();
  trigger->add_option("-p,--param", o->params, "Override a param: NAME=VALUE (repeatable)");
  trigger->add_option("--logical-date", o->logical_date, "The run's logical date (ISO 8601)");
  trigger->add_flag("--no-cache", o->no_cache,
                    "Recompute tasks with cache = true instead of reusing earlier results");
  trigger->add_option("--tag", o->tags, "Tag the run: NAME=VALUE (repeatable)");
  trigger->add_option("--note", o->note, "A note kept with the run");
  trigger->add_flag("--wait", o->wait,
                    "Wait for the run to end, then print it; exit 0 if it succeeded, 1 if not");
  trigger->add_flag("-f,--follow", o->follow,
                    "As --wait, printing each task's new state (and try, and reason) as it "
                    "happens");
  trigger->footer(
      "Examples:\n  sluice trigger hello --param greeting=Hi\n"
      "  sluice trigger hello --follow          # watch it to the end; exit 1 if it fails\n"
      "  sluice trigger nightly --no-cache --tag experiment=retrain --note \"new data\"");
  on(trigger, Trigger);

  // `runs list` is in state_commands.cc (it reads the store when no daemon runs).
  CLI::App* runs = app.get_subcommand("runs");
  CLI::App* show = runs->add_subcommand(
      "show", "A run and every try of its tasks (from the state dir when no daemon owns it)");
  show->add_option("run", o->run_id, "Run id")->required()->check(RunIdProblem);
  show->add_option("--dag", o->dag, "The run's DAG, when several DAGs have a run with this id");
  on(show, RunsShow);
  CLI::App* cancel = runs->add_subcommand(
      "cancel", "Cancel a run: tasks not started are skipped, running tries are stopped");
  cancel->add_option("run", o->run_id, "Run id")->required()->check(RunIdProblem);
  cancel->add_option("--dag", o->dag, "The run's DAG, when several DAGs have a run with this id");
  on(cancel, RunsCancel);

  CLI::App* tasks = app.get_subcommand("tasks");
  CLI::App* clear = tasks->add_subcommand(
      "clear", "Run ended tasks of a run again (new tries; the run reopens if it had ended)");
  clear->add_option("run", o->run_id, "Run id")->required()->check(RunIdProblem);
  clear->add_option("-t,--task", o->tasks, "A task to clear (repeatable; default: every task)");
  clear->add_flag("--downstream", o->downstream, "Also clear the tasks downstream of them");
  clear->add_flag("--only-failed", o->only_failed,
                  "Only tasks that ended failed or upstream_failed");
  clear->add_option("--dag", o->dag, "The run's DAG, when several DAGs have a run with this id");
  clear->footer(
      "Example:\n  sluice tasks clear scheduled__2026-01-01T00:00:00Z -t train "
      "--downstream");
  on(clear, TasksClear);

  CLI::App* backfill = app.add_subcommand(
      "backfill", "Have the daemon run a DAG for every schedule interval in a date range");
  backfill->add_option("dag", o->dag, "DAG id")->required();
  backfill
      ->add_option("--from", o->from,
                   "First logical date (ISO 8601), inclusive; a date alone (2026-01-01) is "
                   "that whole day in the DAG's time zone")
      ->required();
  backfill
      ->add_option("--to", o->to,
                   "Last logical date (ISO 8601), inclusive; a date alone takes in every "
                   "slot of that day in the DAG's time zone")
      ->required();
  backfill
      ->add_option("--reprocess", o->reprocess,
                   "Slots that have a run: none (skip them), failed (rerun failed runs), "
                   "all (rerun every ended run); default none")
      ->check(CLI::IsMember({"none", "failed", "all"}));
  backfill->add_option("--max-active-runs", o->max_active_runs,
                       "Runs of this backfill at a time (default: the DAG's max_active_runs)");
  backfill->add_flag("--dry-run", o->dry_run, "Print the plan; create nothing");
  backfill->footer(
      "Example:\n  sluice backfill nightly --from 2026-01-01 --to 2026-01-31 --reprocess failed "
      "--dry-run");
  on(backfill, Backfill);

  CLI::App* backfills = app.add_subcommand("backfills", "The daemon's backfills");
  backfills->require_subcommand(1);
  CLI::App* bf_list = backfills->add_subcommand("list", "Every backfill, newest first");
  bf_list->add_option("--dag", o->dag, "Only backfills of this DAG");
  on(bf_list, BackfillsList);
  CLI::App* bf_show = backfills->add_subcommand("show", "A backfill, interval by interval");
  bf_show->add_option("id", o->id, "Backfill id (bf-000001)")->required();
  on(bf_show, [](const ClientOptions& opts) { return BackfillsShow(opts, false); });
  CLI::App* bf_cancel = backfills->add_subcommand(
      "cancel", "Stop a backfill: no more runs, and its runs in progress are cancelled");
  bf_cancel->add_option("id", o->id, "Backfill id")->required();
  on(bf_cancel, [](const ClientOptions& opts) { return BackfillsShow(opts, true); });

  CLI::App* tokens = app.add_subcommand(
      "tokens",
      "API tokens (stored hashed). Through the daemon with an admin token when one runs;\n"
      "directly in the state dir otherwise (how the first admin token is made)");
  tokens->require_subcommand(1);
  CLI::App* create = tokens->add_subcommand("create", "Create a token and print it (once)");
  create->add_option("name", o->id, "Token name (letters, digits, . _ -)")->required();
  create
      ->add_option("--role", o->role,
                   "viewer (reads), operator (also acts), admin (also "
                   "manages tokens); default viewer")
      ->check(CLI::IsMember({"viewer", "operator", "admin"}));
  create->footer("Example:\n  export SLUICE_TOKEN=$(sluice tokens create ci --role operator)");
  on(create, [](const ClientOptions& opts) { return TokensCommand(opts, "create"); });
  on(tokens->add_subcommand("list", "Token names, roles and who made them (never the secrets)"),
     [](const ClientOptions& opts) { return TokensCommand(opts, "list"); });
  CLI::App* revoke = tokens->add_subcommand("revoke", "Revoke a token; it stops working at once");
  revoke->add_option("name", o->id, "Token name")->required();
  on(revoke, [](const ClientOptions& opts) { return TokensCommand(opts, "revoke"); });
}

}  // namespace sluice::cli
