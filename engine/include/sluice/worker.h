// The worker side of the engine/worker protocol.
#ifndef SLUICE_WORKER_H_
#define SLUICE_WORKER_H_

namespace sluice {

// Runs a worker on the connected socket `fd` until the engine says shut down (returns 0) or
// goes away (the worker then kills its own process group and exits). Loads plugins, runs one
// step at a time, streams logs, metrics and outputs, sends heartbeats while a step runs.
// REQUIRES: the process is the leader of its own process group (the engine starts it so).
int RunWorker(int fd);

// Runs a serving worker on `fd`: loads model folders with plugins' predictors (ABI 1.2) when
// the daemon says so, and answers prediction requests one at a time, until the daemon says
// shut down or goes away. Predictors never run in the daemon itself.
int RunServingWorker(int fd);

}  // namespace sluice

#endif  // SLUICE_WORKER_H_
