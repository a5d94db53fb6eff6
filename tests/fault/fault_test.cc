// The fault suite (issue 15): the real `sluice` binary, real workers and a real RocksDB,
// put through kill -9, full and read-only disks, damaged files and clock jumps, each
// campaign ending on the invariants of fault_util.h. Every campaign prints its seed first;
// SLUICE_FAULT_SEED=N replays it and SLUICE_FAULT_ROUNDS=N sets how many faults it injects.
//
// The disk campaigns mount tmpfs file systems and so need root (CI runs as root).
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "fault_util.h"
#include "sluice/dag.h"
#include "test_util.h"

namespace sluice {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::minutes;

void Sleep(int ms) { std::this_thread::sleep_for(milliseconds(ms)); }

// A port per test process, below Linux's ephemeral range (32768-60999): a port in that range
// may be taken by any outgoing connection on the machine, and a daemon that cannot bind it
// fails the test for nothing.
unsigned short FreePort() {
  static int next = 0;
  return static_cast<unsigned short>(20000 + (getpid() % 5000) * 2 + (next++ % 2));
}

// Waits up to `seconds` for the API on `port` to answer /health.
bool Healthy(unsigned short port, int seconds) {
  return testing::WaitFor(
      [&] { return testing::HttpCall(port, "GET", "/api/v1/health").status == 200; }, seconds);
}

// Whether `pid` (our child) has exited; its wait status in `status`.
bool Exited(int pid, int* status) { return waitpid(pid, status, WNOHANG) == pid; }

std::vector<std::string> ServeArgs(const std::string& dags, const std::string& state,
                                   unsigned short port) {
  return {"serve",
          "--dags",
          dags,
          "--state-dir",
          state,
          "--listen",
          "127.0.0.1:" + std::to_string(port),
          "--allow-unauthenticated",
          "--workers",
          "2"};
}

bool AllEnded(const json& runs) {
  for (const json& run : runs) {
    if (run["state"] == "queued" || run["state"] == "running") return false;
  }
  return true;
}

size_t CountDag(const json& runs, const std::string& dag) {
  size_t n = 0;
  for (const json& run : runs) n += run["dag_id"] == dag;
  return n;
}

// The scheduled runs of `dag` are exactly one per slot of a one-minute schedule, for the
// `slots` slots from `start`: none lost, none doubled, none beyond.
void CheckOneRunPerSlot(const json& runs, const std::string& dag, std::chrono::sys_seconds start,
                        int slots) {
  std::set<std::string> ids;
  for (const json& run : runs) {
    if (run["dag_id"] != dag || run["run_type"] != "scheduled") continue;
    CHECK_MESSAGE(ids.insert(run["run_id"].get<std::string>()).second, "doubled " << run["run_id"]);
  }
  for (int k = 0; k < slots; ++k) {
    CHECK_MESSAGE(ids.count("scheduled__" + FormatTimeUtc(start + minutes(k))) == 1,
                  "lost slot " << FormatTimeUtc(start + minutes(k)));
  }
  CHECK(ids.size() == static_cast<size_t>(slots));
}

// A tmpfs mounted for the test's life.
class Tmpfs {
 public:
  Tmpfs(const std::string& path, const std::string& size) : path_(path) {
    std::filesystem::create_directories(path);
    const std::string options = "size=" + size;
    mounted_ = mount("tmpfs", path.c_str(), "tmpfs", 0, options.c_str()) == 0;
    REQUIRE_MESSAGE(mounted_, "cannot mount a tmpfs on " << path << " (the disk campaigns need "
                                                         << "root): " << std::strerror(errno));
  }
  ~Tmpfs() {
    if (mounted_) umount2(path_.c_str(), MNT_DETACH);
  }
  // Remounts with other options ("size=64m", "ro", "rw").
  void Remount(const std::string& options) {
    unsigned long flags = MS_REMOUNT;
    std::string data;
    if (options == "ro") {
      flags |= MS_RDONLY;
    } else if (options != "rw") {
      data = options;
    }
    REQUIRE_MESSAGE(mount("tmpfs", path_.c_str(), "tmpfs", flags, data.c_str()) == 0,
                    "remount " << options << ": " << std::strerror(errno));
  }

