// LocalWorkerPool: the executor that runs tries in pre-started worker processes on this
// machine. Dispatching a try is one message on a socket to an idle worker — no process is
// started per task. A worker that crashes, hangs past its try's timeout or stops sending
// heartbeats is killed (its whole process group) and replaced.
//
// Threading: everything runs on the io_context passed in; call it from that thread only.
#ifndef SLUICE_LOCAL_EXECUTOR_H_
#define SLUICE_LOCAL_EXECUTOR_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sluice/executor.h"
#include "sluice/status.h"

namespace boost::asio {
class io_context;
}

namespace sluice {

class LocalWorkerPool : public Executor {
 public:
  struct Options {
    // Default: the number of cores.
    size_t workers = 0;
    // The command that starts a worker; "--fd N" is appended. Default: this executable
    // with "worker" (`sluice worker`).
    std::vector<std::string> worker_command;
    // A busy worker silent for this long is killed and its try fails as lost. Workers send a
    // heartbeat every second while they run a step, so keep this well above one second.
    Duration heartbeat_timeout = std::chrono::seconds(30);
    // After Cancel, a try that has not stopped within this grace period is killed.
    Duration cancel_grace = std::chrono::seconds(10);
  };

  LocalWorkerPool(boost::asio::io_context& io, Options options, ExecutorListener* listener);
  // Kills every worker that is still running.
  ~LocalWorkerPool() override;

  // Starts the workers. Fails when a worker cannot be started at all.
  Status Start();

  // Has a worker load every plugin library in `dirs` and report the catalog. A library that
  // crashes the worker while loading is listed as a problem and the scan goes on without it.
  // `done` is called on the io thread.
  void ScanPlugins(std::vector<std::string> dirs,
                   std::function<void(StatusOr<PluginCatalog>)> done);

  size_t capacity() const override;
  // Workers started again after one died (a crash, a kill at a timeout, a lost heartbeat).
  uint64_t restarts() const;
  void Launch(TaskLaunch launch) override;
  void Cancel(const std::string& key) override;

  // Asks idle workers to exit and waits for them briefly; kills the rest.
  void Shutdown();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace sluice

#endif  // SLUICE_LOCAL_EXECUTOR_H_
