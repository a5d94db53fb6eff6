#include "sluice/dag_loader.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <regex>

#include "test_util.h"

namespace sluice {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

const TaskSpec& Task(const Dag& dag, const std::string& id) {
  int64_t i = dag.IndexOf(id);
  REQUIRE(i >= 0);
  return dag.tasks()[static_cast<size_t>(i)];
}

std::string Errors(const DagLoadResult& r) {
  std::string out;
  for (const Diagnostic& d : r.diagnostics.items()) out += Render(d) + "\n";
  return out;
}

TEST_CASE("DagLoader.Valid.DefaultsAppliedAndOverridden") {
  DagLoadResult r = LoadDagFile(testing::DataPath("dags/valid/defaults_and_overrides.toml"));
  REQUIRE_MESSAGE(r.ok(), Errors(r));
  CHECK(r.diagnostics.empty());
  const Dag& dag = *r.dag;
  CHECK(dag.id() == "defaults_and_overrides");
  CHECK(dag.spec().owner == "ml-platform");
  CHECK(dag.spec().tags == std::vector<std::string>{"ml", "nightly"});
  CHECK(dag.spec().schedule == std::optional<std::string>("0 3 * * *"));
  CHECK(dag.spec().catchup == CatchupPolicy::kAll);
  CHECK(dag.spec().max_active_runs == 2);
  CHECK(dag.spec().dagrun_timeout == std::optional<Duration>(hours(6)));
  CHECK(dag.spec().params["source"]["sep"] == ",");

  const TaskSpec& prepare = Task(dag, "prepare");
  CHECK(prepare.retries == 2);
  CHECK(prepare.retry_delay == seconds(10));
  CHECK(prepare.retry_backoff.exponential);
  CHECK(prepare.retry_backoff.multiplier == doctest::Approx(3.0));
  CHECK(prepare.retry_backoff.max_delay == minutes(5));
  CHECK(prepare.retry_backoff.jitter == doctest::Approx(0.2));
  CHECK(prepare.timeout == std::optional<Duration>(hours(1)));
  CHECK(prepare.pool == "cpu");
  CHECK(prepare.priority == 5);
  CHECK(prepare.cache);
  CHECK(prepare.trigger_rule == TriggerRule::kAllSuccess);
  CHECK(prepare.params["path"] == "{{ params.source.path }}");  // rendered at run time
  CHECK(prepare.param_pos.at("path").line == 30);

  const TaskSpec& train = Task(dag, "train");
  CHECK(train.retries == 0);
  CHECK(train.timeout == std::optional<Duration>(hours(2) + minutes(30)));
  CHECK_FALSE(train.retry_backoff.exponential);
  CHECK(train.pool == "gpu");
  CHECK(train.priority == -1);
  CHECK_FALSE(train.cache);
  REQUIRE(train.inputs.size() == 2);
  CHECK(train.inputs[0].name == "train");
  CHECK(train.inputs[0].task == "prepare");
  CHECK(train.inputs[0].output == "train");

  const TaskSpec& deploy = Task(dag, "deploy");
  CHECK(deploy.trigger_rule == TriggerRule::kNoneFailedMinOneSuccess);
  REQUIRE(deploy.when != nullptr);
  CHECK(deploy.when->references().size() == 3);
  CHECK(Task(dag, "notify").trigger_rule == TriggerRule::kAlways);
}

TEST_CASE("DagLoader.Valid.DatesUseTheDagTimezoneUnlessAnOffsetIsGiven") {
  DagLoadResult r = LoadDagFile(testing::DataPath("dags/valid/defaults_and_overrides.toml"));
  REQUIRE_MESSAGE(r.ok(), Errors(r));
  // 02:30 on 2026-03-29 does not exist in Berlin (clocks jump 02:00 -> 03:00 CEST); it
  // resolves to the instant of the jump, 01:00 UTC.
  CHECK(FormatTimeUtc(*r.dag->spec().start_date) == "2026-03-29T01:00:00Z");
  // A bare date is midnight in the DAG's timezone (CET, UTC+1, in December).
  CHECK(FormatTimeUtc(*r.dag->spec().end_date) == "2026-12-30T23:00:00Z");

  DagLoadResult offset = LoadDagText(R"(
[dag]
id = "o"
timezone = "America/New_York"
start_date = 2026-07-01T00:00:00+02:00
end_date = 2026-07-01T12:00:00
[[task]]
id = "a"
plugin = "core.noop"
)",
                                     "offset.toml");
  REQUIRE_MESSAGE(offset.ok(), Errors(offset));
  CHECK(FormatTimeUtc(*offset.dag->spec().start_date) == "2026-06-30T22:00:00Z");
  CHECK(FormatTimeUtc(*offset.dag->spec().end_date) == "2026-07-01T16:00:00Z");  // EDT
}

