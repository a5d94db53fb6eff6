// `--json` on every command that has it prints JSON (issue 17: `plugins show X --json`
// printed nothing and exited 0). The commands are found by walking `--help`, so a new
// command with --json fails this test until it is given a case here.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "test_util.h"

namespace sluice {
namespace {

using nlohmann::json;
using testing::RunSluice;

std::vector<std::string> Subcommands(const std::vector<std::string>& path) {
  std::vector<std::string> args = path;
  args.emplace_back("--help");
  std::istringstream help(RunSluice(args).out);
  std::vector<std::string> names;
  bool in = false;
  for (std::string line; std::getline(help, line);) {
    if (line == "Subcommands:") {
      in = true;
    } else if (in && line.empty()) {
      break;
    } else if (in && line.size() > 2 && line[0] == ' ' && line[2] != ' ') {
      names.push_back(line.substr(2, line.find(' ', 2) - 2));
    }
  }
  return names;
}

// Every command path whose --help offers --json ("runs list", "logs", ...).
std::set<std::string> CommandsWithJson() {
  std::set<std::string> found;
  std::vector<std::vector<std::string>> todo = {{}};
  while (!todo.empty()) {
    std::vector<std::string> path = todo.back();
    todo.pop_back();
    for (const std::string& sub : Subcommands(path)) {
      if (sub == "help" || sub == "step") continue;
      std::vector<std::string> longer = path;
      longer.push_back(sub);
      todo.push_back(longer);
      std::vector<std::string> args = longer;
      args.emplace_back("--help");
      if (RunSluice(args).out.find("--json") != std::string::npos) {
        std::string name;
        for (const std::string& w : longer) name += (name.empty() ? "" : " ") + w;
        found.insert(name);
      }
    }
  }
  return found;
}

TEST_CASE("Cli.Json.EveryCommandWithJsonPrintsJson" * testing::Timeout(240)) {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  testing::WriteFile(dir.file("dags/hello.toml"),
                     testing::ReadFile(testing::SourcePath("dags/hello.toml")));
  testing::WriteFile(dir.file("dags/slow.toml"),
                     "[dag]\nid = \"slow\"\n[[task]]\nid = \"z\"\nplugin = \"core.sleep\"\n"
                     "params = { seconds = 60 }\n");
  testing::WriteFile(dir.file("dags/daily.toml"),
                     "[dag]\nid = \"daily\"\nschedule = \"@daily\"\n"
                     "start_date = 2026-01-01T00:00:00Z\npaused = true\n[[task]]\nid = \"n\"\n"
                     "plugin = \"core.noop\"\n");
  // Two runs of hello, two of the ML pipeline (two model versions).
  for (int i = 0; i < 2; ++i) {
    REQUIRE(RunSluice({"run", dir.file("dags/hello.toml"), "--state-dir", state, "-q"}).exit_code ==
            0);
    REQUIRE(RunSluice({"run", testing::SourcePath("dags/breast_cancer.toml"), "--state-dir", state,
                       "-q", "-p", "seed=" + std::to_string(40 + i)})
                .exit_code == 0);
  }
  std::map<std::string, std::vector<std::string>> run_ids;  // dag -> run ids, newest first
  for (const json& r : json::parse(RunSluice({"runs", "list", "--json", "--state-dir", state}).out))
    run_ids[r["dag_id"]].push_back(r["run_id"]);
  const std::string hello = run_ids["hello"][0];
  const std::string hello_before = run_ids["hello"][1];
  const std::string ml = run_ids["breast_cancer"][0];
  const std::string artifact =
      json::parse(RunSluice({"artifacts", "list", "--json", "--state-dir", state}).out)[0]["id"];

  std::set<std::string> checked;
  auto check = [&](const std::string& name, std::vector<std::string> args, bool with_state = true) {
    CAPTURE(name);
    args.emplace_back("--json");
    if (with_state) args.insert(args.end(), {"--state-dir", state});
    const testing::CommandResult r = RunSluice(args);
    CHECK_MESSAGE(r.exit_code == 0, r.err);
    const json parsed = json::parse(r.out, nullptr, false);
    CHECK_MESSAGE(!parsed.is_discarded(), "not JSON: " << r.out.substr(0, 300));
    CHECK_MESSAGE(!r.out.empty(), "printed nothing");
    checked.insert(name);
    return parsed;
  };

  // Read from the state dir, no daemon.
  check("runs list", {"runs", "list"});
  check("runs show", {"runs", "show", hello, "--dag", "hello"});
  check("runs compare", {"runs", "compare", hello, hello_before});
  check("tasks list", {"tasks", "list", hello});
  check("logs", {"logs", hello, "greet"});
  check("events", {"events", hello});
  check("metrics", {"metrics", ml});
  check("plugins list", {"plugins", "list"}, false);  // plugins have no state dir
  check("plugins show", {"plugins", "show", "core.shell"}, false);
  check("artifacts list", {"artifacts", "list"});
  check("artifacts show", {"artifacts", "show", artifact});
  check("artifacts lineage", {"artifacts", "lineage", artifact});
  check("models list", {"models", "list"});
  check("models show", {"models", "show", "breast_cancer"});
  check("models versions", {"models", "versions", "breast_cancer"});
  check("models promote", {"models", "promote", "breast_cancer", "1", "--reason", "test"});
  check("models rollback", {"models", "rollback", "breast_cancer"});
  check("gc", {"gc", "--dry-run"});

  // Tables fit a terminal's width (issue 17: `models versions` printed 366 columns); the
  // JSON of the same command is whole.
  setenv("COLUMNS", "100", 1);
  const std::string table =
      RunSluice({"models", "versions", "breast_cancer", "--state-dir", state}).out;
  unsetenv("COLUMNS");
  std::istringstream lines(table);
  for (std::string line; std::getline(lines, line);) CHECK_MESSAGE(line.size() <= 100, line);
  CHECK(table.find("...") != std::string::npos);
  CHECK(table.find("(cut to the terminal's 100 columns") != std::string::npos);
  CHECK(RunSluice({"models", "versions", "breast_cancer", "--state-dir", state}).out.find("...") ==
        std::string::npos);

  // Through the daemon that owns the state dir.
  const int daemon = testing::SpawnSluice(
      {"serve", "--dags", dir.file("dags"), "--state-dir", state, "--listen", "127.0.0.1:0"},
      dir.file("serve.log"));
  testing::DaemonPort(state);
  REQUIRE(testing::WaitFor([&] {
    return RunSluice({"dags", "list", "--state-dir", state}).exit_code == 0;
  }));
  check("dags list", {"dags", "list"});
  check("dags pause", {"dags", "pause", "hello"});
  check("dags unpause", {"dags", "unpause", "hello"});
  check("tasks clear", {"tasks", "clear", hello, "--dag", "hello", "-t", "greet"});
  const json triggered = check("trigger", {"trigger", "slow"});
  const std::string slow_run = triggered.value("run_id", triggered["run"].value("run_id", ""));
  check("runs cancel", {"runs", "cancel", slow_run, "--dag", "slow"});
  const json backfill =
      check("backfill", {"backfill", "daily", "--from", "2026-01-01", "--to", "2026-01-02"});
  const std::string backfill_id = backfill.value("id", backfill["backfill"].value("id", ""));
  check("backfills list", {"backfills", "list"});
  check("backfills show", {"backfills", "show", backfill_id});
  check("backfills cancel", {"backfills", "cancel", backfill_id});
  check("tokens create", {"tokens", "create", "ci", "--role", "viewer"});
  check("tokens list", {"tokens", "list"});
  check("tokens revoke", {"tokens", "revoke", "ci"});
  kill(daemon, SIGTERM);
  int status = 0;
  waitpid(daemon, &status, 0);

  const std::set<std::string> all = CommandsWithJson();
  for (const std::string& name : all) {
    CHECK_MESSAGE(checked.count(name) == 1, "sluice " << name << " --json is not tested here");
  }
  CHECK(all.size() >= 30);
}

}  // namespace
}  // namespace sluice