 private:
  std::string path_;
  bool mounted_ = false;
};

// -------------------------------------------------------------------------------------------
// kill -9 of the daemon and of its workers while scheduled and API-triggered runs are in
// flight. Every round starts a daemon, triggers runs through the API, kills workers now and
// then, and ends with kill -9 of the daemon; a last daemon finishes the work.
TEST_CASE("Fault.Daemon.Kill9DuringScheduledAndApiRuns" * testing::Timeout(900)) {
  fault::Dice dice("Fault.Daemon.Kill9DuringScheduledAndApiRuns");
  testing::TempDir dir;
  const std::string state = dir.file("state");
  const std::string exec = dir.file("executions.log");
  const auto now = std::chrono::floor<minutes>(std::chrono::system_clock::now());
  const std::chrono::sys_seconds start(now - minutes(12));
  auto task = [&](const std::string& id, const std::string& after) {
    std::string t = "[[task]]\nid = \"" + id + "\"\nplugin = \"core.shell\"\n";
    if (!after.empty()) t += "depends_on = [\"" + after + "\"]\n";
    json command = fault::RecordingCommand(exec, dice.Between(50, 300));
    return t + "params = { command = " + command.dump() + " }\n";
  };
  const std::string defaults = "[defaults]\nretries = 100\nretry_delay = \"0s\"\n";
  testing::WriteFile(
      dir.file("dags/sched.toml"),
      "[dag]\nid = \"sched\"\nschedule = \"* * * * *\"\nstart_date = " + FormatTimeUtc(start) +
          "\nend_date = " + FormatTimeUtc(start + minutes(11)) +
          "\ncatchup = \"all\"\nmax_active_runs = 3\n" + defaults + task("a", "") + task("b", "a") +
          task("c", "a"));
  testing::WriteFile(dir.file("dags/api.toml"),
                     "[dag]\nid = \"api\"\n" + defaults + task("x", "") + task("y", "x"));
  const unsigned short port = FreePort();
  const int rounds = fault::Rounds(8);
  std::set<std::string> created;  // every run the API answered 201 for
  int daemon_kills = 0;
  int worker_kills = 0;
  for (int round = 0; round < rounds; ++round) {
    const int pid = testing::SpawnSluice(ServeArgs(dir.file("dags"), state, port),
                                         dir.file("serve" + std::to_string(round) + ".log"));
    REQUIRE_MESSAGE(Healthy(port, 30),
                    testing::ReadFile(dir.file("serve" + std::to_string(round) + ".log")));
    const auto until = std::chrono::steady_clock::now() + milliseconds(dice.Between(200, 2500));
    while (std::chrono::steady_clock::now() < until) {
      testing::HttpReply reply = testing::HttpCall(port, "POST", "/api/v1/dags/api/runs", "", "{}");
      if (reply.status == 201) {
        created.insert("api/" + json::parse(reply.body)["run"]["run_id"].get<std::string>());
      }
      if (dice.Chance(0.2)) {
        const std::vector<int> workers = testing::WorkerPids(pid);
        if (!workers.empty()) {
          kill(workers[static_cast<size_t>(dice.Between(0, static_cast<int>(workers.size()) - 1))],
               SIGKILL);
          ++worker_kills;
        }
      }
      Sleep(dice.Between(20, 200));
    }
    fault::Kill9(pid);
    ++daemon_kills;
  }

  // A last daemon finishes everything owed by now.
  const int pid =
      testing::SpawnSluice(ServeArgs(dir.file("dags"), state, port), dir.file("serve-final.log"));
  REQUIRE(Healthy(port, 30));
  // Twelve slots, all owed from the start (end_date closes the schedule).
  const bool finished = testing::WaitFor(
      [&] {
        const std::optional<json> runs = fault::RunsNow(state);
        return runs && AllEnded(*runs) && CountDag(*runs, "sched") >= 12;
      },
      300);
  const int status = fault::Stop(pid);
  REQUIRE_MESSAGE(finished, testing::ReadFile(dir.file("serve-final.log")));
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  const auto exec_size = std::filesystem::file_size(exec);
  Sleep(1000);
  CHECK_MESSAGE(std::filesystem::file_size(exec) == exec_size,
                "a task ran after the daemon stopped");

  const json runs = fault::AllRuns(state);
  CheckOneRunPerSlot(runs, "sched", start, 12);
  const fault::Invariants seen = fault::CheckInvariants(state, exec, created);
  MESSAGE(daemon_kills << " daemon kills, " << worker_kills << " worker kills; " << seen.runs
                       << " runs (" << created.size() << " from the API), " << seen.tries
                       << " tries, " << seen.executions << " executions checked");
  std::fprintf(stderr,
               "[fault] %d daemon kills, %d worker kills: %zu runs, %zu tries, %zu "
               "executions, invariants held\n",
               daemon_kills, worker_kills, seen.runs, seen.tries, seen.executions);
}

// -------------------------------------------------------------------------------------------
// `sluice run` killed at random points and resumed until the run ends.
TEST_CASE("Fault.Run.Kill9ThenResume" * testing::Timeout(600)) {
  fault::Dice dice("Fault.Run.Kill9ThenResume");
  testing::TempDir dir;
  const std::string state = dir.file("state");
  const std::string exec = dir.file("executions.log");
  std::string dag = "[dag]\nid = \"chain\"\n[defaults]\nretries = 100\nretry_delay = \"0s\"\n";
  const char* ids[] = {"load", "clean", "split", "train_a", "train_b", "evaluate", "report"};
  const char* deps[] = {"", "load", "clean", "split", "split", "train_a\", \"train_b", "evaluate"};
  for (int i = 0; i < 7; ++i) {
    dag += std::string("[[task]]\nid = \"") + ids[i] + "\"\nplugin = \"core.shell\"\n";
    if (*deps[i] != '\0') dag += std::string("depends_on = [\"") + deps[i] + "\"]\n";
    dag += "params = { command = " +
           json(fault::RecordingCommand(exec, dice.Between(50, 400))).dump() + " }\n";
  }
  testing::WriteFile(dir.file("chain.toml"), dag);

  const int rounds = fault::Rounds(10);
  std::string run_id;
  int kills = 0;
  bool done = false;
  for (int round = 0; round < rounds && !done; ++round) {
    std::vector<std::string> args = {"run", "--state-dir", state, "--workers", "2"};
    if (run_id.empty()) {
      args.push_back(dir.file("chain.toml"));
    } else {
      args.push_back("--resume");
      args.push_back(run_id);
    }
    const std::string out = dir.file("run" + std::to_string(round) + ".log");
    const int pid = testing::SpawnSluice(args, out);
    Sleep(dice.Between(100, 800));
    int status = 0;
    if (Exited(pid, &status)) {
      REQUIRE_MESSAGE(WIFEXITED(status), testing::ReadFile(out));
      REQUIRE_MESSAGE(WEXITSTATUS(status) == 0, testing::ReadFile(out));
      done = true;
    } else {
      fault::Kill9(pid);
      ++kills;
    }
    if (run_id.empty()) {
      // A kill before the run was recorded leaves none, or no state dir at all.
      const json runs = fault::RunsNow(state).value_or(json::array());
      REQUIRE(runs.size() <= 1);
      if (!runs.empty()) run_id = runs[0]["run_id"];
    }
  }
  if (!done) {
    // Every kill may have come before the run was recorded (a slow start): then run it whole.
    auto last = run_id.empty()
                    ? testing::RunSluice({"run", "--state-dir", state, dir.file("chain.toml")})
                    : testing::RunSluice({"run", "--state-dir", state, "--resume", run_id});
    REQUIRE_MESSAGE(last.exit_code == 0, last.err);
    if (run_id.empty()) run_id = fault::AllRuns(state)[0]["run_id"];
  }
  const fault::Invariants seen = fault::CheckInvariants(state, exec, {"chain/" + run_id});
  CHECK(seen.runs == 1);
  std::fprintf(stderr,
               "[fault] sluice run: %d kills, then resumed to success: %zu tries, %zu "
               "executions, invariants held\n",
               kills, seen.tries, seen.executions);
}

// -------------------------------------------------------------------------------------------
// A disk that fills while `sluice run` and `sluice serve` write task logs and state: each
// stops with an error that names the state dir (no abort), and finishes once there is room.
std::string FloodDag(const std::string& id) {
  std::string dag = "[dag]\nid = \"" + id + "\"\n[defaults]\nretries = 3\nretry_delay = \"0s\"\n";
  for (int i = 0; i < 3; ++i) {
    dag += "[[task]]\nid = \"flood" + std::to_string(i) +
           "\"\nplugin = \"core.shell\"\nparams = { command = \"yes "
           "0123456789012345678901234567890123456789 | head -n 50000\" }\n";
  }
  return dag;
}

TEST_CASE("Fault.DiskFull.RunAndServeStopCleanlyAndFinishOnceThereIsRoom" * testing::Timeout(300)) {
  fault::Dice dice("Fault.DiskFull.RunAndServeStopCleanlyAndFinishOnceThereIsRoom");
  testing::TempDir dir;
  testing::WriteFile(dir.file("flood.toml"), FloodDag("flood"));
  {
    Tmpfs disk(dir.file("small-run"), "4m");
    const std::string state = dir.file("small-run/state");
    auto full = testing::RunSluice({"run", dir.file("flood.toml"), "--state-dir", state});
    INFO(full.err);
    REQUIRE(full.exit_code == 1);  // an exit, not SIGABRT (-1)
    CHECK(full.err.find(state) != std::string::npos);
    CHECK(full.err.find("the disk is full") != std::string::npos);
    CHECK(full.err.find("--resume") != std::string::npos);
    disk.Remount("size=64m");
    const json runs = fault::AllRuns(state);
    REQUIRE(runs.size() == 1);
    auto resumed = testing::RunSluice({"run", "--resume", runs[0]["run_id"], "--state-dir", state});
    CHECK_MESSAGE(resumed.exit_code == 0, resumed.err);
    CHECK(fault::AllRuns(state)[0]["state"] == "success");
  }
  {
    Tmpfs disk(dir.file("small-serve"), "4m");
    const std::string state = dir.file("small-serve/state");
    testing::WriteFile(dir.file("dags/flood.toml"), FloodDag("flood"));
    const unsigned short port = FreePort();
    int pid =
        testing::SpawnSluice(ServeArgs(dir.file("dags"), state, port), dir.file("serve1.log"));
    REQUIRE(Healthy(port, 30));
    const int triggers = dice.Between(1, 3);
    for (int i = 0; i < triggers; ++i) {
      CHECK(testing::HttpCall(port, "POST", "/api/v1/dags/flood/runs", "", "{}").status == 201);
    }
    int status = 0;
    const bool stopped = testing::WaitFor([&] { return Exited(pid, &status); }, 120);
    if (!stopped) fault::Kill9(pid);
    const std::string log = testing::ReadFile(dir.file("serve1.log"));
    INFO(log);
    REQUIRE(stopped);
    REQUIRE(WIFEXITED(status));  // not SIGABRT
    CHECK(WEXITSTATUS(status) == 1);
    CHECK(log.find("stopped: cannot write to the state store in " + state) != std::string::npos);
    disk.Remount("size=64m");
    pid = testing::SpawnSluice(ServeArgs(dir.file("dags"), state, port), dir.file("serve2.log"));
    REQUIRE(Healthy(port, 30));
    const bool finished = testing::WaitFor(
        [&] {
          const std::optional<json> runs = fault::RunsNow(state);
          return runs && runs->size() == static_cast<size_t>(triggers) && AllEnded(*runs);
        },
        120);
    CHECK(WEXITSTATUS(fault::Stop(pid)) == 0);
    REQUIRE_MESSAGE(finished, testing::ReadFile(dir.file("serve2.log")));
    for (const json& run : fault::AllRuns(state)) CHECK(run["state"] == "success");
  }
}

// -------------------------------------------------------------------------------------------
// A state dir on a file system that went read-only: writers refuse with a clear error,
// readers still read, and nothing is lost once it is writable again.
TEST_CASE("Fault.ReadOnlyStateDir.WritersRefuseReadersRead" * testing::Timeout(180)) {
  testing::TempDir dir;
  Tmpfs disk(dir.file("disk"), "64m");
  const std::string state = dir.file("disk/state");
  const std::string hello = testing::SourcePath("dags/hello.toml");
  REQUIRE(testing::RunSluice({"run", hello, "--state-dir", state}).exit_code == 0);
  disk.Remount("ro");

  auto run = testing::RunSluice({"run", hello, "--state-dir", state});
  INFO(run.err);
  CHECK(run.exit_code > 0);  // an error exit, not a signal
  CHECK(run.err.find(state) != std::string::npos);
  CHECK(run.err.find("Read-only file system") != std::string::npos);

  auto list = testing::RunSluice({"runs", "list", "--json", "--state-dir", state});
  CHECK_MESSAGE(list.exit_code == 0, list.err);
  if (list.exit_code == 0) CHECK(json::parse(list.out).size() == 1);

  const unsigned short port = FreePort();
  const int pid = testing::SpawnSluice(ServeArgs(testing::SourcePath("dags"), state, port),
                                       dir.file("serve.log"));
  int status = 0;
  const bool exited = testing::WaitFor([&] { return Exited(pid, &status); }, 30);
  if (!exited) fault::Kill9(pid);
  const std::string log = testing::ReadFile(dir.file("serve.log"));
  INFO(log);
  CHECK(exited);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) != 0);
  CHECK(log.find(state) != std::string::npos);

  disk.Remount("rw");
  CHECK(testing::RunSluice({"run", hello, "--state-dir", state}).exit_code == 0);
  CHECK(fault::AllRuns(state).size() == 2);
}

