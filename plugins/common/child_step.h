// A step that runs as a child process (core.shell, python): its stdout and stderr stream
// into the task log line by line as they are written, and it reaches the step's Context
// through the step protocol (docs/step-protocol.md) on a Unix socket named by
// $SLUICE_STEP_SOCKET: log, metric, output, tag, skip, call (the model registry) and info.
// Cancellation sends SIGTERM, then SIGKILL after a grace period.
#ifndef SLUICE_PLUGINS_COMMON_CHILD_STEP_H_
#define SLUICE_PLUGINS_COMMON_CHILD_STEP_H_

#include <sluice/step.h>

#include <chrono>
#include <string>
#include <vector>

namespace sluice::plugins {

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
