#include "engine_setup.h"

#include <boost/asio/io_context.hpp>
#include <cstdio>

#include "commands.h"

namespace sluice::cli {

bool StartWithPlugins(LocalWorkerPool& pool, boost::asio::io_context& io,
                      const std::vector<std::string>& plugin_dirs, const char* command,
                      PluginCatalog* catalog, int* exit_code, std::function<void()> ready) {
  Status started = pool.Start();
  if (!started.ok()) {
    std::fprintf(stderr, "sluice %s: %s\n", command, started.message().c_str());
    *exit_code = kExitFailed;
    return false;
  }
  pool.ScanPlugins(
      PluginSearchPath(plugin_dirs), [&io, command, catalog, exit_code,
                                      ready = std::move(ready)](StatusOr<PluginCatalog> scanned) {
        if (!scanned.ok()) {
          std::fprintf(stderr, "sluice %s: cannot read the plugins: %s\n", command,
                       scanned.status().message().c_str());
          *exit_code = kExitFailed;
          io.stop();
          return;
        }
        *catalog = std::move(*scanned);
        for (const auto& problem : catalog->problems) {
          std::fprintf(stderr, "warning: plugin refused: %s\n", problem.message.c_str());
        }
        ready();
      });
  return true;
}

}  // namespace sluice::cli
