// Drives the real `sluice` binary: exit codes, output formats, help.
#include <doctest/doctest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "sluice/plugin_abi.h"
#include "test_util.h"

namespace sluice {
namespace {

using testing::RunSluice;

TEST_CASE("Cli.DagValidate.ValidFolderExitsZero" * testing::Timeout(60)) {
  auto r = RunSluice({"dag", "validate", testing::SourcePath("dags")});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("hello.toml: ok (DAG \"hello\"") != std::string::npos);
  CHECK(r.out.find("0 invalid") != std::string::npos);
}

// Every DAG that ships in dags/ runs to success as the README tells a new user to run it:
// the light ones here, the ML pipelines in tests/ml (which check their results as well).
// nightly.toml once failed every try on an unquoted "(" in its shell command.
TEST_CASE("Cli.ShippedDags.EveryExampleRunsToSuccess" * testing::Timeout(120)) {
  const std::set<std::string> run_by_ml_tests = {"breast_cancer.toml", "wine_multiclass.toml",
                                                 "wine_sklearn.toml", "drift_watch.toml"};
  size_t ran = 0;
  for (const auto& entry : std::filesystem::directory_iterator(testing::SourcePath("dags"))) {
    if (entry.path().extension() != ".toml") continue;
    const std::string name = entry.path().filename().string();
    if (run_by_ml_tests.count(name) != 0) continue;
    testing::TempDir dir;
    auto r = RunSluice({"run", entry.path().string(), "--state-dir", dir.file("state"), "-q"});
    CHECK_MESSAGE(r.exit_code == 0, name << ":\n" << r.out << r.err);
    ++ran;
  }
  CHECK(ran >= 3);  // hello, nightly, artifacts
}

// A typo in a command or an option is named, with a did-you-mean, as the DAG validator
// does; CLI11 alone said "A subcommand is required" or "arguments were not expected".
TEST_CASE("Cli.Usage.TyposGetDidYouMeanAndHelpAndVersionAreCommands" * testing::Timeout(60)) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  };
  const Case cases[] = {
      {{"rnu"}, "sluice: unknown command \"rnu\"; did you mean \"run\"?"},
      {{"runz", "list"}, "sluice: unknown command \"runz\"; did you mean \"runs\"?"},
      {{"runs", "lst"}, "sluice runs: unknown command \"lst\"; did you mean \"list\"?"},
      {{"run", "--wrokers", "2", "dags/hello.toml"},
       "sluice run: unknown option --wrokers; did you mean \"--workers\"?"},
      {{"help", "rnus"}, "sluice help: no command \"rnus\"; did you mean \"runs\"?"},
  };
  for (const Case& c : cases) {
    auto r = RunSluice(c.args);
    CHECK_MESSAGE(r.exit_code == 2, c.args[0]);
    CHECK_MESSAGE(r.err.find(c.message) == 0, r.err);
  }
  auto version = RunSluice({"version"});
  CHECK(version.exit_code == 0);
  CHECK(version.out.rfind("sluice ", 0) == 0);
  // One version for the SDK, from plugin_abi.h: the CMake package's, and printed here.
  CHECK(version.out.find("(plugin ABI " + std::to_string(SLUICE_ABI_MAJOR) + "." +
                         std::to_string(SLUICE_ABI_MINOR) + ")") != std::string::npos);
  CHECK(version.out == RunSluice({"--version"}).out);
  // Each command's --help ends with its own examples, not the top level's eight.
  for (const std::vector<std::string>& command : {std::vector<std::string>{"runs"},
                                                  {"runs", "list"},
                                                  {"runs", "compare"},
                                                  {"tasks"},
                                                  {"logs"},
                                                  {"events"},
                                                  {"metrics"},
                                                  {"models", "versions"},
                                                  {"dags", "pause"},
                                                  {"backfills"},
                                                  {"tokens", "list"},
                                                  {"gc"},
                                                  {"step", "metric"}}) {
    std::vector<std::string> args = command;
    args.emplace_back("--help");
    const std::string out = RunSluice(args).out;
    CHECK_MESSAGE(out.find("print a DAG with its defaults applied") == std::string::npos,
                  command[0]);
    CHECK_MESSAGE(out.find("  sluice " + command[0]) != std::string::npos, command[0]);
  }
  auto help = RunSluice({"help", "runs", "list"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("Usage: sluice runs list [OPTIONS]") != std::string::npos);
  CHECK(help.out == RunSluice({"runs", "list", "--help"}).out);
  // Words that are values, not commands, pass: a negative number, an option's value.
  testing::TempDir dir;
  auto run = RunSluice({"run", "--workers", "1", testing::SourcePath("dags/hello.toml"),
                        "--state-dir", dir.file("state"), "-q", "-p", "greeting=-1"});
  CHECK_MESSAGE(run.exit_code == 0, run.err);
}

