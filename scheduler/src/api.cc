#include "sluice/api.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "sluice/suggest.h"

namespace sluice {

using nlohmann::json;

namespace {

HttpResponse Json(int status, const json& body) {
  return {status, "application/json",
          body.dump(2, ' ', false, json::error_handler_t::replace) + "\n"};
}

HttpResponse Error(int status, const std::string& code, const std::string& message) {
  return Json(status, {{"error", {{"code", code}, {"message", message}}}});
}

std::vector<std::string> Split(const std::string& path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start < path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    if (slash > start) parts.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

json RunJson(const RunRecord& run) {
  json j = run.ToJson();
  j.erase("dag_source");  // large, and GET /dags/{id} has the source
  return j;
}

}  // namespace

const Scheduler::DagEntry* Api::FindDag(const std::string& dag_id) const {
  for (const auto& [path, entry] : scheduler_->dags()) {
    if (entry.dag && entry.dag->id() == dag_id) return &entry;
  }
  return nullptr;
}

HttpResponse Api::Handle(const HttpRequest& request) {
  const std::vector<std::string> parts = Split(request.path);
  if (parts.size() < 2 || parts[0] != "api" || parts[1] != "v1") {
    return Error(404, "not_found",
                 "no such endpoint: " + request.path + " (the API lives under /api/v1)");
  }
  const std::vector<std::string> p(parts.begin() + 2, parts.end());
  const std::string& m = request.method;
  auto only = [&](const char* method) {
    return Error(405, "method_not_allowed",
                 m + " " + request.path + " is not supported; use " + method);
  };
  if (p.size() == 1 && p[0] == "health") {
    if (m != "GET") return only("GET");
    return Json(200, {{"status", "ok"},
                      {"dags", scheduler_->dags().size()},
                      {"active_runs", runner_->active_runs()}});
  }
  if (p.size() == 1 && p[0] == "dags") {
    if (m != "GET") return only("GET");
    return ListDags();
  }
  if (p.size() == 2 && p[0] == "dags") {
    if (m != "GET") return only("GET");
    return GetDag(p[1]);
  }
  if (p.size() == 3 && p[0] == "dags" && p[2] == "runs") {
    if (m == "GET") return ListRuns(p[1], request);
    if (m == "POST") return Trigger(p[1], request);
    return only("GET or POST");
  }
  if (p.size() == 2 && p[0] == "runs") {
    if (m != "GET") return only("GET");
    return GetRun(p[1]);
  }
  if (p.size() == 3 && p[0] == "runs" && p[2] == "events") {
    if (m != "GET") return only("GET");
    return GetEvents(p[1]);
  }
  if (p.size() == 5 && p[0] == "runs" && p[2] == "tasks" && p[4] == "log") {
    if (m != "GET") return only("GET");
    return GetLog(p[1], p[3], request);
  }
  return Error(404, "not_found", "no such endpoint: " + request.path);
}

HttpResponse Api::ListDags() {
  json dags = json::array();
  for (const auto& [path, entry] : scheduler_->dags()) {
    json errors = json::array();
    for (const Diagnostic& d : entry.errors.items()) {
      errors.push_back({{"line", d.pos.line},
                        {"column", d.pos.column},
                        {"message", d.message},
                        {"hint", d.hint}});
    }
    json dag = {{"path", path}, {"errors", errors}, {"valid", entry.errors.empty()}};
    if (entry.dag) {
      const DagSpec& spec = entry.dag->spec();
      dag["id"] = spec.id;
      dag["description"] = spec.description;
      dag["schedule"] = spec.schedule ? json(*spec.schedule) : json();
      dag["tasks"] = entry.dag->size();
      dag["active_runs"] = runner_->active_runs(spec.id);
    } else {
      dag["id"] = nullptr;
    }
    dags.push_back(std::move(dag));
  }
  return Json(200, {{"dags", dags}});
}

HttpResponse Api::GetDag(const std::string& dag_id) {
  const Scheduler::DagEntry* entry = FindDag(dag_id);
  if (entry == nullptr) return Error(404, "not_found", "no DAG \"" + dag_id + "\"");
  json body = DagToJson(*entry->dag);
  body["source"] = entry->source;
  json errors = json::array();
  for (const Diagnostic& d : entry->errors.items()) {
    errors.push_back(
        {{"line", d.pos.line}, {"column", d.pos.column}, {"message", d.message}, {"hint", d.hint}});
  }
  body["errors"] = errors;  // of the file on disk, when it no longer validates
  return Json(200, body);
}

HttpResponse Api::ListRuns(const std::string& dag_id, const HttpRequest& request) {
  size_t limit = 50;
  if (auto it = request.query.find("limit"); it != request.query.end()) {
    try {
      limit = std::stoul(it->second);
    } catch (const std::exception&) {
      return Error(400, "bad_request", "limit must be a number, not \"" + it->second + "\"");
    }
  }
  json runs = json::array();
  for (const RunRecord& run : store_->ListRuns(dag_id, limit)) runs.push_back(RunJson(run));
  return Json(200, {{"runs", runs}});
}

HttpResponse Api::Trigger(const std::string& dag_id, const HttpRequest& request) {
  const Scheduler::DagEntry* entry = FindDag(dag_id);
  if (entry == nullptr) return Error(404, "not_found", "no DAG \"" + dag_id + "\"");
  json body = json::object();
  if (!request.body.empty()) {
    try {
      body = json::parse(request.body);
    } catch (const json::exception& e) {
      return Error(400, "bad_request", std::string("the body is not JSON: ") + e.what());
    }
  }
  if (!body.is_object())
    return Error(400, "bad_request", "the body must be a JSON object, e.g. {\"params\": {}}");
  for (const auto& item : body.items()) {
    if (item.key() != "params") {
      return Error(400, "bad_request",
                   "unknown field \"" + item.key() + "\" (the body takes \"params\")");
    }
  }
  StatusOr<json> params =
      ResolveRunParamsJson(entry->dag->spec(), body.value("params", json::object()));
  if (!params.ok()) return Error(400, "bad_request", params.status().message());
  TriggerRequest trigger;
  trigger.dag = entry->dag;
  trigger.dag_source = entry->source;
  trigger.params = *params;
  trigger.triggered_by =
      "api:" + (request.remote.empty() ? std::string("unknown") : request.remote);
  StatusOr<RunRecord> run = runner_->Trigger(std::move(trigger));
  if (!run.ok()) {
    const int status = run.status().code() == Status::Code::kAlreadyExists ? 409 : 400;
    return Error(status, status == 409 ? "conflict" : "bad_request", run.status().message());
  }
  // 201 promises the run exists: commit it before answering.
  Status durable = runner_->Sync();
  if (!durable.ok())
    return Error(500, "internal", "the run could not be recorded: " + durable.message());
  return Json(201, {{"run", RunJson(*run)}});
}

HttpResponse Api::GetRun(const std::string& run_id) {
  StatusOr<RunRecord> run = store_->FindRun(run_id);
  if (!run.ok()) {
    return Error(run.status().code() == Status::Code::kNotFound ? 404 : 400,
                 run.status().code() == Status::Code::kNotFound ? "not_found" : "bad_request",
                 run.status().message());
  }
  json tasks = json::array();
  for (const TryRecord& t : store_->ListTries(run->dag_id, run->run_id))
    tasks.push_back(t.ToJson());
  return Json(200, {{"run", RunJson(*run)}, {"tasks", tasks}});
}

HttpResponse Api::GetEvents(const std::string& run_id) {
  StatusOr<RunRecord> run = store_->FindRun(run_id);
  if (!run.ok()) return Error(404, "not_found", run.status().message());
  json events = json::array();
  for (const Event& e : store_->ListEvents(run->dag_id, run->run_id)) events.push_back(e.ToJson());
  return Json(200, {{"events", events}});
}

HttpResponse Api::GetLog(const std::string& run_id, const std::string& task_id,
                         const HttpRequest& request) {
  StatusOr<RunRecord> run = store_->FindRun(run_id);
  if (!run.ok()) return Error(404, "not_found", run.status().message());
  int wanted = 0;
  if (auto it = request.query.find("try"); it != request.query.end()) {
    try {
      wanted = std::stoi(it->second);
    } catch (const std::exception&) {
      return Error(400, "bad_request", "try must be a number, not \"" + it->second + "\"");
    }
  }
  StatusOr<TryRecord> chosen = store_->FindTry(run->dag_id, run->run_id, task_id, wanted);
  if (!chosen.ok()) return Error(404, "not_found", chosen.status().message());
  // A range of the file: ?offset=N (bytes) lets a client follow a log by polling.
  size_t offset = 0;
  if (auto it = request.query.find("offset"); it != request.query.end()) {
    try {
      offset = std::stoul(it->second);
    } catch (const std::exception&) {
      return Error(400, "bad_request", "offset must be a number, not \"" + it->second + "\"");
    }
  }
  std::string text;
  if (std::FILE* f = std::fopen(chosen->log_path.c_str(), "rb")) {
    if (std::fseek(f, static_cast<long>(offset), SEEK_SET) == 0) {
      char buf[65536];
      for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0 && text.size() < (8u << 20);)
        text.append(buf, n);
    }
    std::fclose(f);
  }
  return Json(200, {{"task_id", task_id},
                    {"try_number", chosen->try_number},
                    {"state", TaskStateName(chosen->state)},
                    {"offset", offset},
                    {"next_offset", offset + text.size()},
                    {"text", text}});
}

}  // namespace sluice
