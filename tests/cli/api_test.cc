// The REST API of a real `sluice serve`, over real HTTP.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <boost/beast/http.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "test_util.h"

namespace sluice {
namespace {

namespace http = boost::beast::http;
using nlohmann::json;

struct Reply {
  int status = 0;
  json body;
};

// One HTTP request without a token; the body parsed as JSON.
Reply Call(unsigned short port, http::verb verb, const std::string& target,
           const std::string& body = "") {
  testing::HttpReply reply =
      testing::HttpCall(port, std::string(http::to_string(verb)), target, "", body);
  if (reply.status == 0) return {};
  return {reply.status, json::parse(reply.body)};
}

TEST_CASE("Api.Serve.HealthDagsTriggerRunsAndErrors" * testing::Timeout(90)) {
  testing::TempDir dir;
  testing::WriteFile(dir.file("dags/greet.toml"), R"([dag]
id = "greet"
[params]
name = "world"
count = 2
[[task]]
id = "say"
plugin = "core.shell"
params = { command = "echo hello {{ params.name }}" }
)");
  testing::WriteFile(dir.file("dags/broken.toml"), "[dag]\nid = \"broken\"\n");
  const unsigned short port = static_cast<unsigned short>(20000 + (getpid() % 20000));
  int pid = testing::SpawnSluice(
      {"serve", "--dags", dir.file("dags"), "--state-dir", dir.file("state"), "--listen",
       "127.0.0.1:" + std::to_string(port), "--allow-unauthenticated"},
      dir.file("serve.log"));
  Reply health;
  for (int i = 0; i < 100 * testing::TimeScale() && health.status != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    health = Call(port, http::verb::get, "/api/v1/health");
  }
  REQUIRE(health.status == 200);
  CHECK(health.body["status"] == "ok");

  Reply dags = Call(port, http::verb::get, "/api/v1/dags");
  CHECK(dags.status == 200);
  REQUIRE(dags.body["dags"].size() == 2);
  bool broken_reported = false;
  for (const json& d : dags.body["dags"]) {
    if (d["path"].get<std::string>().find("broken.toml") != std::string::npos) {
      broken_reported = d["valid"] == false && d["errors"][0]["message"].get<std::string>().find(
                                                   "has no tasks") != std::string::npos;
    }
  }
  CHECK(broken_reported);

  Reply created =
      Call(port, http::verb::post, "/api/v1/dags/greet/runs", R"({"params": {"name": "api"}})");
  CHECK(created.status == 201);
  const std::string run_id = created.body["run"]["run_id"];
  CHECK(created.body["run"]["params"]["name"] == "api");
  CHECK(created.body["run"]["triggered_by"].get<std::string>().rfind("local:127.0.0.1:", 0) == 0);

  Reply run;
  for (int i = 0; i < 100 * testing::TimeScale(); ++i) {
    run = Call(port, http::verb::get, "/api/v1/runs/" + run_id);
    if (run.status == 200 && run.body["run"]["state"] == "success") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(run.body["run"]["state"] == "success");
  CHECK(run.body["tasks"].back()["params"]["command"] == "echo hello api");

  CHECK(Call(port, http::verb::get, "/api/v1/dags/greet/runs?limit=5").body["runs"].size() == 1);
  CHECK(Call(port, http::verb::get, "/api/v1/dags/greet")
            .body["source"]
            .get<std::string>()
            .find("[params]") != std::string::npos);

  Reply log = Call(port, http::verb::get, "/api/v1/runs/" + run_id + "/tasks/say/log");
  CHECK(log.status == 200);
  CHECK(log.body["text"].get<std::string>().find("INFO  hello api") != std::string::npos);
  const size_t end = log.body["next_offset"];
  Reply tail = Call(port, http::verb::get,
                    "/api/v1/runs/" + run_id + "/tasks/say/log?offset=" + std::to_string(end));
  CHECK(tail.body["text"] == "");  // nothing new since
  CHECK(Call(port, http::verb::get, "/api/v1/runs/" + run_id + "/tasks/nope/log").status == 404);
  Reply run_events = Call(port, http::verb::get, "/api/v1/runs/" + run_id + "/events");
  CHECK(run_events.status == 200);
  CHECK(run_events.body["events"].back()["to"] == "success");

  // Bad requests get a status, a stable code and a message that says what is wrong.
  Reply bad_param =
      Call(port, http::verb::post, "/api/v1/dags/greet/runs", R"({"params": {"count": "two"}})");
  CHECK(bad_param.status == 400);
  CHECK(bad_param.body["error"]["code"] == "bad_request");
  CHECK(bad_param.body["error"]["message"].get<std::string>().find(
            "expected a value like the default 2") != std::string::npos);
  Reply not_json = Call(port, http::verb::post, "/api/v1/dags/greet/runs", "{oops");
  CHECK(not_json.status == 400);
  CHECK(Call(port, http::verb::post, "/api/v1/dags/greet/runs", R"({"parms": {}})")
            .body["error"]["message"] ==
        "unknown field \"parms\" (accepted: params, logical_date, run_id, no_cache, tags, note)");
  CHECK(Call(port, http::verb::get, "/api/v1/dags/nope").status == 404);
  CHECK(Call(port, http::verb::get, "/api/v1/runs/nope").status == 404);
  CHECK(Call(port, http::verb::delete_, "/api/v1/dags").status == 405);
  CHECK(Call(port, http::verb::get, "/elsewhere").body["error"]["code"] == "not_found");
  Reply huge = Call(port, http::verb::post, "/api/v1/dags/greet/runs", std::string(2 << 20, 'x'));
  CHECK(huge.status == 413);

  // The trigger is in the event log with who made it.
  auto events = testing::RunSluice({"events", run_id, "--json", "--state-dir", dir.file("state")});
  CHECK(json::parse(events.out)[0]["reason"].get<std::string>().rfind(
            "triggered by local:127.0.0.1:", 0) == 0);

  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
}

}  // namespace
}  // namespace sluice