TEST_CASE("Cli.DagValidate.InvalidFilePrintsPositionQuoteAndHint" * testing::Timeout(60)) {
  const std::string file = testing::DataPath("dags/invalid/unknown_dependency_typo.toml");
  auto r = RunSluice({"dag", "validate", file});
  CHECK(r.exit_code == 1);
  CHECK(r.out.find(file + ":11:15: error: task \"train\" depends on unknown task \"prepar\"") !=
        std::string::npos);
  CHECK(r.out.find("  11 | depends_on = [\"prepar\"]\n") != std::string::npos);
  CHECK(r.out.find("     |               ^\n") != std::string::npos);
  CHECK(r.out.find("hint: did you mean \"prepare\"?") != std::string::npos);
  CHECK(r.out.find("1 file checked: 0 valid, 1 invalid; 1 error") != std::string::npos);
  CHECK(r.out.find("\033[") == std::string::npos);  // NO_COLOR is set by RunSluice
}

TEST_CASE("Cli.DagValidate.MixedArgumentsReportEveryFile" * testing::Timeout(60)) {
  auto r = RunSluice({"dag", "validate", "--format", "json", testing::SourcePath("dags/hello.toml"),
                      testing::DataPath("dags/invalid/many_errors_at_once.toml")});
  CHECK(r.exit_code == 1);
  nlohmann::json j = nlohmann::json::parse(r.out);
  CHECK(j["valid"] == false);
  REQUIRE(j["files"].size() == 2);
  CHECK(j["files"][0]["valid"] == true);
  CHECK(j["files"][0]["dag_id"] == "hello");
  CHECK(j["files"][1]["valid"] == false);
  CHECK(j["files"][1]["diagnostics"].size() == 5);
  CHECK(j["files"][1]["diagnostics"][0]["line"] == 3);
  CHECK(j["files"][1]["diagnostics"][0]["column"] == 9);
  CHECK(j["errors"] == 5);
}

TEST_CASE("Cli.DagValidate.DuplicateIdsAcrossArguments" * testing::Timeout(60)) {
  testing::TempDir dir;
  const std::string body = "[dag]\nid = \"dup\"\n[[task]]\nid = \"a\"\nplugin = \"core.noop\"\n";
  testing::WriteFile(dir.file("one.toml"), body);
  testing::WriteFile(dir.file("two.toml"), body);
  auto r = RunSluice({"dag", "validate", dir.file("one.toml"), dir.file("two.toml")});
  CHECK(r.exit_code == 1);
  CHECK(r.out.find(dir.file("two.toml") + ":2:6: error: DAG id \"dup\" is already used by " +
                   dir.file("one.toml")) != std::string::npos);
}

TEST_CASE("Cli.DagValidate.BadUsageExitsTwo" * testing::Timeout(60)) {
  auto missing = RunSluice({"dag", "validate", "/nonexistent.toml"});
  CHECK(missing.exit_code == 2);
  CHECK(missing.err.find("/nonexistent.toml") != std::string::npos);
  auto no_args = RunSluice({"dag", "validate"});
  CHECK(no_args.exit_code == 2);
  auto bad_flag = RunSluice({"dag", "validate", "--frmat", "json", "x"});
  CHECK(bad_flag.exit_code == 2);
  auto bad_format =
      RunSluice({"dag", "show", testing::SourcePath("dags/hello.toml"), "--format", "yaml"});
  CHECK(bad_format.exit_code == 2);
  CHECK(bad_format.err.find("yaml") != std::string::npos);
  auto unknown = RunSluice({"dga"});
  CHECK(unknown.exit_code == 2);
}

