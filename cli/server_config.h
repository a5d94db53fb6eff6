// The daemon's config file (`sluice serve --config FILE`), TOML:
//
//   [server]
//   dags = "dags"                   # DAG folder
//   state_dir = "/var/lib/sluice"
//   listen = "127.0.0.1:8080"
//   workers = 4
//   serving_workers = 2             # processes that run predictors (model serving)
//   plugin_dirs = ["/opt/sluice/plugins"]
//   shutdown_grace = "30s"          # SIGTERM: how long running tries may finish
//   predict_timeout = "10s"         # a prediction not answered by then: 504, worker restarted
//
//   [auth]
//   allow_unauthenticated = false   # true only with a loopback listen address
//
//   [pools]
//   gpu = 1                         # pool name = slots
//
// Command-line flags override the file. Unknown keys and wrong types are errors that name
// the file, line and column.
#ifndef SLUICE_CLI_SERVER_CONFIG_H_
#define SLUICE_CLI_SERVER_CONFIG_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sluice/duration.h"
#include "sluice/status.h"

namespace sluice::cli {

struct ServerConfig {
  std::optional<std::string> dags;
  std::optional<std::string> state_dir;
  std::optional<std::string> listen;
  std::optional<size_t> workers;
  std::optional<size_t> serving_workers;
  std::vector<std::string> plugin_dirs;
  std::optional<Duration> shutdown_grace;
  std::optional<Duration> predict_timeout;
  bool allow_unauthenticated = false;
  std::map<std::string, int> pools;
};

// Reads `path`. Errors say "FILE:LINE:COL: what; what to do".
StatusOr<ServerConfig> LoadServerConfig(const std::string& path);

}  // namespace sluice::cli

#endif  // SLUICE_CLI_SERVER_CONFIG_H_