// -------------------------------------------------------------------------------------------
// WAL, SST and MANIFEST damage, each on a fresh copy of a real state dir. No command may
// crash; an open that lost history says so; damage that fails an open says "damaged", and
// `sluice state repair` then gives back a store that opens.
std::filesystem::path NewestIn(const std::filesystem::path& db, const std::string& part) {
  std::filesystem::path newest;
  for (const auto& e : std::filesystem::directory_iterator(db)) {
    const std::string name = e.path().filename().string();
    if (name.find(part) == std::string::npos || e.file_size() == 0) continue;
    if (newest.empty() || name > newest.filename().string()) newest = e.path();
  }
  return newest;
}

TEST_CASE("Fault.Damage.WalSstAndManifestOnCopies" * testing::Timeout(600)) {
  fault::Dice dice("Fault.Damage.WalSstAndManifestOnCopies");
  testing::TempDir dir;
  const std::string base = dir.file("base");
  const std::string hello = testing::SourcePath("dags/hello.toml");
  for (int i = 0; i < 3; ++i)
    REQUIRE(testing::RunSluice({"run", hello, "--state-dir", base}).exit_code == 0);
  const json base_runs = fault::AllRuns(base);

  const char* kinds[] = {"wal-cut", "wal-garble", "sst-garble", "manifest-cut", "manifest-garble"};
  const int rounds = fault::Rounds(15);
  int warned = 0, refused = 0, repaired = 0, clean = 0;
  for (int round = 0; round < rounds; ++round) {
    const std::string kind = kinds[round % 5];
    const std::string copy = dir.file("copy" + std::to_string(round));
    std::filesystem::copy(base, copy, std::filesystem::copy_options::recursive);
    const std::filesystem::path db = std::filesystem::path(copy) / "db";
    const std::filesystem::path file = NewestIn(db, kind.rfind("wal", 0) == 0   ? ".log"
                                                    : kind.rfind("sst", 0) == 0 ? ".sst"
                                                                                : "MANIFEST-");
    REQUIRE_FALSE(file.empty());
    const auto size = static_cast<int>(std::filesystem::file_size(file));
    const int at = dice.Between(0, size - 1);
    if (kind.find("cut") != std::string::npos) {
      std::filesystem::resize_file(file, static_cast<uintmax_t>(at));
    } else {
      std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(at);
      const int n = dice.Between(1, 16);
      for (int i = 0; i < n && at + i < size; ++i) f.put(static_cast<char>(dice.Between(0, 255)));
    }
    INFO("round " << round << ": " << kind << " of " << file.filename().string() << " at byte "
                  << at << " of " << size);

    auto list = testing::RunSluice({"runs", "list", "--json", "--state-dir", copy});
    INFO(list.err);
    REQUIRE(list.exit_code != -1);  // no crash
    bool damaged = false;
    if (list.exit_code == 0) {
      const json runs = json::parse(list.out);
      const bool same = runs == base_runs;
      if (list.err.find("sluice: warning:") != std::string::npos) {
        ++warned;
        damaged = true;
      } else {
        CHECK_MESSAGE(same, "history changed and nothing said so");
        ++clean;
      }
      for (const json& run : runs) {
        auto events = testing::RunSluice({"events", run["run_id"], "--state-dir", copy});
        CHECK(events.exit_code != -1);
        damaged = damaged || events.exit_code != 0;
      }
    } else {
      ++refused;
      damaged = true;
      CHECK((list.err.find("is damaged") != std::string::npos ||
             list.err.find("cannot read the state store") != std::string::npos));
    }
    auto writer = testing::RunSluice({"run", hello, "--state-dir", copy});
    CHECK_MESSAGE(writer.exit_code != -1, writer.err);
    if (writer.exit_code != 0) damaged = true;
    if (damaged) {
      auto repair = testing::RunSluice({"state", "repair", "--state-dir", copy});
      CHECK_MESSAGE(repair.exit_code == 0, repair.err);
      auto after = testing::RunSluice({"runs", "list", "--state-dir", copy});
      CHECK_MESSAGE(after.exit_code == 0, after.err);
      ++repaired;
    }
  }
  std::fprintf(stderr,
               "[fault] %d damaged copies: %d read clean, %d warned, %d refused; %d "
               "repaired, and each opened after repair\n",
               rounds, clean, warned, refused, repaired);
}

