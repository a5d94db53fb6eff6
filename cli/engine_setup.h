// Start-up shared by the commands that run the engine (`run`, `serve`).
#ifndef SLUICE_CLI_ENGINE_SETUP_H_
#define SLUICE_CLI_ENGINE_SETUP_H_

#include <functional>
#include <string>
#include <vector>

#include "sluice/local_executor.h"
#include "sluice/plugin_host.h"

namespace sluice::cli {

// Starts the pool's workers and has one scan the plugin search path (`plugin_dirs` first).
// When the catalog arrives, stores it in *catalog, warns about refused libraries and calls
// `ready` on the io thread. On failure prints "sluice COMMAND: why", sets *exit_code to 1 and
// stops `io`. Returns false when the workers cannot be started at all (nothing to run then).
bool StartWithPlugins(LocalWorkerPool& pool, boost::asio::io_context& io,
                      const std::vector<std::string>& plugin_dirs, const char* command,
                      PluginCatalog* catalog, int* exit_code, std::function<void()> ready);

}  // namespace sluice::cli

#endif  // SLUICE_CLI_ENGINE_SETUP_H_