TEST_CASE("Cli.DagShow.TextJsonDot" * testing::Timeout(60)) {
  const std::string file = testing::SourcePath("dags/hello.toml");
  auto text = RunSluice({"dag", "show", file});
  CHECK(text.exit_code == 0);
  CHECK(text.out.find("DAG hello") != std::string::npos);
  CHECK(text.out.find("  0: greet, count\n  1: goodbye\n") != std::string::npos);
  CHECK(text.out.find("retries:      1, delay 1s") != std::string::npos);  // from [defaults]

  auto json = RunSluice({"dag", "show", file, "--format", "json"});
  CHECK(json.exit_code == 0);
  nlohmann::json j = nlohmann::json::parse(json.out);
  CHECK(j["id"] == "hello");
  CHECK(j["topological_order"] == nlohmann::json::array({"greet", "count", "goodbye"}));
  CHECK(j["tasks"][2]["timeout"] == "1m");

  auto dot = RunSluice({"dag", "show", file, "--format", "dot"});
  CHECK(dot.exit_code == 0);
  CHECK(dot.out.rfind("digraph \"hello\" {", 0) == 0);
  CHECK(dot.out.find("\"greet\" -> \"goodbye\";") != std::string::npos);
  CHECK(dot.out.find("\"count\" -> \"goodbye\";") != std::string::npos);
  CHECK(dot.out.find("{ rank=same; \"greet\"; \"count\"; }") != std::string::npos);
}

TEST_CASE("Cli.DagShow.InvalidFileShowsErrorsAndExitsOne" * testing::Timeout(60)) {
  auto r = RunSluice({"dag", "show", testing::DataPath("dags/invalid/cycle_two_tasks.toml")});
  CHECK(r.exit_code == 1);
  CHECK(r.out.empty());
  CHECK(r.err.find("dependency cycle: b -> a -> b") != std::string::npos);
}

TEST_CASE("Cli.Help.ListsCommandsAndVersion" * testing::Timeout(60)) {
  auto help = RunSluice({"--help"});
  CHECK(help.exit_code == 0);
  CHECK(help.out.find("dag") != std::string::npos);
  CHECK(help.out.find("Exit codes") != std::string::npos);
  auto dag_help = RunSluice({"dag", "--help"});
  CHECK(dag_help.exit_code == 0);
  CHECK(dag_help.out.find("validate") != std::string::npos);
  CHECK(dag_help.out.find("show") != std::string::npos);
  auto show_help = RunSluice({"dag", "show", "--help"});
  CHECK(show_help.exit_code == 0);
  CHECK(show_help.out.find("--format") != std::string::npos);
  auto version = RunSluice({"--version"});
  CHECK(version.exit_code == 0);
  CHECK(version.out.rfind("sluice ", 0) == 0);
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

TEST_CASE("Cli.CronNext.PrintsUtcTimesOnePerLine" * testing::Timeout(30)) {
  auto r = testing::RunSluice({"cron", "next", "30 2 * * *", "--tz", "Europe/Berlin", "--from",
                               "2026-03-28T00:00:00Z", "--count", "3"});
  CHECK(r.exit_code == 0);
  CHECK(r.out == "2026-03-28T01:30:00Z\n2026-03-29T01:00:00Z\n2026-03-30T00:30:00Z\n");
  auto offset = testing::RunSluice(
      {"cron", "next", "@daily", "--from", "2026-01-01T23:30:00-01:00", "-n", "1"});
  CHECK(offset.out == "2026-01-03T00:00:00Z\n");
  auto bad = testing::RunSluice({"cron", "next", "0 0 31 2 *"});
  CHECK(bad.exit_code == 2);
  CHECK(bad.err.find("never fires") != std::string::npos);
  auto bad_tz = testing::RunSluice({"cron", "next", "@daily", "--tz", "Europe/Berln"});
  CHECK(bad_tz.exit_code == 2);
  CHECK(bad_tz.err.find("did you mean \"Europe/Berlin\"?") != std::string::npos);
  auto bad_from = testing::RunSluice({"cron", "next", "@daily", "--from", "yesterday"});
  CHECK(bad_from.exit_code == 2);
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

TEST_CASE("Cli.DagNext.ShowsUpcomingIntervals" * testing::Timeout(30)) {
  testing::TempDir dir;
  testing::WriteFile(dir.file("future.toml"), R"([dag]
id = "future"
schedule = "0 6 * * *"
timezone = "America/New_York"
start_date = 2030-01-01
[[task]]
id = "a"
plugin = "core.noop"
)");
  auto r = testing::RunSluice({"dag", "next", dir.file("future.toml"), "--count", "2"});
  CHECK(r.exit_code == 0);
  CHECK(r.out.find("2030-01-01T11:00:00Z  2030-01-02T11:00:00Z  2030-01-02 06:00 EST") !=
        std::string::npos);
  CHECK(r.out.find("2030-01-02T11:00:00Z  2030-01-03T11:00:00Z") != std::string::npos);
  auto manual = testing::RunSluice({"dag", "next", testing::SourcePath("dags/hello.toml")});
  CHECK(manual.exit_code == 0);
  CHECK(manual.out.find("has no schedule") != std::string::npos);
}

}  // namespace
}  // namespace sluice
