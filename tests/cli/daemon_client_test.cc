// The daemon driven the way an operator drives it: tokens with roles, the CLI client
// (trigger, runs cancel, tasks clear, backfill, dags pause), and /metrics, against a real
// `sluice serve` over real HTTP.
#include <doctest/doctest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <boost/beast/http.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "test_util.h"

namespace sluice {
namespace {

namespace http = boost::beast::http;
using nlohmann::json;

struct Reply {
  int status = 0;
  std::string body;
  json Json() const { return json::parse(body); }
};

Reply Call(unsigned short port, http::verb verb, const std::string& target,
           const std::string& token, const std::string& body = "") {
  testing::HttpReply reply =
      testing::HttpCall(port, std::string(http::to_string(verb)), target, token, body);
  return {reply.status, reply.body};
}

std::string Token(const std::string& state, const std::string& name, const std::string& role) {
  auto made = testing::RunSluice({"tokens", "create", name, "--role", role, "--state-dir", state});
  REQUIRE_MESSAGE(made.exit_code == 0, made.err);
  std::string secret = made.out;
  while (!secret.empty() && secret.back() == '\n') secret.pop_back();
  REQUIRE(secret.rfind("slc_", 0) == 0);
  return secret;
}

// The latest record of `task` in a /runs/{id}/tasks answer (null if it has none yet).
json TaskOf(const json& body, const std::string& task) {
  for (const json& t : body["tasks"]) {
    if (t["task_id"] == task) return t;
  }
  return nullptr;
}

using testing::DaemonPort;
using testing::WaitFor;

TEST_CASE("Daemon.Client.TokensCancelClearBackfillPauseMetrics" * testing::Timeout(120)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  testing::WriteFile(dir.file("dags/sched.toml"), R"([dag]
id = "sched"
schedule = "@daily"
start_date = 2026-01-01T00:00:00Z
end_date = 2026-01-02T00:00:00Z
catchup = "all"
[[task]]
id = "work"
plugin = "core.noop"
)");
  testing::WriteFile(dir.file("dags/slow.toml"), R"([dag]
id = "slow"
[[task]]
id = "wait"
plugin = "core.shell"
params = { command = "sleep 60" }
[[task]]
id = "after"
plugin = "core.noop"
depends_on = ["wait"]
)");
  const std::string flag = dir.file("flag");
  testing::WriteFile(dir.file("dags/flaky.toml"), R"([dag]
id = "flaky"
[[task]]
id = "check"
plugin = "core.shell"
params = { command = "test -f )" + flag + R"(" }
[[task]]
id = "report"
plugin = "core.noop"
depends_on = ["check"]
)");
  // Tokens are made before the daemon runs (straight in the state dir).
  const std::string admin = Token(state, "root", "admin");
  const std::string op = Token(state, "ops", "operator");
  const std::string viewer = Token(state, "watcher", "viewer");
  CHECK(Token(state, "spare", "viewer").size() == 52);
  auto listed = testing::RunSluice({"tokens", "list", "--state-dir", state});
  CHECK(listed.out.find("watcher") != std::string::npos);
  CHECK(listed.out.find("slc_") == std::string::npos);  // secrets are never shown again

  const int pid = testing::SpawnSluice({"serve", "--dags", dir.file("dags"), "--state-dir", state,
                                        "--listen", "127.0.0.1:0", "--workers", "2"},
                                       dir.file("serve.log"));
  const std::string daemon_file = state + "/daemon.json";
  const unsigned short port = DaemonPort(state);

  // Auth: health is open; the rest needs a valid token with the right role.
  CHECK(Call(port, http::verb::get, "/api/v1/health", "").status == 200);
  Reply anonymous = Call(port, http::verb::get, "/api/v1/dags", "");
  CHECK(anonymous.status == 401);
  CHECK(anonymous.Json()["error"]["code"] == "unauthorized");
  CHECK(Call(port, http::verb::get, "/api/v1/dags", "slc_wrong").status == 401);
  CHECK(Call(port, http::verb::get, "/api/v1/dags", viewer).status == 200);
  Reply forbidden = Call(port, http::verb::post, "/api/v1/dags/slow/runs", viewer, "{}");
  CHECK(forbidden.status == 403);
  CHECK(forbidden.Json()["error"]["message"].get<std::string>().find("needs operator") !=
        std::string::npos);
  CHECK(Call(port, http::verb::get, "/api/v1/tokens", op).status == 403);
  CHECK(Call(port, http::verb::get, "/api/v1/tokens", admin).status == 200);
  CHECK(Call(port, http::verb::delete_, "/api/v1/tokens/spare", admin).status == 200);
  CHECK(Call(port, http::verb::get, "/api/v1/dags", viewer).status == 200);

  // The CLI finds the daemon through the state dir and uses $SLUICE_TOKEN.
  setenv("SLUICE_TOKEN", op.c_str(), 1);
  auto dags = testing::RunSluice({"dags", "list", "--state-dir", state});
  CHECK_MESSAGE(dags.exit_code == 0, dags.err);
  CHECK(dags.out.find("sched") != std::string::npos);

  // Scheduled runs: one per day from start_date to end_date.
  REQUIRE(WaitFor([&] {
    auto runs = testing::RunSluice(
        {"runs", "list", "--dag", "sched", "--state", "success", "--json", "--state-dir", state});
    return runs.exit_code == 0 && json::parse(runs.out).size() == 2;
  }));

  // Cancel: the running command is stopped, the task after it skipped, the run failed.
  auto triggered = testing::RunSluice({"trigger", "slow", "--json", "--state-dir", state});
  REQUIRE_MESSAGE(triggered.exit_code == 0, triggered.err);
  const std::string slow_run = json::parse(triggered.out)["run"]["run_id"];
  REQUIRE(WaitFor([&] {
    Reply r = Call(port, http::verb::get, "/api/v1/runs/" + slow_run + "/tasks", viewer);
    return r.status == 200 && TaskOf(r.Json(), "wait").value("state", "") == "running";
  }));
  auto cancelled = testing::RunSluice({"runs", "cancel", slow_run, "--state-dir", state});
  CHECK_MESSAGE(cancelled.exit_code == 0, cancelled.err);
  REQUIRE(WaitFor([&] {
    Reply r = Call(port, http::verb::get, "/api/v1/runs/" + slow_run, viewer);
    return r.status == 200 && r.Json()["run"]["state"] == "failed";
  }));
  json slow = Call(port, http::verb::get, "/api/v1/runs/" + slow_run + "/tasks", viewer).Json();
  CHECK(TaskOf(slow, "after")["state"] == "skipped");
  CHECK(TaskOf(slow, "wait")["reason"].get<std::string>().find("run cancelled by token:ops") == 0);

  // Clear: a failed task runs again once its cause is fixed, with its downstream task.
  triggered = testing::RunSluice({"trigger", "flaky", "--json", "--state-dir", state});
  const std::string flaky_run = json::parse(triggered.out)["run"]["run_id"];
  REQUIRE(WaitFor([&] {
    Reply r = Call(port, http::verb::get, "/api/v1/runs/" + flaky_run, viewer);
    return r.status == 200 && r.Json()["run"]["state"] == "failed";
  }));
  testing::WriteFile(flag, "fixed\n");
  auto cleared = testing::RunSluice(
      {"tasks", "clear", flaky_run, "-t", "check", "--downstream", "--state-dir", state});
  CHECK_MESSAGE(cleared.exit_code == 0, cleared.err);
  CHECK(cleared.out.find("check, report") != std::string::npos);
  REQUIRE(WaitFor([&] {
    Reply r = Call(port, http::verb::get, "/api/v1/runs/" + flaky_run, viewer);
    return r.status == 200 && r.Json()["run"]["state"] == "success";
  }));
  json tries = Call(port, http::verb::get, "/api/v1/runs/" + flaky_run + "/tasks/check", viewer)
                   .Json()["tries"];
  REQUIRE(tries.size() == 2);
  CHECK(tries[0]["state"] == "failed");
  CHECK(tries[1]["state"] == "success");

  // Backfill: a dry run plans without creating; the real one creates the missing slots and
  // reruns the existing one (reprocess = all).
  auto plan =
      testing::RunSluice({"backfill", "sched", "--from", "2025-12-30", "--to", "2026-01-01",
                          "--reprocess", "all", "--dry-run", "--json", "--state-dir", state});
  REQUIRE_MESSAGE(plan.exit_code == 0, plan.err);
  json items = json::parse(plan.out)["backfill"]["items"];
  REQUIRE(items.size() == 3);
  CHECK(items[0]["action"] == "create");
  CHECK(items[2]["action"] == "rerun");
  CHECK(items[2]["run_id"] == "scheduled__2026-01-01T00:00:00Z");
  CHECK(Call(port, http::verb::get, "/api/v1/dags/sched/runs?run_type=backfill", viewer)
            .Json()["runs"]
            .empty());
  auto started = testing::RunSluice({"backfill", "sched", "--from", "2025-12-30", "--to",
                                     "2026-01-01", "--reprocess", "all", "--max-active-runs", "1",
                                     "--json", "--state-dir", state});
  REQUIRE_MESSAGE(started.exit_code == 0, started.err);
  const std::string backfill_id = json::parse(started.out)["backfill"]["id"];
  REQUIRE(WaitFor([&] {
    Reply r = Call(port, http::verb::get, "/api/v1/backfills/" + backfill_id, viewer);
    return r.status == 200 && r.Json()["backfill"]["state"] == "done";
  }));
  json done = Call(port, http::verb::get, "/api/v1/backfills/" + backfill_id, viewer).Json();
  CHECK(done["backfill"]["counts"]["success"] == 3);
  json sched_runs =
      Call(port, http::verb::get, "/api/v1/dags/sched/runs?limit=10", viewer).Json()["runs"];
  CHECK(sched_runs.size() == 4);  // two scheduled (one rerun) + two backfill: one per slot
  json rerun = Call(port, http::verb::get,
                    "/api/v1/runs/scheduled__2026-01-01T00:00:00Z/tasks/work?dag_id=sched", viewer)
                   .Json()["tries"];
  CHECK(rerun.size() == 2);

  // Pause: recorded with who did it.
  auto paused = testing::RunSluice({"dags", "pause", "sched", "--state-dir", state});
  CHECK_MESSAGE(paused.exit_code == 0, paused.err);
  CHECK(Call(port, http::verb::get, "/api/v1/dags/sched", viewer).Json()["paused"] == true);
  Reply extra = Call(port, http::verb::post, "/api/v1/dags/sched/unpause", op, R"({"why": 1})");
  CHECK(extra.status == 400);
  CHECK(extra.Json()["error"]["message"] == "unknown field \"why\" (this endpoint takes no body)");
  json dag_events = Call(port, http::verb::get, "/api/v1/dags/sched/events", viewer).Json();
  CHECK(dag_events["events"].back()["kind"] == "dag_paused");
  CHECK(dag_events["events"].back()["actor"] == "token:ops");

  // Pagination walks every run once, newest first.
  std::set<std::string> seen;
  std::vector<std::string> created;
  std::string page = "/api/v1/runs?limit=2";
  for (int i = 0; i < 10 && !page.empty(); ++i) {
    json body = Call(port, http::verb::get, page, viewer).Json();
    for (const json& run : body["runs"]) {
      seen.insert(run["dag_id"].get<std::string>() + "/" + run["run_id"].get<std::string>());
      created.push_back(run["created_at"]);
    }
    page = body["next_page_token"].is_null()
               ? ""
               : "/api/v1/runs?limit=2&page_token=" + body["next_page_token"].get<std::string>();
  }
  CHECK(seen.size() == 6);
  CHECK(created.size() == 6);
  CHECK(std::is_sorted(created.rbegin(), created.rend()));
  Reply bad_token = Call(port, http::verb::get, "/api/v1/runs?page_token=yesterday", viewer);
  CHECK(bad_token.status == 400);
  CHECK(bad_token.Json()["error"]["code"] == "bad_request");
  CHECK(Call(port, http::verb::get, "/api/v1/runs?limit=many", viewer).status == 400);
  CHECK(Call(port, http::verb::get, "/api/v1/runs?state=done", viewer).status == 400);

  // Metrics, in the Prometheus text format.
  Reply metrics = Call(port, http::verb::get, "/metrics", viewer);
  CHECK(metrics.status == 200);
  CHECK(metrics.body.find("sluice_runs_finished_total{dag=\"sched\",state=\"success\"} ") !=
        std::string::npos);
  CHECK(metrics.body.find("sluice_cron_trigger_lag_seconds_count{dag=\"sched\"} 2") !=
        std::string::npos);
  CHECK(metrics.body.find("# TYPE sluice_scheduler_prepare_duration_seconds histogram") !=
        std::string::npos);
  CHECK(metrics.body.find("sluice_api_requests_total{method=\"GET\",route=\"/api/v1/dags\","
                          "status=\"401\"} 2") != std::string::npos);
  CHECK(metrics.body.find("sluice_task_duration_seconds_bucket{dag=\"flaky\",le=\"+Inf\"} 3") !=
        std::string::npos);
  unsetenv("SLUICE_TOKEN");

  // SIGTERM: a graceful stop; the CLI no longer finds a daemon.
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK_FALSE(std::filesystem::exists(daemon_file));
}

TEST_CASE("Daemon.Backfill.SurvivesKill9WithOneRunPerSlot" * testing::Timeout(120)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  testing::WriteFile(dir.file("dags/daily.toml"), R"([dag]
id = "daily"
schedule = "@daily"
start_date = 2026-01-01T00:00:00Z
catchup = "none"
[[task]]
id = "t"
plugin = "core.shell"
params = { command = "sleep 1" }
retries = 2
retry_delay = "1s"
)");
  auto serve = [&] {
    return testing::SpawnSluice({"serve", "--dags", dir.file("dags"), "--state-dir", state,
                                 "--listen", "127.0.0.1:0", "--allow-unauthenticated"},
                                dir.file("serve.log"));
  };
  int pid = serve();
  unsigned short port = DaemonPort(state);
  Reply created = Call(port, http::verb::post, "/api/v1/dags/daily/backfills", "",
                       R"({"from": "2026-01-01", "to": "2026-01-06", "max_active_runs": 2})");
  REQUIRE(created.status == 201);
  const std::string id = created.Json()["backfill"]["id"];
  // Kill it while the first runs are going.
  REQUIRE(WaitFor([&] {
    Reply r = Call(port, http::verb::get, "/api/v1/backfills/" + id, "");
    return r.status == 200 && r.Json()["backfill"]["counts"]["running"] == 2;
  }));
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  std::filesystem::remove(state + "/daemon.json");

  pid = serve();
  port = DaemonPort(state);
  REQUIRE(WaitFor(
      [&] {
        Reply r = Call(port, http::verb::get, "/api/v1/backfills/" + id, "");
        return r.status == 200 && r.Json()["backfill"]["state"] == "done";
      },
      60));
  json backfill = Call(port, http::verb::get, "/api/v1/backfills/" + id, "").Json()["backfill"];
  CHECK(backfill["counts"]["success"] == 6);
  json runs = Call(port, http::verb::get, "/api/v1/dags/daily/runs?limit=100", "").Json()["runs"];
  CHECK(runs.size() == 6);  // one run per slot: none lost, none doubled
  for (const json& run : runs) {
    CHECK(run["run_id"].get<std::string>().rfind("backfill__2026-01-0", 0) == 0);
    CHECK(run["state"] == "success");
  }
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
}

TEST_CASE("Daemon.Auth.FirstStartMakesAnAdminTokenForTheCli" * testing::Timeout(60)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  testing::WriteFile(dir.file("dags/a.toml"),
                     "[dag]\nid = \"a\"\n[[task]]\nid = \"t\"\nplugin = \"core.noop\"\n");
  const int pid = testing::SpawnSluice(
      {"serve", "--dags", dir.file("dags"), "--state-dir", state, "--listen", "127.0.0.1:0"},
      dir.file("serve.log"));
  const unsigned short port = DaemonPort(state);
  const std::string file = state + "/admin-token";
  REQUIRE(std::filesystem::exists(file));
  CHECK((std::filesystem::status(file).permissions() & std::filesystem::perms::all) ==
        (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
  std::string secret;
  std::getline(std::ifstream(file), secret);
  CHECK(Call(port, http::verb::get, "/api/v1/tokens", secret).status == 200);
  CHECK(Call(port, http::verb::get, "/api/v1/dags", "").status == 401);
  // The CLI finds both the daemon and the token through the state dir.
  unsetenv("SLUICE_TOKEN");
  auto dags = testing::RunSluice({"dags", "list", "--state-dir", state});
  CHECK_MESSAGE(dags.exit_code == 0, dags.err);
  CHECK(dags.out.find("a ") != std::string::npos);
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
}

TEST_CASE("Daemon.Mlops.ModelsArtifactsMetricsThroughTheApi" * testing::Timeout(120)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  testing::WriteFile(dir.file("dags/toy.toml"), R"(
[dag]
id = "toy"
[params]
auc = 0.9
[[task]]
id = "train"
plugin = "mlops.train"
cache = true
params = { auc = "{{ params.auc }}" }
[[task]]
id = "deploy"
plugin = "mlops.deploy"
depends_on = ["train"]
inputs = { model = "train.model", auc = "train.auc" }
params = { model_name = "toy" }
)");
  const int pid = testing::SpawnSluice(
      {"serve", "--dags", dir.file("dags"), "--state-dir", state, "--listen", "127.0.0.1:0",
       "--plugin-dir", std::string(SLUICE_TEST_PLUGIN_DIR) + "/mlops_v1"},
      dir.file("serve.log"));
  const unsigned short port = DaemonPort(state);
  const std::string op = Token(state, "ops", "operator");
  const std::string viewer = Token(state, "eve", "viewer");
  std::vector<std::string> runs;
  for (const char* body :
       {R"({"params": {"auc": 0.9}, "tags": {"experiment": "a"}})",
        R"({"params": {"auc": 0.95}, "tags": {"experiment": "b"}, "note": "n"})"}) {
    Reply made = Call(port, http::verb::post, "/api/v1/dags/toy/runs", op, body);
    REQUIRE_MESSAGE(made.status == 201, made.body);
    const std::string run = made.Json()["run"]["run_id"];
    CHECK(WaitFor([&] {
      return Call(port, http::verb::get, "/api/v1/runs/" + run, viewer).Json()["run"]["state"] ==
             "success";
    }));
    runs.push_back(run);
  }
  CHECK(Call(port, http::verb::post, "/api/v1/dags/toy/runs", op, R"({"tags": {"a b": "x"}})")
            .status == 400);

  json model = Call(port, http::verb::get, "/api/v1/models/toy", viewer).Json();
  CHECK(model["model"]["aliases"]["production"]["version"] == 2);
  json versions = Call(port, http::verb::get, "/api/v1/models/toy/versions", viewer).Json();
  REQUIRE(versions["versions"].size() == 2);
  CHECK(Call(port, http::verb::get, "/api/v1/models/toy/versions/9", viewer).status == 404);

  // Moving an alias needs an operator; the move is recorded with who made it.
  CHECK(Call(port, http::verb::post, "/api/v1/models/toy/aliases/production", viewer,
             R"({"version": 1})")
            .status == 403);
  CHECK(Call(port, http::verb::post, "/api/v1/models/toy/aliases/production", op,
             R"({"version": "1"})")
            .status == 400);
  Reply moved = Call(port, http::verb::post, "/api/v1/models/toy/aliases/staging", op,
                     R"({"version": 1, "reason": "canary"})");
  CHECK_MESSAGE(moved.status == 200, moved.body);
  // The CLI goes through the daemon (which holds the state dir) for a rollback.
  auto rollback = testing::RunSluice({"models", "rollback", "toy", "--alias", "production",
                                      "--reason", "drift", "--state-dir", state, "--token", op});
  CHECK_MESSAGE(rollback.exit_code == 0, rollback.err);
  model = Call(port, http::verb::get, "/api/v1/models/toy", viewer).Json();
  CHECK(model["model"]["aliases"]["production"]["version"] == 1);
  const json& last = model["history"].back();
  CHECK(last["kind"] == "alias");
  CHECK(last["actor"] == "token:ops");
  CHECK(last["reason"] == "rollback: drift");

  // Artifacts and lineage of the version's model file.
  const std::string artifact = versions["versions"][1]["artifact"];
  json shown =
      Call(port, http::verb::get, "/api/v1/artifacts/" + artifact.substr(0, 8), viewer).Json();
  CHECK(shown["artifact"]["produced_by"][0]["task_id"] == "train");
  CHECK(shown["artifact"]["read_by"][0]["task_id"] == "deploy");
  json lineage = Call(port, http::verb::get,
                      "/api/v1/artifacts/" + artifact + "/lineage?direction=down", viewer)
                     .Json();
  CHECK(!lineage.contains("up"));
  CHECK(lineage["down"]["tries"][0]["task_id"] == "deploy");

  json metrics =
      Call(port, http::verb::get, "/api/v1/runs/" + runs[1] + "/metrics?task=train", viewer).Json();
  CHECK(metrics["tasks"]["train"]["summary"]["auc"]["last"].get<double>() == doctest::Approx(0.95));
  CHECK(metrics["note"] == "n");
  json compare =
      Call(port, http::verb::get, "/api/v1/runs/compare?runs=" + runs[0] + "," + runs[1], viewer)
          .Json();
  bool auc_differs = false;
  for (const json& row : compare["rows"]) {
    if (row["key"] == "train.auc" && row["section"] == "metric") auc_differs = row["differs"];
  }
  CHECK(auc_differs);
  CHECK(Call(port, http::verb::get, "/api/v1/runs/compare?runs=" + runs[0], viewer).status == 400);
  kill(pid, SIGTERM);
  waitpid(pid, nullptr, 0);
}

}  // namespace
}  // namespace sluice
