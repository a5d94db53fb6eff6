// ModelServer: the daemon's model serving. It answers prediction requests for registered
// models with the version an alias (default "production") points to, or a pinned version,
// through serving worker processes (`sluice serve-worker`): predictors never run in the
// daemon.
//
// Zero-downtime deployment: every served alias is re-read from the registry every
// `watch_interval`. When it has moved, the new version is loaded (and warmed up by its
// predictor) in every worker while the old one keeps answering; only when every worker has
// it does the alias switch, in one step on the io thread, so no request fails or sees a
// half-loaded model. Requests already sent to a worker finish on the old version, which is
// unloaded after them (a worker handles its frames in order). A version that fails to load
// leaves the old one serving; the failure is in Status() and the log, and that version is
// not retried until the alias moves again.
//
// A serving worker that dies fails the requests it held (503) and is started again with
// every loaded model before it takes requests. One that does not answer a request within
// request_timeout is killed: that request gets 504, the others it held 503.
//
// Threading: everything runs on the io_context given at construction; call from it only.
#ifndef SLUICE_MODEL_SERVER_H_
#define SLUICE_MODEL_SERVER_H_

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace sluice {

class StateStore;
class Metrics;
struct PluginCatalog;

class ModelServer {
 public:
  struct Options {
    size_t workers = 2;  // serving worker processes; 0: the number of cores
    // Default: this executable with "serve-worker".
    std::vector<std::string> worker_command;
    std::chrono::milliseconds watch_interval{250};
    // A request a predictor has not answered by then gets 504, and its serving worker is
    // killed and started again (a hung predictor must not hold a worker forever).
    std::chrono::milliseconds request_timeout{10000};
  };
  // HTTP status and body (JSON).
  using Reply = std::function<void(int status, std::string body)>;

  // `catalog` maps predictors to plugin files; it may be refilled later (it is read at each
  // load). `state_dir` holds the artifact store. All must outlive the server.
  ModelServer(boost::asio::io_context& io, StateStore* store, const PluginCatalog* catalog,
              std::string state_dir, Metrics* metrics, Options options);
  ~ModelServer();
  ModelServer(const ModelServer&) = delete;
  ModelServer& operator=(const ModelServer&) = delete;

  // Answers `body` (a JSON request for the predictor) with `model`'s version `version`
  // (> 0), or else the one `alias` points to. Workers start on the first request.
  void Predict(const std::string& model, const std::string& alias, int version, std::string body,
               Reply reply);

  // What is served for `model`: {"model", "aliases": {alias: {"version", "since", "loading"?,
  // "failed"?: {"version", "error", "at"}}}, "versions": [pinned and loaded versions],
  // "workers": {"running", "ready"}}.
  nlohmann::json Status(const std::string& model) const;

  // Asks the workers to exit, then kills what is left.
  void Shutdown();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace sluice

#endif  // SLUICE_MODEL_SERVER_H_
