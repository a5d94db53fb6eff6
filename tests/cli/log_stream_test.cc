// Embedded mode's logs (issue 17): a running try's output reaches its log file as it is
// written, `sluice logs -f` follows it from the state dir with no daemon, `sluice run --logs`
// prints it, and a follower of a run whose process was killed says so.
#include <doctest/doctest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_util.h"

namespace sluice {
namespace {

using nlohmann::json;
using testing::RunSluice;

// A task that writes a line, waits until `gate` exists, then writes another.
std::string GatedDag(const testing::TempDir& dir) {
  const std::string gate = dir.file("gate");
  testing::WriteFile(dir.file("gated.toml"),
                     "[dag]\nid = \"gated\"\n[[task]]\nid = \"talk\"\nplugin = \"core.shell\"\n"
                     "params = { command = \"echo first line; while [ ! -e " +
                         gate + " ]; do sleep 0.05; done; echo second line\" }\n");
  return dir.file("gated.toml");
}

// The id of the one run in `state`, once it is recorded.
std::string RunId(const std::string& state) {
  std::string id;
  testing::WaitFor([&] {
    auto r = RunSluice({"runs", "list", "--json", "--state-dir", state});
    if (r.exit_code != 0) return false;
    json runs = json::parse(r.out, nullptr, false);
    if (!runs.is_array() || runs.empty()) return false;
    id = runs[0]["run_id"];
    return true;
  });
  return id;
}

// What `path` holds so far ("" before the spawned process has created it).
std::string Text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

int Wait(int pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A gated run in the background, its first line in the log file while the try waits, and a
// `logs -f` of it that has printed that line.
struct FollowedRun {
  int run = -1;
  int follow = -1;
  std::string run_id;
};

FollowedRun StartAndFollow(const testing::TempDir& dir, const std::string& state,
                           const std::vector<std::string>& run_flags) {
  FollowedRun f;
  std::vector<std::string> args = {"run", GatedDag(dir), "--state-dir", state};
  args.insert(args.end(), run_flags.begin(), run_flags.end());
  f.run = testing::SpawnSluice(args, dir.file("run.out"));
  f.run_id = RunId(state);
  REQUIRE_FALSE(f.run_id.empty());
  // The log file has the first line while the try still waits for the gate.
  CHECK(testing::WaitFor([&] {
    return RunSluice({"logs", f.run_id, "talk", "--state-dir", state}).out.find("first line") !=
           std::string::npos;
  }));
  // logs -f, with no daemon: prints what there is, then what comes.
  f.follow = testing::SpawnSluice({"logs", "-f", f.run_id, "talk", "--state-dir", state},
                                  dir.file("follow.out"));
  CHECK(testing::WaitFor(
      [&] { return Text(dir.file("follow.out")).find("first line") != std::string::npos; }));
  return f;
}

TEST_CASE("Cli.Logs.StreamWhileTheTryRunsAndFollowWithoutADaemon" * testing::Timeout(90)) {
  testing::TempDir dir;
  const auto [run, follow, run_id] = StartAndFollow(dir, dir.file("state"), {"--logs"});
  CHECK(Text(dir.file("follow.out")).find("second line") == std::string::npos);
  CHECK(kill(follow, 0) == 0);  // still following
  testing::WriteFile(dir.file("gate"), "");
  CHECK(Wait(follow) == 0);
  const std::string followed = Text(dir.file("follow.out"));
  CHECK(followed.find("INFO  first line") != std::string::npos);
  CHECK(followed.find("INFO  second line") != std::string::npos);
  CHECK(Wait(run) == 0);
  // --logs printed each line as the task wrote it, prefixed with the task.
  const std::string printed = Text(dir.file("run.out"));
  CHECK_MESSAGE(printed.find("talk | first line") != std::string::npos, printed);
  CHECK(printed.find("talk | second line") != std::string::npos);
  CHECK(printed.find("talk | first line") < printed.find("talk  success"));
}

// On a terminal (a real pty, from script(1)), `sluice run`'s status line shows the last line
// a running task wrote, as docker and kubectl show them.
TEST_CASE("Cli.Logs.TheStatusLineOnATerminalShowsARunningTasksLastLine" * testing::Timeout(90)) {
  testing::TempDir dir;
  const std::string dag = GatedDag(dir);
  const std::string typescript = dir.file("typescript");
  const std::string command =
      std::string(SLUICE_BINARY) + " run " + dag + " --state-dir " + dir.file("state");
  std::vector<std::string> words = {"script", "-q", "-f", "-e", "-c", command, typescript};
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  std::string term = "TERM=xterm";
  std::vector<char*> envp = {term.data()};
  std::string path = "PATH=/usr/bin:/bin";
  envp.push_back(path.data());
  envp.push_back(nullptr);
  pid_t pid = -1;
  REQUIRE(posix_spawn(&pid, "/usr/bin/script", nullptr, nullptr, argv.data(), envp.data()) == 0);
  CHECK(testing::WaitFor(
      [&] { return Text(typescript).find("talk: first line") != std::string::npos; }));
  testing::WriteFile(dir.file("gate"), "");
  CHECK(Wait(pid) == 0);
  CHECK(Text(typescript).find("talk  success") != std::string::npos);
}

TEST_CASE("Cli.Logs.FollowingARunWhoseProcessWasKilledSaysSo" * testing::Timeout(90)) {
  testing::TempDir dir;
  const auto [run, follow, run_id] = StartAndFollow(dir, dir.file("state"), {});
  kill(run, SIGKILL);
  Wait(run);
  CHECK(Wait(follow) == 1);
  const std::string said = Text(dir.file("follow.out"));
  CHECK_MESSAGE(
      said.find("its run was interrupted (`sluice run --resume " + run_id) != std::string::npos,
      said);
  testing::WriteFile(dir.file("gate"), "");  // lets an orphaned command end
}

}  // namespace
}  // namespace sluice
