// Issue 15 against a real `sluice serve` over real HTTP: bodies that crashed the daemon, run
// ids that escaped the DAG's log folder, and unknown ids that answered 200.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace sluice {
namespace {

using nlohmann::json;
using testing::HttpCall;

constexpr const char* kGreetDag = R"([dag]
id = "greet"
[params]
greeting = "hello"
[[task]]
id = "say"
plugin = "core.shell"
params = { command = "echo {{ params.greeting }}" }
)";

// A `sluice serve` on a fresh state dir, stopped however the test ends.
class Daemon {
 public:
  explicit Daemon(testing::TempDir* dir) : dir_(dir) {
    testing::WriteFile(dir->file("dags/greet.toml"), kGreetDag);
    pid_ = testing::SpawnSluice(
        {"serve", "--dags", dir->file("dags"), "--state-dir", dir->file("state"), "--listen",
         "127.0.0.1:0", "--allow-unauthenticated"},
        dir->file("serve.log"));
    port_ = testing::DaemonPort(dir->file("state"));
  }
  ~Daemon() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  unsigned short port() const { return port_; }
  // True while the process has not exited (a crash makes waitpid reap it).
  bool Alive() {
    int status = 0;
    return waitpid(pid_, &status, WNOHANG) == 0;
  }
  std::string log() const { return testing::ReadFile(dir_->file("serve.log")); }

 private:
  testing::TempDir* dir_;
  int pid_ = -1;
  unsigned short port_ = 0;
};

std::string Message(const testing::HttpReply& reply) {
  const json body = json::parse(reply.body, nullptr, false);
  return body.is_object() && body.contains("error") ? body["error"].value("message", "") : "";
}

// Waits until the run has ended; its state.
std::string WaitForEnd(unsigned short port, const std::string& run_id) {
  std::string state;
  testing::WaitFor([&] {
    testing::HttpReply r = HttpCall(port, "GET", "/api/v1/runs/" + run_id);
    if (r.status != 200) return false;
    state = json::parse(r.body)["run"]["state"];
    return state == "success" || state == "failed";
  });
  return state;
}

TEST_CASE("Api.Hardening.DeepBodiesAre400AndTheDaemonLives" * testing::Timeout(120)) {
  testing::TempDir dir;
  Daemon daemon(&dir);
  const unsigned short port = daemon.port();
  INFO(daemon.log());
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  const std::string trigger = "/api/v1/dags/greet/runs";

  // The issue's bodies: params, tags, and a clear's tasks, 100,000 levels deep (~200 KB).
  testing::HttpReply r =
      HttpCall(port, "POST", trigger, "", "{\"params\": {\"greeting\": " + deep + "}}");
  CHECK(r.status == 400);
  CHECK_MESSAGE(Message(r).find("more than 64 levels deep") != std::string::npos, r.body);
  r = HttpCall(port, "POST", trigger, "", "{\"tags\": {\"t\": " + deep + "}}");
  CHECK(r.status == 400);
  CHECK(Message(r).find("levels deep") != std::string::npos);

  r = HttpCall(port, "POST", trigger, "", "{}");
  REQUIRE_MESSAGE(r.status == 201, r.body);
  const std::string run_id = json::parse(r.body)["run"]["run_id"];
  CHECK(WaitForEnd(port, run_id) == "success");
  r = HttpCall(port, "POST", "/api/v1/runs/" + run_id + "/clear", "", "{\"tasks\": " + deep + "}");
  CHECK(r.status == 400);
  CHECK(Message(r).find("levels deep") != std::string::npos);
  // Just inside the limit is a type error, not a depth error: the limit is exactly 64.
  const std::string deepest_allowed = std::string(62, '[') + std::string(62, ']');
  r = HttpCall(port, "POST", trigger, "", "{\"params\": {\"greeting\": " + deepest_allowed + "}}");
  CHECK(r.status == 400);
  CHECK_MESSAGE(Message(r).find("levels deep") == std::string::npos, r.body);
  // Brackets inside strings do not count.
  r = HttpCall(port, "POST", trigger, "",
               json{{"params", {{"greeting", std::string(10000, '[')}}}}.dump());
  CHECK_MESSAGE(r.status == 201, r.body);

  // A key given twice is refused, not resolved to the last (the fuzzer's body): the first
  // "tags" would otherwise be dropped without a word.
  r = HttpCall(port, "POST", trigger, "", "{\"tags\": {\"team\": \"ml\"}, \"tags\": \"x\"}");
  CHECK(r.status == 400);
  CHECK_MESSAGE(Message(r).find("gives the key \"tags\" twice") != std::string::npos, r.body);
  r = HttpCall(port, "POST", trigger, "", "{\"params\": {\"a\": {\"k\": 1, \"k\": 2}}}");
  CHECK(r.status == 400);
  CHECK_MESSAGE(Message(r).find("\"k\" twice") != std::string::npos, r.body);

  CHECK(daemon.Alive());
  CHECK(HttpCall(port, "GET", "/api/v1/health").status == 200);
}

