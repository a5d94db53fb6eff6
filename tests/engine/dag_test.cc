#include "sluice/dag.h"

#include <doctest/doctest.h>

#include "sluice/dag_loader.h"

namespace sluice {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

std::unique_ptr<const Dag> Load(const std::string& text) {
  DagLoadResult r = LoadDagText(text, "test.toml");
  std::string errors;
  for (const Diagnostic& d : r.diagnostics.items()) errors += Render(d);
  REQUIRE_MESSAGE(r.ok(), errors);
  return std::move(r.dag);
}

std::string Task(const std::string& id, const std::string& deps = "") {
  return "[[task]]\nid = \"" + id + "\"\nplugin = \"core.noop\"\ndepends_on = [" + deps + "]\n";
}

std::vector<std::string> Ids(const Dag& dag, const std::vector<uint32_t>& indices) {
  std::vector<std::string> out;
  for (uint32_t i : indices) out.push_back(dag.tasks()[i].id);
  return out;
}

TEST_CASE("Dag.Graph.TopologicalOrderKeepsFileOrderAmongEquals") {
  // Written out of dependency order on purpose.
  auto dag = Load("[dag]\nid = \"g\"\n" + Task("report", "\"train\", \"evaluate\"") +
                  Task("train", "\"prepare\"") + Task("evaluate", "\"train\"") + Task("prepare") +
                  Task("lint"));
  CHECK(Ids(*dag, dag->topological_order()) ==
        std::vector<std::string>{"prepare", "train", "evaluate", "report", "lint"});
  REQUIRE(dag->layers().size() == 4);
  CHECK(Ids(*dag, dag->layers()[0]) == std::vector<std::string>{"prepare", "lint"});
  CHECK(Ids(*dag, dag->layers()[1]) == std::vector<std::string>{"train"});
  CHECK(Ids(*dag, dag->layers()[2]) == std::vector<std::string>{"evaluate"});
  // report depends on train (layer 1) and evaluate (layer 2): the longest path decides.
  CHECK(Ids(*dag, dag->layers()[3]) == std::vector<std::string>{"report"});
  CHECK(dag->edge_count() == 4);
  CHECK(Ids(*dag, dag->downstream(static_cast<size_t>(dag->IndexOf("train")))) ==
        std::vector<std::string>{"report", "evaluate"});
  CHECK(dag->IndexOf("missing") == -1);
}

TEST_CASE("Dag.Graph.WideAndDeepShapes") {
  std::string text = "[dag]\nid = \"wide\"\n" + Task("root");
  std::string all;
  for (int i = 0; i < 500; ++i) {
    std::string id = "w" + std::to_string(i);
    text += Task(id, "\"root\"");
    all += (all.empty() ? "\"" : ", \"") + id + "\"";
  }
  text += Task("join", all);
  auto dag = Load(text);
  REQUIRE(dag->layers().size() == 3);
  CHECK(dag->layers()[1].size() == 500);
  CHECK(dag->upstream(static_cast<size_t>(dag->IndexOf("join"))).size() == 500);
  CHECK(dag->edge_count() == 1000);
  CHECK(dag->topological_order().back() == dag->IndexOf("join"));
}

TEST_CASE("Dag.RetryDelay.ExponentialWithCapAndJitter") {
  RetryBackoff none;
  CHECK(RetryDelay(seconds(30), none, 1, 0.5) == seconds(30));
  CHECK(RetryDelay(seconds(30), none, 5, 0.5) == seconds(30));

  RetryBackoff exp;
  exp.exponential = true;
  exp.multiplier = 2.0;
  exp.max_delay = minutes(5);
  exp.jitter = 0.0;
  CHECK(RetryDelay(seconds(30), exp, 1, 0.9) == seconds(30));
  CHECK(RetryDelay(seconds(30), exp, 2, 0.9) == seconds(60));
  CHECK(RetryDelay(seconds(30), exp, 3, 0.9) == seconds(120));
  CHECK(RetryDelay(seconds(30), exp, 4, 0.9) == seconds(240));
  CHECK(RetryDelay(seconds(30), exp, 5, 0.9) == minutes(5));   // capped
  CHECK(RetryDelay(seconds(30), exp, 60, 0.9) == minutes(5));  // no overflow

  exp.jitter = 0.5;
  CHECK(RetryDelay(seconds(30), exp, 2, 0.0) == seconds(60));  // no cut
  CHECK(RetryDelay(seconds(30), exp, 2, 1.0) == seconds(30));  // the largest cut: half
  CHECK(RetryDelay(seconds(30), exp, 2, 0.5) == seconds(45));
}

TEST_CASE("Dag.TriggerRule.NamesRoundTrip") {
  const std::vector<std::string> names = TriggerRuleNames();
  CHECK(names.size() == 9);
  for (const std::string& name : names) {
    auto rule = ParseTriggerRule(name);
    REQUIRE(rule.has_value());
    CHECK(TriggerRuleName(*rule) == name);
  }
  CHECK_FALSE(ParseTriggerRule("all_sucess").has_value());
}

TEST_CASE("Dag.ToJson.ResolvedModel") {
  auto dag =
      Load("[dag]\nid = \"j\"\n[params]\nx = 1\n[defaults]\nretries = 2\ntimeout = \"90s\"\n" +
           Task("a") + Task("b", "\"a\"") + "when = \"a.ok\"\ninputs = { data = \"a.out\" }\n");
  nlohmann::json j = DagToJson(*dag);
  CHECK(j["id"] == "j");
  CHECK(j["params"]["x"] == 1);
  CHECK(j["schedule"].is_null());
  CHECK(j["catchup"] == "latest");
  REQUIRE(j["tasks"].size() == 2);
  CHECK(j["tasks"][1]["retries"] == 2);
  CHECK(j["tasks"][1]["timeout"] == "1m30s");
  CHECK(j["tasks"][1]["depends_on"] == nlohmann::json::array({"a"}));
  CHECK(j["tasks"][1]["inputs"]["data"] == "a.out");
  CHECK(j["tasks"][1]["when"] == "a.ok");
  CHECK(j["tasks"][1]["trigger_rule"] == "all_success");
  CHECK(j["topological_order"] == nlohmann::json::array({"a", "b"}));
  CHECK(j["layers"] == nlohmann::json::parse(R"([["a"],["b"]])"));
}

}  // namespace
}  // namespace sluice
