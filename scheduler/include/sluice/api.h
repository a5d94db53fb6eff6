// The daemon's REST API, version 1 (docs/api.md). Routes requests to the scheduler, the
// runner and the state store. Errors are JSON: {"error": {"code": "...", "message": "..."}}
// with a stable code (bad_request, unauthorized, forbidden, not_found, method_not_allowed,
// conflict, internal).
//
// Auth: every endpoint but /api/v1/health needs a bearer token whose role allows it (viewer
// reads, operator acts on runs and DAGs, admin manages tokens), unless the daemon was
// started with allow_unauthenticated (loopback only), when a request without a token acts
// as admin. What a request changes is recorded with who made it ("token:<name>").
//
// Threading: called on the io_context thread that owns the runner and scheduler.
#ifndef SLUICE_API_H_
#define SLUICE_API_H_

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>

#include "sluice/http_server.h"
#include "sluice/metrics.h"
#include "sluice/model_server.h"
#include "sluice/runner.h"
#include "sluice/scheduler.h"
#include "sluice/state_store.h"
#include "sluice/tokens.h"

namespace sluice {

class Api {
 public:
  // One endpoint and who may call it. The table (Routes()) is the API's authority: a request
  // is authorized against it before it is routed, a path it does not hold is 404 and a method
  // it does not list is 405, so an endpoint added to the router without a rule is unreachable
  // (and tests/cli/api_routes_test.cc, which walks the table with every role, covers each rule).
  struct RouteRule {
    const char* method;   // "GET", "POST", "DELETE"
    const char* pattern;  // "/api/v1/runs/{}/cancel": "{}" is one path segment
    Role role;            // the least role that may call it
    bool open = false;    // no token needed at all (health)
  };
  static const std::vector<RouteRule>& Routes();

  struct Options {
    bool allow_unauthenticated = false;
  };
  Api(Scheduler* scheduler, Runner* runner, StateStore* store, Tokens* tokens, Metrics* metrics,
      Options options);

  HttpResponse Handle(const HttpRequest& request);
  // Handle, plus the routes that answer later: POST /api/v1/models/{name}/predict and
  // GET /api/v1/models/{name}/serving, answered by the model server (when there is one).
  void HandleAsync(const HttpRequest& request, HttpServer::Respond respond);
  void SetModelServer(ModelServer* server) { model_server_ = server; }

  // Gauges computed at scrape time (runs, tasks, queue, pools, workers) are set by this
  // callback before /metrics renders; the daemon adds what the API cannot see.
  void OnScrape(std::function<void(Metrics*)> fn) { on_scrape_ = std::move(fn); }

 private:
  struct Caller {
    std::string actor;  // "token:<name>" or "local:<peer>"
    Role role = Role::kViewer;
  };
  HttpResponse Route(const HttpRequest& request, const Caller& caller);
  // Authenticates and authorizes `request` against Routes(): nullopt and the caller when it
  // may go on, else the 401, 403, 404 or 405 to answer.
  std::optional<HttpResponse> Authorize(const HttpRequest& request,
                                        const std::vector<std::string>& parts,
                                        Caller* caller) const;
  // Who calls, or the 401 to answer.
  std::optional<HttpResponse> Authenticate(const HttpRequest& request, Caller* caller) const;
  void Record(const HttpRequest& request, const std::string& route, int status,
              std::chrono::steady_clock::time_point started);
  HttpResponse ListDags();
  HttpResponse GetDag(const std::string& dag_id);
  HttpResponse PauseDag(const std::string& dag_id, bool pause, const HttpRequest& request,
                        const Caller& caller);
  // A 404 naming the DAG when neither the DAG folder nor the state store knows it.
  std::optional<HttpResponse> UnknownDag(const std::string& dag_id) const;
  HttpResponse ListRuns(const std::string& dag_id, const HttpRequest& request);
  HttpResponse Trigger(const std::string& dag_id, const HttpRequest& request, const Caller& caller);
  HttpResponse GetRun(const HttpRequest& request, const std::string& run_id);
  HttpResponse CancelRun(const HttpRequest& request, const std::string& run_id,
                         const Caller& caller);
  HttpResponse ClearRun(const HttpRequest& request, const std::string& run_id,
                        const Caller& caller);
  HttpResponse ListTasks(const HttpRequest& request, const std::string& run_id,
                         const std::string& task_id);
  HttpResponse GetEvents(const HttpRequest& request, const std::string& run_id);
  HttpResponse GetLog(const HttpRequest& request, const std::string& run_id,
                      const std::string& task_id);
  HttpResponse CreateBackfill(const std::string& dag_id, const HttpRequest& request,
                              const Caller& caller);
  HttpResponse Tokens(const HttpRequest& request, const std::vector<std::string>& path,
                      const Caller& caller);
  HttpResponse RenderMetrics();
  HttpResponse Mlops(const HttpRequest& request, const std::vector<std::string>& path,
                     const Caller& caller);
  StatusOr<RunRecord> FindRun(const HttpRequest& request, const std::string& run_id) const;

  Scheduler* scheduler_;
  Runner* runner_;
  StateStore* store_;
  sluice::Tokens* tokens_;
  Metrics* metrics_;
  Options options_;
  std::function<void(Metrics*)> on_scrape_;
  ModelServer* model_server_ = nullptr;
};

}  // namespace sluice

#endif  // SLUICE_API_H_