TEST_CASE("Api.Hardening.RunIdsFollowTheStoreGrammar" * testing::Timeout(120)) {
  testing::TempDir dir;
  Daemon daemon(&dir);
  const unsigned short port = daemon.port();
  INFO(daemon.log());
  const std::string trigger = "/api/v1/dags/greet/runs";
  // The issue's ids: "..", one holding NUL, newlines, spaces; and others a path or a
  // terminal would misread.
  const std::vector<std::string> bad = {
      "..",  ".",        std::string("a\0b", 3), "a\nb", "two words", "../up",
      "a/b", "-leading", std::string(201, 'x'),  "",     "tab\there", "caf\xc3\xa9"};
  for (const std::string& id : bad) {
    CAPTURE(json(id).dump(-1, ' ', true, json::error_handler_t::replace));
    testing::HttpReply r =
        HttpCall(port, "POST", trigger, "",
                 json{{"run_id", id}}.dump(-1, ' ', false, json::error_handler_t::replace));
    CHECK(r.status == 400);
    CHECK_MESSAGE(Message(r).find("run id") != std::string::npos, r.body);
  }
  // Nothing was created, and nothing was written outside the DAG's folder.
  testing::HttpReply list = HttpCall(port, "GET", trigger);
  REQUIRE(list.status == 200);
  CHECK(json::parse(list.body)["runs"].empty());
  CHECK_FALSE(std::filesystem::exists(dir.file("state/logs/say")));

  // What users choose and what Sluice generates is accepted.
  for (const std::string id : {"retrain-2026.q4", "manual__2026-11-28T00:02:26.810939Z",
                               "backfill__2026-01-01T00:00:00+00:00", "_x", "7"}) {
    CAPTURE(id);
    testing::HttpReply r = HttpCall(port, "POST", trigger, "", json{{"run_id", id}}.dump());
    CHECK_MESSAGE(r.status == 201, r.body);
  }
  CHECK(daemon.Alive());
}

TEST_CASE("Api.Hardening.UnknownIdsAre404" * testing::Timeout(60)) {
  testing::TempDir dir;
  Daemon daemon(&dir);
  const unsigned short port = daemon.port();
  INFO(daemon.log());
  for (const char* target :
       {"/api/v1/dags/nope/runs", "/api/v1/dags/nope/events", "/api/v1/dags/nope/backfills",
        "/api/v1/models/nope/serving", "/api/v1/runs/nope", "/api/v1/dags/nope"}) {
    CAPTURE(target);
    testing::HttpReply r = HttpCall(port, "GET", target);
    CHECK(r.status == 404);
    CHECK_MESSAGE(Message(r).find("nope") != std::string::npos, r.body);
  }
  // A known DAG with no runs yet is an empty list, not a 404.
  testing::HttpReply r = HttpCall(port, "GET", "/api/v1/dags/greet/runs");
  CHECK(r.status == 200);
  CHECK(json::parse(r.body)["runs"].empty());
  CHECK(HttpCall(port, "GET", "/api/v1/dags/greet/events").status == 200);
}

}  // namespace
}  // namespace sluice