// -------------------------------------------------------------------------------------------
// The wall clock jumps forward and back under a running daemon (libfaketime; the monotonic
// clock is left alone, as with an NTP step): owed slots are run once each, a jump back
// creates nothing and doubles nothing.
TEST_CASE("Fault.Daemon.ClockJumpsForwardAndBack" * testing::Timeout(300)) {
  const std::string faketime = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";
  REQUIRE_MESSAGE(std::filesystem::exists(faketime), "install faketime (scripts/install-deps)");
  testing::TempDir dir;
  const std::string state = dir.file("state");
  const std::string exec = dir.file("executions.log");
  const std::string offset = dir.file("offset");
  const auto now = std::chrono::floor<minutes>(std::chrono::system_clock::now());
  const std::chrono::sys_seconds start(now - minutes(3));
  // Fifteen slots: start .. start+14m, the last ending 12 minutes from now.
  testing::WriteFile(
      dir.file("dags/tick.toml"),
      "[dag]\nid = \"tick\"\nschedule = \"* * * * *\"\nstart_date = " + FormatTimeUtc(start) +
          "\nend_date = " + FormatTimeUtc(start + minutes(14)) +
          "\ncatchup = \"all\"\n[[task]]\nid = \"t\"\n"
          "plugin = \"core.shell\"\nparams = { command = " +
          json(fault::RecordingCommand(exec, 10)).dump() + " }\n");
  testing::WriteFile(offset, "+0\n");
  setenv("LD_PRELOAD", faketime.c_str(), 1);
  setenv("FAKETIME_TIMESTAMP_FILE", offset.c_str(), 1);
  setenv("FAKETIME_NO_CACHE", "1", 1);
  setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
  const unsigned short port = FreePort();
  const int pid =
      testing::SpawnSluice(ServeArgs(dir.file("dags"), state, port), dir.file("serve.log"));
  unsetenv("LD_PRELOAD");
  REQUIRE_MESSAGE(Healthy(port, 30), testing::ReadFile(dir.file("serve.log")));
  auto settle = [&](size_t runs) {
    return testing::WaitFor(
        [&] {
          const std::optional<json> all = fault::RunsNow(state);
          return all && all->size() >= runs && AllEnded(*all);
        },
        60);
  };
  CHECK(settle(3));                      // start .. now-1m are owed at once
  testing::WriteFile(offset, "+10m\n");  // ten more slots end at once
  CHECK(settle(13));
  const size_t ahead = fault::AllRuns(state).size();
  testing::WriteFile(offset, "-30m\n");  // back before every slot run so far
  Sleep(4000);
  CHECK(fault::AllRuns(state).size() == ahead);
  CHECK(testing::HttpCall(port, "GET", "/api/v1/health").status == 200);
  testing::WriteFile(offset, "+12m\n");  // forward again: every slot has ended
  CHECK(settle(15));
  Sleep(2000);
  const int status = fault::Stop(pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CheckOneRunPerSlot(fault::AllRuns(state), "tick", start, 15);
  fault::CheckInvariants(state, exec, {});
}

}  // namespace
}  // namespace sluice
