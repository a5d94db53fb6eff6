// Executors run task tries somewhere (local worker processes; later a Slurm cluster) and
// report back. The run logic (runner.h) sees only this interface, so a new executor does not
// reshape it.
//
// Threading: an executor and its listener live on one io_context thread; every call and
// every callback happens on it.
#ifndef SLUICE_EXECUTOR_H_
#define SLUICE_EXECUTOR_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/dag.h"
#include "sluice/duration.h"
#include "sluice/plugin_host.h"

namespace sluice {

// One try to run.
struct TaskLaunch {
  std::string key;          // the try's idempotency key, dag/run/task/try; unique handle
  std::string plugin_file;  // the plugin library
  std::string step;         // the step name, e.g. "core.shell"
  nlohmann::json request;   // see sluice_plugin.run in plugin_abi.h
  std::optional<Duration> timeout;
  // After the timeout the step is cancelled, and killed if still running this much later;
  // none: the executor's own grace (LocalWorkerPool::Options::cancel_grace).
  std::optional<Duration> timeout_grace;
  ResourceLimits limits;  // applied to the worker process while the try runs
  // The artifact store (artifacts.h) outputs go into; empty: outputs stay where they are.
  std::string artifact_dir;
};

struct TaskOutcome {
  enum class Kind {
    kSuccess,
    kFailed,    // the step reported failure (message from the step)
    kSkipped,   // the step skipped itself (message: why)
    kTimedOut,  // passed its timeout: cancelled, then its worker's process group was killed
    kCrashed,   // the worker died during the try (signal or exit)
    kLost,      // the worker stopped responding (no heartbeat) and was killed
    kCancelled,
  };
  Kind kind = Kind::kFailed;
  std::string message;
};

class ExecutorListener {
 public:
  virtual ~ExecutorListener() = default;
  virtual void OnStarted(const std::string& key, int64_t worker_pid) = 0;
  virtual void OnLog(const std::string& key, int level, std::string_view line) = 0;
  virtual void OnMetric(const std::string& key, const std::string& name, double value,
                        int64_t step) = 0;
  // output: {"kind": "file"|"dir", "path": ...} or {"kind": "value", "value": ...}, plus
  // "artifact" (its id), "size" and "files" when it went into the artifact store.
  virtual void OnOutput(const std::string& key, const std::string& name,
                        const nlohmann::json& output) = 0;
  // Called exactly once per launched try.
  virtual void OnFinished(const std::string& key, TaskOutcome outcome) = 0;
  // A running step's synchronous request (sluice_host.call in plugin_abi.h). Returns
  // {"ok": true, "result": ...} or {"ok": false, "error": "..."}; the step waits for it.
  virtual nlohmann::json OnCall(const std::string& key, const std::string& method,
                                const nlohmann::json& request) {
    (void)key;
    (void)request;
    return {{"ok", false}, {"error", "this engine does not offer \"" + method + "\""}};
  }
};

class Executor {
 public:
  virtual ~Executor() = default;
  // How many tries may run at once.
  virtual size_t capacity() const = 0;
  // REQUIRES: fewer than capacity() tries are running.
  virtual void Launch(TaskLaunch launch) = 0;
  // Asks a running try to stop (the step sees cancelled()); kills it after a grace period.
  virtual void Cancel(const std::string& key) = 0;
};

// Time for the run logic: timestamps and delayed callbacks. Tests use a manual clock.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::system_clock::time_point Now() = 0;
  // Calls `fn` on the run-loop thread after `delay`.
  virtual void RunAfter(Duration delay, std::function<void()> fn) = 0;
};

// "2026-11-27T15:04:05.123456Z" (microseconds: task-to-task latencies are read from these)
std::string FormatTimestamp(std::chrono::system_clock::time_point t);

}  // namespace sluice

#endif  // SLUICE_EXECUTOR_H_
