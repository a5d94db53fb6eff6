// Every route × every role, table-driven from the router's own list (Api::Routes()), against
// a real `sluice serve` with real tokens: no token is 401 (unless the route is open), a role
// below the rule's is 403, and a role at or above it gets past authorization. Routes() is what
// the daemon authorizes against, and a path it does not hold is 404: an endpoint added to the
// router without a rule answers 404 to everyone, so its own tests fail until it has one.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <map>
#include <nlohmann/json.hpp>

#include "sluice/api.h"
#include "test_util.h"

namespace sluice {
namespace {

using nlohmann::json;

TEST_CASE("Api.Routes.EveryRouteTimesEveryRole" * testing::Timeout(120)) {
  testing::TempDir dir;
  testing::WriteFile(dir.file("dags/d.toml"),
                     "[dag]\nid = \"d\"\n[[task]]\nid = \"a\"\nplugin = \"core.noop\"\n");
  const int pid = testing::SpawnSluice({"serve", "--dags", dir.file("dags"), "--state-dir",
                                        dir.file("state"), "--listen", "127.0.0.1:0"},
                                       dir.file("serve.log"));
  struct Stop {
    int pid;
    ~Stop() {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  } stop{pid};
  const unsigned short port = testing::DaemonPort(dir.file("state"));
  INFO(testing::ReadFile(dir.file("serve.log")));
  std::string admin = testing::ReadFile(dir.file("state/admin-token"));
  while (!admin.empty() && (admin.back() == '\n' || admin.back() == '\r')) admin.pop_back();
  REQUIRE(!admin.empty());

  std::map<std::string, std::string> tokens = {{"none", ""}, {"admin", admin}};
  for (const char* role : {"viewer", "operator"}) {
    testing::HttpReply made =
        testing::HttpCall(port, "POST", "/api/v1/tokens", admin,
                          json{{"name", std::string("t-") + role}, {"role", role}}.dump());
    REQUIRE_MESSAGE(made.status == 201, made.body);
    tokens[role] = json::parse(made.body)["token"];
  }
  const std::map<std::string, int> rank = {{"viewer", 0}, {"operator", 1}, {"admin", 2}};

  size_t checked = 0;
  for (const Api::RouteRule& rule : Api::Routes()) {
    std::string target = rule.pattern;
    for (size_t at; (at = target.find("{}")) != std::string::npos;) target.replace(at, 2, "zz");
    const std::string body = std::string(rule.method) == "GET" ? "" : "{}";
    for (const auto& [role, token] : tokens) {
      CAPTURE(rule.method);
      CAPTURE(target);
      CAPTURE(role);
      testing::HttpReply r = testing::HttpCall(port, rule.method, target, token, body);
      REQUIRE_MESSAGE(r.status != 0, "the daemon did not answer");
      if (rule.open) {
        CHECK(r.status == 200);
      } else if (role == "none") {
        CHECK(r.status == 401);
      } else if (rank.at(role) < static_cast<int>(rule.role)) {
        CHECK(r.status == 403);
        CHECK(r.body.find(RoleName(rule.role)) != std::string::npos);
      } else {
        // Past authorization: whatever the route says of "zz" (404, 400, 409...), not 401/403,
        // and the route exists (a 404 names the thing, not the endpoint).
        CHECK(r.status != 401);
        CHECK(r.status != 403);
        CHECK(r.status != 405);
        CHECK_MESSAGE(r.body.find("no such endpoint") == std::string::npos, r.body);
      }
      ++checked;
    }
  }
  CHECK(checked == Api::Routes().size() * 4);
  // A path the table does not hold is 404 for every role, and a method it does not list 405.
  CHECK(testing::HttpCall(port, "GET", "/api/v1/nope", admin).status == 404);
  CHECK(testing::HttpCall(port, "DELETE", "/api/v1/dags", admin).status == 405);
  CHECK(testing::HttpCall(port, "GET", "/api/v1/nope").status == 401);
}

}  // namespace
}  // namespace sluice