TEST_CASE("DagLoader.Valid.BuiltInDefaults") {
  DagLoadResult r = LoadDagText("[dag]\nid = \"m\"\n[[task]]\nid = \"a\"\nplugin = \"core.noop\"\n",
                                "minimal.toml");
  REQUIRE_MESSAGE(r.ok(), Errors(r));
  const DagSpec& spec = r.dag->spec();
  CHECK(spec.timezone == "UTC");
  CHECK_FALSE(spec.schedule.has_value());
  CHECK(spec.catchup == CatchupPolicy::kLatest);
  CHECK(spec.max_active_runs == 16);
  const TaskSpec& a = spec.tasks[0];
  CHECK(a.retries == 0);
  CHECK(a.retry_delay == seconds(30));
  CHECK_FALSE(a.timeout.has_value());
  CHECK(a.trigger_rule == TriggerRule::kAllSuccess);
  CHECK(a.pool == "default");
  CHECK(a.priority == 1);
  CHECK_FALSE(a.cache);
  CHECK(a.when == nullptr);
}

TEST_CASE("DagLoader.Valid.CatchupSpellings") {
  struct Case {
    const char* value;
    CatchupPolicy want;
  };
  const Case cases[] = {{"true", CatchupPolicy::kAll},
                        {"false", CatchupPolicy::kLatest},
                        {"\"all\"", CatchupPolicy::kAll},
                        {"\"latest\"", CatchupPolicy::kLatest},
                        {"\"none\"", CatchupPolicy::kNone}};
  for (const Case& c : cases) {
    const std::string shown = c.value;
    CAPTURE(shown);
    DagLoadResult r = LoadDagText(std::string("[dag]\nid = \"c\"\ncatchup = ") + c.value +
                                      "\n[[task]]\nid = \"a\"\nplugin = \"core.noop\"\n",
                                  "c.toml");
    REQUIRE_MESSAGE(r.ok(), Errors(r));
    CHECK(r.dag->spec().catchup == c.want);
  }
}

TEST_CASE("DagLoader.Valid.RetryBackoffTrueUsesDocumentedDefaults") {
  DagLoadResult r = LoadDagText(
      "[dag]\nid = \"b\"\n[[task]]\nid = \"a\"\nplugin = \"core.noop\"\nretries = 3\n"
      "retry_backoff = true\n",
      "b.toml");
  REQUIRE_MESSAGE(r.ok(), Errors(r));
  const RetryBackoff& b = r.dag->tasks()[0].retry_backoff;
  CHECK(b.exponential);
  CHECK(b.multiplier == doctest::Approx(2.0));
  CHECK(b.max_delay == hours(1));
  CHECK(b.jitter == doctest::Approx(0.1));
}

TEST_CASE("DagLoader.DuplicateDependencyIsAWarningNotAnError") {
  DagLoadResult r = LoadDagText(
      "[dag]\nid = \"w\"\n[[task]]\nid = \"a\"\nplugin = \"core.noop\"\n[[task]]\nid = \"b\"\n"
      "plugin = \"core.noop\"\ndepends_on = [\"a\", \"a\"]\n",
      "w.toml");
  REQUIRE_MESSAGE(r.ok(), Errors(r));
  REQUIRE(r.diagnostics.items().size() == 1);
  CHECK(r.diagnostics.items()[0].severity == Severity::kWarning);
  CHECK(r.diagnostics.items()[0].pos.line == 9);
  CHECK(r.diagnostics.items()[0].pos.column == 20);
  CHECK(r.dag->upstream(1).size() == 1);
}

TEST_CASE("DagLoader.NothingHalfLoaded.OneErrorRejectsTheWholeFile") {
  // Nine good tasks and one bad setting: no Dag at all.
  std::string text = "[dag]\nid = \"h\"\n";
  for (int i = 0; i < 9; ++i) {
    text += "[[task]]\nid = \"t" + std::to_string(i) + "\"\nplugin = \"core.noop\"\n";
  }
  text += "[[task]]\nid = \"bad\"\nplugin = \"core.noop\"\ntimeout = \"forever\"\n";
  DagLoadResult r = LoadDagText(text, "h.toml");
  CHECK_FALSE(r.ok());
  CHECK(r.dag == nullptr);
  CHECK(r.diagnostics.error_count() == 1);
}

