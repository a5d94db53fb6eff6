// A step that runs as a child process (core.shell, python): its stdout and stderr stream
// into the task log line by line as they are written, and it reaches the step's Context
// through the step protocol (docs/step-protocol.md) on a Unix socket named by
// $SLUICE_STEP_SOCKET: log, metric, output, tag, skip, call (the model registry) and info.
// Cancellation sends SIGTERM, then SIGKILL after a grace period.
#ifndef SLUICE_PLUGINS_COMMON_CHILD_STEP_H_
#define SLUICE_PLUGINS_COMMON_CHILD_STEP_H_

#include <sluice/step.h>
#include <sys/types.h>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace sluice::plugins {

// How RunChild starts its child and learns how it ended. The default spawns the program
// (SpawnLauncher); the python plugin forks a waiting interpreter instead (fork_server.h).
class Launcher {
 public:
  virtual ~Launcher() = default;
  // Starts `program` with `argv` and the whole environment `env` in `dir`, with stdout and
  // stderr on `out` and `err`. Returns its pid, or an errno value as -errno when it cannot.
  virtual pid_t Start(const std::string& program, const std::vector<std::string>& argv,
                      const std::vector<std::string>& env, const std::string& dir, int out,
                      int err) = 0;
  // An fd that polls readable once the child may have ended, or -1 (Wait is then polled).
  virtual int exit_fd() const = 0;
  // True with the wait status once the child has ended; with `block`, waits for that.
  // Throws StepError when how it ended cannot be known.
  virtual bool Wait(int* status, bool block) = 0;
};

// Starts `program` with `argv` and the whole environment `env` in `dir`, with default signal
// handling, no blocked signals, and only the fds in `fds` ({from, to}: `from` becomes `to`)
// besides stdin. Returns the pid, or -errno.
pid_t Spawn(const std::string& program, const std::vector<std::string>& argv,
            const std::vector<std::string>& env, const std::string& dir,
            const std::vector<std::pair<int, int>>& fds);

// Spawn with the step's stdout and stderr.
class SpawnLauncher : public Launcher {
 public:
  SpawnLauncher() = default;
  ~SpawnLauncher() override;
  SpawnLauncher(const SpawnLauncher&) = delete;
  SpawnLauncher& operator=(const SpawnLauncher&) = delete;
  pid_t Start(const std::string& program, const std::vector<std::string>& argv,
              const std::vector<std::string>& env, const std::string& dir, int out,
              int err) override;
  int exit_fd() const override { return exit_fd_; }
  bool Wait(int* status, bool block) override;

 private:
  pid_t pid_ = -1;
  int exit_fd_ = -1;
};

struct ChildCommand {
  // Run with /bin/sh -c when `shell` is set, else argv[0] is searched on PATH.
  bool shell = false;
  std::string command;            // with `shell`
  std::vector<std::string> argv;  // without it
  // Extra environment entries "NAME=VALUE"; they override the worker's.
  std::vector<std::string> env;
  std::string working_dir;
  // After a cancel's SIGTERM, how long the child has to exit before SIGKILL.
  std::chrono::milliseconds grace{5000};
  // Who starts it; nullptr: a SpawnLauncher. Not owned.
  Launcher* launcher = nullptr;
};

struct ChildResult {
  int exit_code = 0;     // valid when signal == 0
  int signal = 0;        // the signal that killed it, or 0
  bool skipped = false;  // the child asked to skip (op "skip")
  std::string skip_reason;
  std::string last_error_line;  // the last line it wrote to stderr
};

// Where `program` is on `path` (a PATH value), "" when nowhere; a name with a slash is
// returned as it is.
std::string FindOnPath(const std::string& program, const std::string& path);

// Runs the child to its end. Throws StepError when it cannot start or was cancelled.
ChildResult RunChild(sdk::Context& ctx, const ChildCommand& command);

}  // namespace sluice::plugins

#endif  // SLUICE_PLUGINS_COMMON_CHILD_STEP_H_
