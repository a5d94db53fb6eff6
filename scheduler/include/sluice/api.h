// The daemon's REST API, version 1 (docs/api.md). Routes requests to the scheduler, the
// runner and the state store. Errors are JSON: {"error": {"code": "...", "message": "..."}}
// with a stable code (bad_request, not_found, method_not_allowed, conflict, internal).
//
// Threading: called on the io_context thread that owns the runner and scheduler.
#ifndef SLUICE_API_H_
#define SLUICE_API_H_

#include "sluice/http_server.h"
#include "sluice/runner.h"
#include "sluice/scheduler.h"
#include "sluice/state_store.h"

namespace sluice {

class Api {
 public:
  Api(Scheduler* scheduler, Runner* runner, StateStore* store)
      : scheduler_(scheduler), runner_(runner), store_(store) {}

  HttpResponse Handle(const HttpRequest& request);

 private:
  HttpResponse ListDags();
  HttpResponse GetDag(const std::string& dag_id);
  HttpResponse ListRuns(const std::string& dag_id, const HttpRequest& request);
  HttpResponse Trigger(const std::string& dag_id, const HttpRequest& request);
  HttpResponse GetRun(const std::string& run_id);
  HttpResponse GetEvents(const std::string& run_id);
  HttpResponse GetLog(const std::string& run_id, const std::string& task_id,
                      const HttpRequest& request);
  const Scheduler::DagEntry* FindDag(const std::string& dag_id) const;

  Scheduler* scheduler_;
  Runner* runner_;
  StateStore* store_;
};

}  // namespace sluice

#endif  // SLUICE_API_H_