// Issue 15: a `when` of 10,000 nested parentheses, or 100,000 "not"s, crashed `sluice dag
// validate` (and a daemon that rescanned the file) with SIGSEGV. Now each is one error at
// the file, line and column where the nesting goes too deep, and so are params nested deeper
// than JSON may be and a file past the size limit.
TEST_CASE("DagLoader.Limits.DeepWhenParamsAndHugeFilesAreDiagnostics") {
  const std::string head =
      "[dag]\nid = \"deep\"\n[[task]]\nid = \"a\"\nplugin = \"core.noop\"\n"
      "[[task]]\nid = \"b\"\nplugin = \"core.noop\"\ndepends_on = [\"a\"]\n";
  std::string nots;
  for (int i = 0; i < 100000; ++i) nots += "not ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"when = \"" + std::string(10000, '(') + "a.x" + std::string(10000, ')') + "\"\n",
       "deep.toml:10:"},
      {"when = \"" + nots + "a.x\"\n", "deep.toml:10:"},
      {"params = { v = " + std::string(100, '[') + std::string(100, ']') + " }\n", "deep.toml:10:"},
  };
  for (const auto& [tail, where] : cases) {
    DagLoadResult r = LoadDagText(head + tail, "deep.toml");
    const std::string errors = Errors(r);
    CAPTURE(errors.substr(0, 300));
    CHECK_FALSE(r.ok());
    CHECK(r.diagnostics.error_count() == 1);
    CHECK(errors.find(where) != std::string::npos);
    CHECK(
        (errors.find("levels") != std::string::npos || errors.find("bytes") != std::string::npos));
  }
  DagLoadResult huge =
      LoadDagText(head + "# " + std::string(kMaxDagFileBytes, 'x') + "\n", "huge.toml");
  CHECK_FALSE(huge.ok());
  CHECK(Errors(huge).find("more than the limit") != std::string::npos);
}

TEST_CASE("DagLoader.File.MissingFileIsReported") {
  DagLoadResult r = LoadDagFile("/nonexistent/dir/x.toml");
  CHECK_FALSE(r.ok());
  REQUIRE(r.diagnostics.items().size() == 1);
  CHECK(r.diagnostics.items()[0].message == "DAG file does not exist");
  CHECK(r.diagnostics.items()[0].file == "/nonexistent/dir/x.toml");
}

TEST_CASE("DagLoader.Directory.RecursiveSortedAndDuplicateIdsRejected") {
  testing::TempDir dir;
  const std::string dag = "[[task]]\nid = \"a\"\nplugin = \"core.noop\"\n";
  testing::WriteFile(dir.file("b.toml"), "[dag]\nid = \"same\"\n" + dag);
  testing::WriteFile(dir.file("a.toml"), "[dag]\nid = \"same\"\n" + dag);
  testing::WriteFile(dir.file("sub/c.toml"), "[dag]\nid = \"other\"\n" + dag);
  testing::WriteFile(dir.file("notes.txt"), "not a DAG");

  std::vector<DagLoadResult> results = LoadDagDirectory(dir.path().string());
  REQUIRE(results.size() == 3);
  CHECK(results[0].path == dir.file("a.toml"));
  CHECK(results[1].path == dir.file("b.toml"));
  CHECK(results[2].path == dir.file("sub/c.toml"));
  CHECK(results[0].ok());
  CHECK_FALSE(results[1].ok());
  REQUIRE(results[1].diagnostics.items().size() == 1);
  const Diagnostic& d = results[1].diagnostics.items()[0];
  CHECK(d.message == "DAG id \"same\" is already used by " + dir.file("a.toml"));
  CHECK(d.pos == SourcePos{2, 6});
  CHECK(results[2].ok());
}

TEST_CASE("DagLoader.ShippedDags.AllValidate") {
  std::vector<DagLoadResult> results = LoadDagDirectory(testing::SourcePath("dags"));
  REQUIRE_FALSE(results.empty());
  for (const DagLoadResult& r : results) {
    CAPTURE(r.path);
    CHECK_MESSAGE(r.ok(), Errors(r));
  }
}

TEST_CASE("DagLoader.Docs.EveryCompleteExampleValidates") {
  // Each ```toml block in the docs that starts with [dag] is a whole DAG file.
  const std::regex block("```toml\n(\\[dag\\][\\s\\S]*?)```");
  for (const char* page : {"docs/dag-format.md", "docs/plugin-sdk.md"}) {
    CAPTURE(std::string(page));
    const std::string doc = testing::ReadFile(testing::SourcePath(page));
    int count = 0;
    for (auto it = std::sregex_iterator(doc.begin(), doc.end(), block);
         it != std::sregex_iterator(); ++it) {
      ++count;
      DagLoadResult r =
          LoadDagText((*it)[1].str(), std::string(page) + " example " + std::to_string(count));
      CHECK_MESSAGE(r.ok(), Errors(r));
    }
    CHECK(count >= 1);
  }
}

}  // namespace
}  // namespace sluice
