// The python step's fork server: one interpreter per worker process that has imported the
// Python SDK and forks a child for each try (sdk/python/sluice/_forkserver.py). A forked try
// skips the interpreter's start and the SDK's imports (about 10 ms of each try,
// bench/python_bench.py) and is otherwise the process a fresh `python -c` would be: its own
// pid, stdio, folder, environment and argv, ended as an interpreter ends.
//
// It starts only `python -c kRunCode SCRIPT FUNCTION`. Another program, or an environment
// other than the one the waiting interpreter was started with (another interpreter, another
// PYTHONPATH, a changed SDK file), restarts it; a server that cannot start is not tried again
// for that environment, and those tries are spawned as before.
#ifndef SLUICE_PLUGINS_PYTHON_FORK_SERVER_H_
#define SLUICE_PLUGINS_PYTHON_FORK_SERVER_H_

#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "common/child_step.h"

namespace sluice::python {

// What a try runs: `python -c kRunCode SCRIPT FUNCTION`.
inline constexpr const char* kRunCode = "import sys; from sluice._run import main; main(sys.argv)";

class ForkServer : public plugins::Launcher {
 public:
  // `sdk`: the folder holding the sluice package, whose files the server has imported.
  explicit ForkServer(std::filesystem::path sdk) : sdk_(std::move(sdk)) {}
  ~ForkServer() override;
  ForkServer(const ForkServer&) = delete;
  ForkServer& operator=(const ForkServer&) = delete;

  pid_t Start(const std::string& program, const std::vector<std::string>& argv,
              const std::vector<std::string>& env, const std::string& dir, int out,
              int err) override;
  int exit_fd() const override;
  bool Wait(int* status, bool block) override;

  // Whether the last try was forked by the server (false: spawned).
  bool forked() const { return forked_; }
  // True when the server died while the last forked try ran: how that try ended is unknown.
  bool lost() const { return lost_; }

 private:
  bool Launch(const std::string& program, const std::vector<std::string>& env);
  void Stop();
  // A reply line from the server within `timeout_ms` (-1: no limit), "" at its end.
  std::string ReadLine(int timeout_ms);
  std::string Key(const std::string& program, const std::vector<std::string>& env) const;

  std::filesystem::path sdk_;
  std::string key_;
  std::set<std::string> failed_;  // environments whose server did not start
  pid_t server_ = -1;
  int fd_ = -1;
  std::string pending_;
  pid_t child_ = -1;
  int child_fd_ = -1;  // a pidfd of the child, once the server is lost
  bool forked_ = false;
  bool lost_ = false;
  plugins::SpawnLauncher spawn_;
};

}  // namespace sluice::python

#endif  // SLUICE_PLUGINS_PYTHON_FORK_SERVER_H_
