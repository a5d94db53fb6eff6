#include "sluice/api.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <limits>
#include <set>
#include <variant>

#include "sluice/artifacts.h"
#include "sluice/json_limits.h"
#include "sluice/registry.h"
#include "sluice/suggest.h"
#include "sluice/tracking.h"

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

// A Status as an error response: the code picks the HTTP status.
HttpResponse Error(const Status& s) {
  switch (s.code()) {
    case Status::Code::kNotFound:
      return Error(404, "not_found", s.message());
    case Status::Code::kAlreadyExists:
    case Status::Code::kFailedPrecondition:
      return Error(409, "conflict", s.message());
    case Status::Code::kInvalidArgument:
      return Error(400, "bad_request", s.message());
    default:
      return Error(500, "internal", s.message());
  }
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

json ErrorsJson(const Diagnostics& diagnostics) {
  json errors = json::array();
  for (const Diagnostic& d : diagnostics.items()) {
    errors.push_back(
        {{"line", d.pos.line}, {"column", d.pos.column}, {"message", d.message}, {"hint", d.hint}});
  }
  return errors;
}

// The request body as a JSON object whose fields are among `fields` (name -> type), or the
// 400 that says what is wrong.
struct Field {
  const char* name;
  json::value_t type;
  const char* type_name;
};

std::variant<json, HttpResponse> ParseBody(const HttpRequest& request,
                                           std::initializer_list<Field> fields) {
  json body = json::object();
  if (!request.body.empty()) {
    StatusOr<json> parsed = ParseJson(request.body, "the body");
    if (!parsed.ok()) return Error(400, "bad_request", parsed.status().message());
    body = std::move(parsed).value();
  }
  std::string accepted;
  for (const Field& f : fields) accepted += (accepted.empty() ? "" : ", ") + std::string(f.name);
  if (!body.is_object()) {
    return Error(400, "bad_request",
                 "the body must be a JSON object" +
                     (accepted.empty() ? std::string() : " with fields " + accepted));
  }
  for (const auto& item : body.items()) {
    const Field* field = nullptr;
    for (const Field& f : fields) {
      if (item.key() == f.name) field = &f;
    }
    if (field == nullptr) {
      return Error(400, "bad_request",
                   "unknown field \"" + item.key() + "\"" +
                       (accepted.empty() ? " (this endpoint takes no body)"
                                         : " (accepted: " + accepted + ")"));
    }
    const json::value_t t = item.value().type();
    const bool numeric =
        field->type == json::value_t::number_integer &&
        (t == json::value_t::number_unsigned || t == json::value_t::number_integer);
    if (t != field->type && !numeric) {
      return Error(400, "bad_request",
                   "field \"" + item.key() + "\" must be " + field->type_name + ", not " +
                       std::string(item.value().type_name()));
    }
  }
  return body;
}

std::variant<size_t, HttpResponse> QueryNumber(const HttpRequest& request, const std::string& name,
                                               size_t fallback, size_t max) {
  auto it = request.query.find(name);
  if (it == request.query.end()) return fallback;
  size_t value = 0;
  size_t used = 0;
  try {
    value = std::stoul(it->second, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != it->second.size() || value > max) {
    return Error(400, "bad_request",
                 name + " must be a number from 0 to " + std::to_string(max) + ", not \"" +
                     it->second + "\"");
  }
  return value;
}

// The route's shape, for metrics: ids replaced by placeholders, and anything that is not a
// known word by "other", so that requests for made-up paths cannot create new series.
std::string RouteLabel(const std::vector<std::string>& parts) {
  static const std::set<std::string> kWords = {
      "health",   "dags",     "runs",      "backfills", "tokens",  "source",  "errors",  "pause",
      "unpause",  "events",   "cancel",    "clear",     "tasks",   "log",     "models",  "aliases",
      "rollback", "versions", "artifacts", "lineage",   "metrics", "compare", "predict", "serving"};
  if (parts.size() == 1 && parts[0] == "metrics") return "/metrics";
  if (parts.size() < 3 || parts[0] != "api" || parts[1] != "v1" || !kWords.count(parts[2]))
    return "other";
  std::string route = "/api/v1/" + parts[2];
  for (size_t i = 3; i < parts.size(); ++i) {
    if (i % 2 == 1) {
      route += "/{id}";
    } else if (kWords.count(parts[i])) {
      route += "/" + parts[i];
    } else {
      return "other";
    }
  }
  return route;
}

bool Matches(const char* pattern, const std::vector<std::string>& parts) {
  const std::vector<std::string> want = Split(pattern);
  if (want.size() != parts.size()) return false;
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i] != "{}" && want[i] != parts[i]) return false;
  }
  return true;
}

constexpr const char* kRoleHint =
    "send Authorization: Bearer <token>; an admin creates tokens with `sluice tokens create "
    "NAME --role viewer|operator|admin`";

}  // namespace

Api::Api(Scheduler* scheduler, Runner* runner, StateStore* store, sluice::Tokens* tokens,
         Metrics* metrics, Options options)
    : scheduler_(scheduler),
      runner_(runner),
      store_(store),
      tokens_(tokens),
      metrics_(metrics),
      options_(options) {
  metrics_->Declare("sluice_api_requests_total", "counter",
                    "API requests by method, route and status");
  metrics_->Declare("sluice_api_request_duration_seconds", "histogram",
                    "API request handling time by route", Metrics::DurationBuckets());
}

const std::vector<Api::RouteRule>& Api::Routes() {
  constexpr Role kV = Role::kViewer, kO = Role::kOperator, kA = Role::kAdmin;
  static const std::vector<RouteRule> kRoutes = {
      {"GET", "/api/v1/health", kV, true},
      {"GET", "/metrics", kV},
      {"GET", "/api/v1/tokens", kA},
      {"POST", "/api/v1/tokens", kA},
      {"DELETE", "/api/v1/tokens/{}", kA},
      {"GET", "/api/v1/dags", kV},
      {"GET", "/api/v1/dags/{}", kV},
      {"GET", "/api/v1/dags/{}/source", kV},
      {"GET", "/api/v1/dags/{}/errors", kV},
      {"POST", "/api/v1/dags/{}/pause", kO},
      {"POST", "/api/v1/dags/{}/unpause", kO},
      {"GET", "/api/v1/dags/{}/runs", kV},
      {"POST", "/api/v1/dags/{}/runs", kO},
      {"GET", "/api/v1/dags/{}/events", kV},
      {"GET", "/api/v1/dags/{}/backfills", kV},
      {"POST", "/api/v1/dags/{}/backfills", kO},
      {"GET", "/api/v1/runs", kV},
      {"GET", "/api/v1/runs/compare", kV},
      {"GET", "/api/v1/runs/{}", kV},
      {"POST", "/api/v1/runs/{}/cancel", kO},
      {"POST", "/api/v1/runs/{}/clear", kO},
      {"GET", "/api/v1/runs/{}/events", kV},
      {"GET", "/api/v1/runs/{}/metrics", kV},
      {"GET", "/api/v1/runs/{}/tasks", kV},
      {"GET", "/api/v1/runs/{}/tasks/{}", kV},
      {"GET", "/api/v1/runs/{}/tasks/{}/log", kV},
      {"GET", "/api/v1/backfills", kV},
      {"GET", "/api/v1/backfills/{}", kV},
      {"POST", "/api/v1/backfills/{}/cancel", kO},
      {"GET", "/api/v1/artifacts", kV},
      {"GET", "/api/v1/artifacts/{}", kV},
      {"GET", "/api/v1/artifacts/{}/lineage", kV},
      {"GET", "/api/v1/models", kV},
      {"GET", "/api/v1/models/{}", kV},
      {"GET", "/api/v1/models/{}/versions", kV},
      {"GET", "/api/v1/models/{}/versions/{}", kV},
      {"POST", "/api/v1/models/{}/aliases/{}", kO},
      {"POST", "/api/v1/models/{}/aliases/{}/rollback", kO},
      {"POST", "/api/v1/models/{}/predict", kV},
      {"GET", "/api/v1/models/{}/serving", kV},
  };
  return kRoutes;
}

std::optional<HttpResponse> Api::Authorize(const HttpRequest& request,
                                           const std::vector<std::string>& parts,
                                           Caller* caller) const {
  const RouteRule* rule = nullptr;
  std::string allowed;
  for (const RouteRule& r : Routes()) {
    if (!Matches(r.pattern, parts)) continue;
    if (allowed.find(r.method) == std::string::npos) {
      allowed += (allowed.empty() ? "" : " or ") + std::string(r.method);
    }
    // "/runs/compare" is listed before "/runs/{}": the first rule for the path and method wins.
    if (rule == nullptr && request.method == r.method) rule = &r;
  }
  if (rule != nullptr && rule->open) return std::nullopt;
  if (std::optional<HttpResponse> denied = Authenticate(request, caller)) return denied;
  if (allowed.empty()) {
    const bool under_api = parts.size() >= 2 && parts[0] == "api" && parts[1] == "v1";
    return Error(404, "not_found",
                 "no such endpoint: " + request.path +
                     (under_api ? " (see docs/api.md)" : " (the API lives under /api/v1)"));
  }
  if (rule == nullptr) {
    return Error(405, "method_not_allowed",
                 request.method + " " + request.path + " is not supported; use " + allowed);
  }
  if (caller->role < rule->role) {
    return Error(403, "forbidden",
                 caller->actor + " has role " + std::string(RoleName(caller->role)) + "; " +
                     request.method + " " + request.path + " needs " +
                     std::string(RoleName(rule->role)));
  }
  return std::nullopt;
}

std::optional<HttpResponse> Api::Authenticate(const HttpRequest& request, Caller* caller) const {
  if (request.authorization.empty()) {
    if (options_.allow_unauthenticated) {
      *caller = {"local:" + request.remote, Role::kAdmin};
      return std::nullopt;
    }
    return Error(401, "unauthorized", std::string("this API needs a token: ") + kRoleHint);
  }
  const std::string prefix = "Bearer ";
  const TokenInfo* token = request.authorization.rfind(prefix, 0) == 0
                               ? tokens_->Authenticate(request.authorization.substr(prefix.size()))
                               : nullptr;
  if (token == nullptr) {
    return Error(401, "unauthorized",
                 "the token is not valid (revoked, mistyped, or not a bearer token); " +
                     std::string(kRoleHint));
  }
  *caller = {"token:" + token->name, token->role};
  return std::nullopt;
}

void Api::Record(const HttpRequest& request, const std::string& route, int status,
                 std::chrono::steady_clock::time_point started) {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  metrics_->Add("sluice_api_requests_total",
                {{"method", request.method}, {"route", route}, {"status", std::to_string(status)}});
  metrics_->Observe("sluice_api_request_duration_seconds", {{"route", route}}, seconds);
}

HttpResponse Api::Handle(const HttpRequest& request) {
  const auto started = std::chrono::steady_clock::now();
  Caller caller;
  const std::vector<std::string> parts = Split(request.path);
  std::optional<HttpResponse> denied = Authorize(request, parts, &caller);
  HttpResponse response = denied ? *denied : Route(request, caller);
  Record(request, RouteLabel(parts), response.status, started);
  return response;
}

void Api::HandleAsync(const HttpRequest& request, HttpServer::Respond respond) {
  const std::vector<std::string> parts = Split(request.path);
  const bool serving = model_server_ != nullptr && parts.size() == 5 && parts[0] == "api" &&
                       parts[1] == "v1" && parts[2] == "models" &&
                       (parts[4] == "predict" || parts[4] == "serving");
  if (!serving) return respond(Handle(request));
  const auto started = std::chrono::steady_clock::now();
  const std::string route = RouteLabel(parts);
  auto answer = [this, &request, &route, started, &respond](HttpResponse response) {
    Record(request, route, response.status, started);
    respond(std::move(response));
  };
  Caller caller;
  if (std::optional<HttpResponse> denied = Authorize(request, parts, &caller)) {
    return answer(*denied);
  }
  const std::string& model = parts[3];
  if (parts[4] == "serving") {
    StatusOr<Model> known = ModelRegistry(store_).GetModel(model);
    if (!known.ok()) return answer(Error(known.status()));
    return answer(Json(200, model_server_->Status(model)));
  }
  for (const auto& [key, value] : request.query) {
    if (key != "alias" && key != "version") {
      return answer(Error(400, "bad_request",
                          "unknown query parameter \"" + key + "\" (use alias or version)"));
    }
  }
  int version = 0;
  if (request.query.count("version")) {
    const std::string& text = request.query.at("version");
    char* end = nullptr;
    const long v = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0' || v < 1 || v > 1000000000) {
      return answer(Error(400, "bad_request",
                          "version must be a version number (1, 2, ...), not \"" + text + "\""));
    }
    version = static_cast<int>(v);
  }
  if (version > 0 && request.query.count("alias")) {
    return answer(Error(400, "bad_request", "give alias or version, not both"));
  }
  const std::string alias =
      request.query.count("alias") ? request.query.at("alias") : std::string("production");
  if (request.body.empty()) {
    return answer(Error(400, "bad_request",
                        "send the rows to predict as JSON, e.g. {\"rows\": [{\"column\": 1.5}]}"));
  }
  // The body goes to the plugin as text; its depth is checked here so that no plugin's parser
  // (nor its recursive walks) meets a document deeper than the API's limit.
  if (Status s = CheckJsonLimits(request.body, "the body"); !s.ok()) {
    return answer(Error(400, "bad_request", s.message()));
  }
  // The reply comes later, from the serving worker, and may outlive this call's locals.
  model_server_->Predict(
      model, alias, version, request.body,
      [this, method = request.method, route, started, respond](int status, std::string body) {
        HttpRequest for_metrics;
        for_metrics.method = method;
        Record(for_metrics, route, status, started);
        respond({status, "application/json", std::move(body)});
      });
}

HttpResponse Api::Route(const HttpRequest& request, const Caller& caller) {
  const std::vector<std::string> parts = Split(request.path);
  const std::string& m = request.method;
  auto only = [&](const char* method) {
    return Error(405, "method_not_allowed",
                 m + " " + request.path + " is not supported; use " + method);
  };
  if (parts.size() == 1 && parts[0] == "metrics") {
    if (m != "GET") return only("GET");
    return RenderMetrics();
  }
  if (parts.size() < 2 || parts[0] != "api" || parts[1] != "v1") {
    return Error(404, "not_found",
                 "no such endpoint: " + request.path + " (the API lives under /api/v1)");
  }
  const std::vector<std::string> p(parts.begin() + 2, parts.end());
  const bool get = m == "GET";
  const bool post = m == "POST";
  if (p.size() == 1 && p[0] == "health") {
    if (!get) return only("GET");
    return Json(200, {{"status", "ok"},
                      {"dags", scheduler_->dags().size()},
                      {"active_runs", runner_->active_runs()}});
  }
  // Who may call what was decided by Authorize, from Routes().
  if (!p.empty() && p[0] == "tokens") return Tokens(request, p, caller);
  if (p.size() == 1 && p[0] == "dags") return get ? ListDags() : only("GET");
  if (p.size() >= 2 && p[0] == "dags") {
    const std::string& dag = p[1];
    if (p.size() == 2) return get ? GetDag(dag) : only("GET");
    if (p.size() == 3 && p[2] == "source") {
      if (!get) return only("GET");
      const Scheduler::DagEntry* entry = scheduler_->FindDag(dag);
      if (entry == nullptr) return Error(404, "not_found", "no DAG \"" + dag + "\"");
      return {200, "application/toml", entry->source};
    }
    if (p.size() == 3 && p[2] == "errors") {
      if (!get) return only("GET");
      const Scheduler::DagEntry* entry = scheduler_->FindDag(dag);
      if (entry == nullptr) return Error(404, "not_found", "no DAG \"" + dag + "\"");
      return Json(200, {{"path", entry->path}, {"errors", ErrorsJson(entry->errors)}});
    }
    if (p.size() == 3 && (p[2] == "pause" || p[2] == "unpause")) {
      if (!post) return only("POST");
      return PauseDag(dag, p[2] == "pause", request, caller);
    }
    if (p.size() == 3 && get && (p[2] == "runs" || p[2] == "events" || p[2] == "backfills")) {
      if (std::optional<HttpResponse> unknown = UnknownDag(dag)) return *unknown;
    }
    if (p.size() == 3 && p[2] == "runs") {
      if (get) return ListRuns(dag, request);
      if (post) return Trigger(dag, request, caller);
      return only("GET or POST");
    }
    if (p.size() == 3 && p[2] == "events") {
      if (!get) return only("GET");
      StatusOr<std::vector<Event>> stored = store_->ListEvents(dag, "");
      if (!stored.ok()) return Error(stored.status());
      json events = json::array();
      for (const Event& e : *stored) events.push_back(e.ToJson());
      return Json(200, {{"events", events}});
    }
    if (p.size() == 3 && p[2] == "backfills") {
      if (post) return CreateBackfill(dag, request, caller);
      if (!get) return only("GET or POST");
      json list = json::array();
      for (json& b : scheduler_->ListBackfills(dag)) list.push_back(std::move(b));
      return Json(200, {{"backfills", list}});
    }
  }
  if (!p.empty() && (p[0] == "artifacts" || p[0] == "models" ||
                     (p.size() >= 2 && p[0] == "runs" &&
                      (p[1] == "compare" || (p.size() == 3 && p[2] == "metrics"))))) {
    return Mlops(request, p, caller);
  }
  if (p.size() == 1 && p[0] == "runs") return get ? ListRuns("", request) : only("GET");
  if (p.size() >= 2 && p[0] == "runs") {
    const std::string& run = p[1];
    if (p.size() == 2) return get ? GetRun(request, run) : only("GET");
    if (p.size() == 3 && p[2] == "cancel")
      return post ? CancelRun(request, run, caller) : only("POST");
    if (p.size() == 3 && p[2] == "clear")
      return post ? ClearRun(request, run, caller) : only("POST");
    if (p.size() == 3 && p[2] == "events") return get ? GetEvents(request, run) : only("GET");
    if (p.size() == 3 && p[2] == "tasks") return get ? ListTasks(request, run, "") : only("GET");
    if (p.size() == 4 && p[2] == "tasks") return get ? ListTasks(request, run, p[3]) : only("GET");
    if (p.size() == 5 && p[2] == "tasks" && p[4] == "log")
      return get ? GetLog(request, run, p[3]) : only("GET");
  }
  if (p.size() == 1 && p[0] == "backfills") {
    if (!get) return only("GET");
    auto dag = request.query.find("dag_id");
    json list = json::array();
    for (json& b : scheduler_->ListBackfills(dag == request.query.end() ? "" : dag->second))
      list.push_back(std::move(b));
    return Json(200, {{"backfills", list}});
  }
  if (p.size() == 2 && p[0] == "backfills") {
    if (!get) return only("GET");
    StatusOr<json> backfill = scheduler_->GetBackfill(p[1]);
    return backfill.ok() ? Json(200, {{"backfill", *backfill}}) : Error(backfill.status());
  }
  if (p.size() == 3 && p[0] == "backfills" && p[2] == "cancel") {
    if (!post) return only("POST");
    Status s = scheduler_->CancelBackfill(p[1], caller.actor);
    if (!s.ok()) return Error(s);
    return Json(200, {{"backfill", *scheduler_->GetBackfill(p[1])}});
  }
  return Error(404, "not_found", "no such endpoint: " + request.path + " (see docs/api.md)");
}

HttpResponse Api::ListDags() {
  json dags = json::array();
  for (const auto& [path, entry] : scheduler_->dags()) {
    json dag = {
        {"path", path}, {"errors", ErrorsJson(entry.errors)}, {"valid", entry.errors.empty()}};
    if (entry.dag) {
      const DagSpec& spec = entry.dag->spec();
      dag["id"] = spec.id;
      dag["description"] = spec.description;
      dag["schedule"] = spec.schedule ? json(*spec.schedule) : json();
      dag["tasks"] = entry.dag->size();
      dag["active_runs"] = runner_->active_runs(spec.id);
      dag["paused"] = scheduler_->paused(spec);
    } else {
      dag["id"] = nullptr;
    }
    dags.push_back(std::move(dag));
  }
  return Json(200, {{"dags", dags}});
}

HttpResponse Api::GetDag(const std::string& dag_id) {
  const Scheduler::DagEntry* entry = scheduler_->FindDag(dag_id);
  if (entry == nullptr) return Error(404, "not_found", "no DAG \"" + dag_id + "\"");
  json body = DagToJson(*entry->dag);
  body["source"] = entry->source;
  body["path"] = entry->path;
  body["paused"] = scheduler_->paused(dag_id);
  body["errors"] = ErrorsJson(entry->errors);  // of the file on disk, when it no longer validates
  return Json(200, body);
}

HttpResponse Api::PauseDag(const std::string& dag_id, bool pause, const HttpRequest& request,
                           const Caller& caller) {
  auto parsed = ParseBody(request, {});
  if (auto* error = std::get_if<HttpResponse>(&parsed)) return *error;
  Status s = scheduler_->SetPaused(dag_id, pause, caller.actor);
  if (!s.ok()) return Error(s);
  if (!pause) scheduler_->Tick();  // owed intervals get their runs now
  return Json(200, {{"dag_id", dag_id}, {"paused", pause}});
}

std::optional<HttpResponse> Api::UnknownDag(const std::string& dag_id) const {
  if (scheduler_->FindDag(dag_id) != nullptr) return std::nullopt;
  // A DAG whose file is gone still has its history.
  StatusOr<std::vector<RunRecord>> runs = store_->ListRuns(dag_id, 1);
  if (!runs.ok()) return Error(runs.status());
  StatusOr<std::vector<Event>> events = store_->ListEvents(dag_id, "");
  if (!events.ok()) return Error(events.status());
  if (!runs->empty() || !events->empty()) return std::nullopt;
  return Error(404, "not_found",
               "no DAG \"" + dag_id + "\" (not in the DAG folder, and no run in the state store)");
}

HttpResponse Api::ListRuns(const std::string& dag_id, const HttpRequest& request) {
  StateStore::RunQuery query;
  query.dag_id = dag_id;
  if (dag_id.empty()) {
    if (auto it = request.query.find("dag_id"); it != request.query.end()) {
      query.dag_id = it->second;
      if (std::optional<HttpResponse> unknown = UnknownDag(query.dag_id)) return *unknown;
    }
  }
  auto limit = QueryNumber(request, "limit", 50, 1000);
  if (auto* error = std::get_if<HttpResponse>(&limit)) return *error;
  query.limit = std::get<size_t>(limit);
  if (auto it = request.query.find("state"); it != request.query.end()) {
    size_t start = 0;
    while (start <= it->second.size()) {
      size_t comma = it->second.find(',', start);
      if (comma == std::string::npos) comma = it->second.size();
      const std::string name = it->second.substr(start, comma - start);
      std::optional<RunState> state = ParseRunState(name);
      if (!state) {
        return Error(
            400, "bad_request",
            "state \"" + name + "\" is not a run state (queued, running, success, failed)");
      }
      query.states.push_back(*state);
      start = comma + 1;
    }
  }
  if (auto it = request.query.find("run_type"); it != request.query.end()) {
    if (it->second != "manual" && it->second != "scheduled" && it->second != "backfill") {
      return Error(400, "bad_request",
                   "run_type \"" + it->second + "\" is not manual, scheduled or backfill");
    }
    query.run_type = it->second;
  }
  if (auto it = request.query.find("page_token"); it != request.query.end())
    query.page_token = it->second;
  // The hot read of the API: the stored records go out as they are, unparsed.
  query.raw = true;
  StatusOr<StateStore::RunPage> page = store_->QueryRuns(query);
  if (!page.ok()) return Error(page.status());
  size_t size = 128 + page->next_page_token.size();
  for (const std::string& raw : page->raw) size += raw.size() + 2;
  std::string body;
  body.reserve(size);  // one allocation: a page of 50 runs is ~30 KB
  body += "{\"runs\": [";
  for (size_t i = 0; i < page->raw.size(); ++i) {
    if (i) body += ", ";
    body += page->raw[i];
  }
  body += "], \"next_page_token\": ";
  body += page->next_page_token.empty() ? "null" : json(page->next_page_token).dump();
  body += "}\n";
  return {200, "application/json", std::move(body)};
}

HttpResponse Api::Trigger(const std::string& dag_id, const HttpRequest& request,
                          const Caller& caller) {
  const Scheduler::DagEntry* entry = scheduler_->FindDag(dag_id);
  if (entry == nullptr) return Error(404, "not_found", "no DAG \"" + dag_id + "\"");
  auto parsed = ParseBody(request, {{"params", json::value_t::object, "an object"},
                                    {"logical_date", json::value_t::string, "an ISO 8601 time"},
                                    {"run_id", json::value_t::string, "a string"},
                                    {"no_cache", json::value_t::boolean, "true or false"},
                                    {"tags", json::value_t::object, "an object of name: text"},
                                    {"note", json::value_t::string, "a string"}});
  if (auto* error = std::get_if<HttpResponse>(&parsed)) return *error;
  const json& body = std::get<json>(parsed);
  StatusOr<json> params =
      ResolveRunParamsJson(entry->dag->spec(), body.value("params", json::object()));
  if (!params.ok()) return Error(400, "bad_request", params.status().message());
  TriggerRequest trigger;
  trigger.dag = entry->dag;
  trigger.dag_source = entry->source;
  trigger.params = *params;
  trigger.triggered_by = caller.actor;
  trigger.no_cache = body.value("no_cache", false);
  trigger.tags = body.value("tags", json::object());
  if (Status s = CheckTags(trigger.tags); !s.ok()) return Error(400, "bad_request", s.message());
  trigger.note = body.value("note", "");
  if (body.contains("logical_date")) {
    std::optional<std::chrono::system_clock::time_point> when =
        ParseTimeUtcPrecise(body["logical_date"]);
    if (!when) {
      return Error(400, "bad_request",
                   "logical_date \"" + body["logical_date"].get<std::string>() +
                       "\" is not an ISO 8601 time (e.g. 2026-01-01T00:00:00Z)");
    }
    trigger.logical_date = *when;
  }
  if (body.contains("run_id")) {
    const std::string id = body["run_id"];
    if (Status s = CheckRunId(id); !s.ok()) return Error(400, "bad_request", s.message());
    trigger.run_id = id;
  }
  StatusOr<RunRecord> run = runner_->Trigger(std::move(trigger));
  if (!run.ok()) return Error(run.status());
  // 201 promises the run exists: commit it before answering.
  Status durable = runner_->Sync();
  if (!durable.ok())
    return Error(500, "internal", "the run could not be recorded: " + durable.message());
  return Json(201, {{"run", RunJson(*run)}});
}

StatusOr<RunRecord> Api::FindRun(const HttpRequest& request, const std::string& run_id) const {
  if (auto it = request.query.find("dag_id"); it != request.query.end())
    return store_->GetRun(it->second, run_id);
  return store_->FindRun(run_id);
}

HttpResponse Api::GetRun(const HttpRequest& request, const std::string& run_id) {
  StatusOr<RunRecord> run = FindRun(request, run_id);
  if (!run.ok()) return Error(run.status());
  StatusOr<std::vector<TryRecord>> tries = store_->ListTries(run->dag_id, run->run_id);
  if (!tries.ok()) return Error(tries.status());
  json tasks = json::array();
  for (const TryRecord& t : *tries) tasks.push_back(t.ToJson());
  return Json(200, {{"run", RunJson(*run)}, {"tasks", tasks}});
}

HttpResponse Api::CancelRun(const HttpRequest& request, const std::string& run_id,
                            const Caller& caller) {
  auto parsed = ParseBody(request, {});
  if (auto* error = std::get_if<HttpResponse>(&parsed)) return *error;
  StatusOr<RunRecord> run = FindRun(request, run_id);
  if (!run.ok()) return Error(run.status());
  Status s = runner_->CancelRun(run->dag_id, run->run_id, caller.actor);
  if (s.ok()) s = runner_->Sync();
  if (!s.ok()) return Error(s);
  return GetRun(request, run_id);
}

HttpResponse Api::ClearRun(const HttpRequest& request, const std::string& run_id,
                           const Caller& caller) {
  auto parsed = ParseBody(request, {{"tasks", json::value_t::array, "an array of task ids"},
                                    {"downstream", json::value_t::boolean, "true or false"},
                                    {"only_failed", json::value_t::boolean, "true or false"}});
  if (auto* error = std::get_if<HttpResponse>(&parsed)) return *error;
  const json& body = std::get<json>(parsed);
  StatusOr<RunRecord> run = FindRun(request, run_id);
  if (!run.ok()) return Error(run.status());
  ClearRequest clear;
  clear.dag_id = run->dag_id;
  clear.run_id = run->run_id;
  for (const json& task : body.value("tasks", json::array())) {
    if (!task.is_string()) return Error(400, "bad_request", "tasks must hold task ids (strings)");
    clear.task_ids.push_back(task.get<std::string>());
  }
  clear.downstream = body.value("downstream", false);
  clear.only_failed = body.value("only_failed", false);
  clear.actor = caller.actor;
  StatusOr<std::vector<std::string>> cleared = runner_->ClearTasks(clear);
  if (!cleared.ok()) return Error(cleared.status());
  Status durable = runner_->Sync();
  if (!durable.ok()) return Error(durable);
  return Json(200, {{"cleared", *cleared}, {"run_id", run->run_id}, {"dag_id", run->dag_id}});
}

HttpResponse Api::ListTasks(const HttpRequest& request, const std::string& run_id,
                            const std::string& task_id) {
  StatusOr<RunRecord> run = FindRun(request, run_id);
  if (!run.ok()) return Error(run.status());
  StatusOr<std::vector<TryRecord>> stored = store_->ListTries(run->dag_id, run->run_id);
  if (!stored.ok()) return Error(stored.status());
  std::vector<TryRecord> tries = std::move(stored).value();
  if (!task_id.empty()) {
    json list = json::array();
    for (const TryRecord& t : tries) {
      if (t.task_id == task_id) list.push_back(t.ToJson());
    }
    if (list.empty()) {
      return Error(404, "not_found", "run " + run->run_id + " has no task \"" + task_id + "\"");
    }
    return Json(200, {{"task_id", task_id}, {"tries", list}});
  }
  // The latest record of each task (ordered by task id, then try number).
  json list = json::array();
  for (size_t i = 0; i < tries.size(); ++i) {
    if (i + 1 < tries.size() && tries[i + 1].task_id == tries[i].task_id) continue;
    list.push_back(tries[i].ToJson());
  }
  return Json(200, {{"tasks", list}});
}

HttpResponse Api::GetEvents(const HttpRequest& request, const std::string& run_id) {
  StatusOr<RunRecord> run = FindRun(request, run_id);
  if (!run.ok()) return Error(run.status());
  StatusOr<std::vector<Event>> stored = store_->ListEvents(run->dag_id, run->run_id);
  if (!stored.ok()) return Error(stored.status());
  json events = json::array();
  for (const Event& e : *stored) events.push_back(e.ToJson());
  return Json(200, {{"events", events}});
}

HttpResponse Api::GetLog(const HttpRequest& request, const std::string& run_id,
                         const std::string& task_id) {
  StatusOr<RunRecord> run = FindRun(request, run_id);
  if (!run.ok()) return Error(run.status());
  auto wanted = QueryNumber(request, "try", 0, 100000);
  if (auto* error = std::get_if<HttpResponse>(&wanted)) return *error;
  StatusOr<TryRecord> chosen = store_->FindTry(run->dag_id, run->run_id, task_id,
                                               static_cast<int>(std::get<size_t>(wanted)));
  if (!chosen.ok()) return Error(404, "not_found", chosen.status().message());
  // A range of the file: ?offset=N (bytes) lets a client follow a log by polling.
  auto offset_or = QueryNumber(request, "offset", 0, std::numeric_limits<uint32_t>::max());
  if (auto* error = std::get_if<HttpResponse>(&offset_or)) return *error;
  const size_t offset = std::get<size_t>(offset_or);
  std::string text;
  if (std::FILE* f = std::fopen(chosen->log_path.c_str(), "rb")) {
    if (std::fseek(f, static_cast<long>(offset), SEEK_SET) == 0) {
      char buf[65536];
      for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0 && text.size() < (8u << 20);)
        text.append(buf, n);
    }
    std::fclose(f);
  }
  // The try's state as this process knows it now: the store may lag by one loop turn.
  const bool ended = IsTerminal(chosen->state) || chosen->state == TaskState::kUpForRetry;
  return Json(200, {{"task_id", task_id},
                    {"try_number", chosen->try_number},
                    {"state", TaskStateName(chosen->state)},
                    {"ended", ended},
                    {"offset", offset},
                    {"next_offset", offset + text.size()},
                    {"text", text}});
}

HttpResponse Api::CreateBackfill(const std::string& dag_id, const HttpRequest& request,
                                 const Caller& caller) {
  auto parsed = ParseBody(request, {{"from", json::value_t::string, "an ISO 8601 time"},
                                    {"to", json::value_t::string, "an ISO 8601 time"},
                                    {"reprocess", json::value_t::string, "none, failed or all"},
                                    {"max_active_runs", json::value_t::number_integer, "a number"},
                                    {"dry_run", json::value_t::boolean, "true or false"}});
  if (auto* error = std::get_if<HttpResponse>(&parsed)) return *error;
  const json& body = std::get<json>(parsed);
  Scheduler::BackfillRequest backfill;
  backfill.dag_id = dag_id;
  for (const char* field : {"from", "to"}) {
    if (!body.contains(field)) {
      return Error(400, "bad_request",
                   std::string("field \"") + field + "\" is required (an ISO 8601 time)");
    }
    std::optional<std::chrono::sys_seconds> t = ParseTimeUtc(body[field]);
    if (!t) {
      return Error(400, "bad_request",
                   std::string(field) + " \"" + body[field].get<std::string>() +
                       "\" is not an ISO 8601 time (e.g. 2026-01-01T00:00:00Z)");
    }
    (std::string(field) == "from" ? backfill.from : backfill.to) = *t;
    // A bare date (2026-11-13) means that whole day in the DAG's time zone.
    const std::string& text = body[field].get_ref<const std::string&>();
    const bool date_only = text.size() == 10 && text[4] == '-' && text[7] == '-';
    (std::string(field) == "from" ? backfill.from_is_date : backfill.to_is_date) = date_only;
  }
  backfill.reprocess = body.value("reprocess", "none");
  backfill.max_active_runs = body.value("max_active_runs", 0);
  backfill.dry_run = body.value("dry_run", false);
  backfill.actor = caller.actor;
  StatusOr<json> created = scheduler_->CreateBackfill(backfill);
  if (!created.ok()) return Error(created.status());
  if (!backfill.dry_run) {
    Status durable = runner_->Sync();
    if (!durable.ok()) return Error(durable);
  }
  return Json(backfill.dry_run ? 200 : 201, {{"backfill", *created}});
}

HttpResponse Api::Tokens(const HttpRequest& request, const std::vector<std::string>& p,
                         const Caller& caller) {
  const std::string& m = request.method;
  if (p.size() == 1 && m == "GET") {
    json list = json::array();
    for (const TokenInfo& t : tokens_->List()) {
      list.push_back({{"name", t.name},
                      {"role", RoleName(t.role)},
                      {"created_at", t.created_at},
                      {"created_by", t.created_by}});
    }
    return Json(200, {{"tokens", list}});
  }
  if (p.size() == 1 && m == "POST") {
    auto parsed =
        ParseBody(request, {{"name", json::value_t::string, "a string"},
                            {"role", json::value_t::string, "viewer, operator or admin"}});
    if (auto* error = std::get_if<HttpResponse>(&parsed)) return *error;
    const json& body = std::get<json>(parsed);
    if (!body.contains("name")) return Error(400, "bad_request", "field \"name\" is required");
    const std::string role_name = body.value("role", "viewer");
    std::optional<Role> role = ParseRole(role_name);
    if (!role) {
      return Error(400, "bad_request",
                   "role \"" + role_name + "\" is not viewer, operator or admin");
    }
    StatusOr<std::string> secret = tokens_->Create(body["name"], *role, caller.actor);
    if (!secret.ok()) return Error(secret.status());
    return Json(201, {{"name", body["name"]}, {"role", role_name}, {"token", *secret}});
  }
  if (p.size() == 2 && m == "DELETE") {
    Status s = tokens_->Revoke(p[1], caller.actor);
    if (!s.ok()) return Error(s);
    return Json(200, {{"revoked", p[1]}});
  }
  return Error(405, "method_not_allowed",
               m + " " + request.path +
                   " is not supported; use GET or POST /api/v1/tokens, DELETE /api/v1/tokens/NAME");
}

HttpResponse Api::RenderMetrics() {
  if (on_scrape_) on_scrape_(metrics_);
  return {200, "text/plain; version=0.0.4", metrics_->Render()};
}

// ---------------------------------------------------------------------------------------------
// MLOps: artifacts, run metrics and comparison, the model registry

HttpResponse Api::Mlops(const HttpRequest& request, const std::vector<std::string>& p,
                        const Caller& caller) {
  const std::string& m = request.method;
  auto only = [&](const char* method) {
    return Error(405, "method_not_allowed",
                 m + " " + request.path + " is not supported; use " + method);
  };
  auto query = [&](const char* name) {
    auto it = request.query.find(name);
    return it == request.query.end() ? std::string() : it->second;
  };
  const bool get = m == "GET";
  if (p[0] == "runs" && p[1] == "compare") {
    if (!get) return only("GET");
    std::vector<json> tracked;
    const std::string ids = query("runs");
    size_t start = 0;
    while (start < ids.size()) {
      size_t comma = ids.find(',', start);
      if (comma == std::string::npos) comma = ids.size();
      StatusOr<RunRecord> run = FindRun(request, ids.substr(start, comma - start));
      if (!run.ok()) return Error(run.status());
      StatusOr<json> t = RunTracking(*store_, *run, "");
      if (!t.ok()) return Error(t.status());
      tracked.push_back(*std::move(t));
      start = comma + 1;
    }
    if (tracked.size() < 2) {
      return Error(400, "bad_request", "give at least two runs: ?runs=RUN_A,RUN_B");
    }
    return Json(200, CompareRuns(tracked));
  }
  if (p[0] == "runs") {  // runs/{id}/metrics
    if (!get) return only("GET");
    StatusOr<RunRecord> run = FindRun(request, p[1]);
    if (!run.ok()) return Error(run.status());
    StatusOr<json> t = RunTracking(*store_, *run, query("task"));
    return t.ok() ? Json(200, *t) : Error(t.status());
  }
  if (p[0] == "artifacts") {
    if (!get) return only("GET");
    if (p.size() == 1) {
      auto limit = QueryNumber(request, "limit", 50, 1000);
      if (auto* error = std::get_if<HttpResponse>(&limit)) return *error;
      const std::string dag = query("dag_id");
      const std::string run = query("run_id");
      json list = json::array();
      Status read = store_->Scan(Space::kArtifacts, "", [&](const std::string&, const json& a) {
        if ((dag.empty() || a.value("dag_id", "") == dag) &&
            (run.empty() || a.value("run_id", "") == run)) {
          list.push_back(a);
        }
        return true;
      });
      if (!read.ok()) return Error(read);
      std::sort(list.begin(), list.end(), [](const json& a, const json& b) {
        return a.value("created_at", "") > b.value("created_at", "");
      });
      if (list.size() > std::get<size_t>(limit))
        list.erase(list.begin() + static_cast<long>(std::get<size_t>(limit)), list.end());
      return Json(200, {{"artifacts", list}});
    }
    StatusOr<ArtifactRecord> a = FindArtifact(*store_, p[1]);
    if (!a.ok()) return Error(a.status());
    if (p.size() == 2) {
      json body = a->ToJson();
      auto edges = [](const std::vector<LineageEdge>& list) {
        json out = json::array();
        for (const LineageEdge& e : list) {
          out.push_back({{"dag_id", e.dag_id},
                         {"run_id", e.run_id},
                         {"task_id", e.task_id},
                         {"try_number", e.try_number},
                         {"name", e.name}});
        }
        return out;
      };
      StatusOr<std::vector<LineageEdge>> producers = Producers(*store_, a->id);
      if (!producers.ok()) return Error(producers.status());
      StatusOr<std::vector<LineageEdge>> consumers = Consumers(*store_, a->id);
      if (!consumers.ok()) return Error(consumers.status());
      body["produced_by"] = edges(*producers);
      body["read_by"] = edges(*consumers);
      return Json(200, {{"artifact", body}});
    }
    if (p.size() == 3 && p[2] == "lineage") {
      const std::string direction = query("direction");
      if (!direction.empty() && direction != "up" && direction != "down") {
        return Error(400, "bad_request", "direction must be up or down (or absent: both)");
      }
      auto depth = QueryNumber(request, "depth", 0, 1000);
      if (auto* error = std::get_if<HttpResponse>(&depth)) return *error;
      const int d = static_cast<int>(std::get<size_t>(depth));
      json body = json::object();
      if (direction != "down") body["up"] = LineageTree(*store_, a->id, true, d);
      if (direction != "up") body["down"] = LineageTree(*store_, a->id, false, d);
      return Json(200, body);
    }
    return Error(404, "not_found", "no such endpoint: " + request.path + " (see docs/api.md)");
  }
  // models
  ModelRegistry registry(store_);
  if (p.size() == 1) {
    if (!get) return only("GET");
    StatusOr<std::vector<Model>> models = registry.ListModels();
    if (!models.ok()) return Error(models.status());
    json list = json::array();
    for (const Model& model : *models) list.push_back(model.ToJson());
    return Json(200, {{"models", list}});
  }
  const std::string& name = p[1];
  if (p.size() == 2) {
    if (!get) return only("GET");
    StatusOr<Model> model = registry.GetModel(name);
    if (!model.ok()) return Error(model.status());
    StatusOr<std::vector<Event>> events = registry.History(name);
    if (!events.ok()) return Error(events.status());
    json history = json::array();
    for (const Event& e : *events) history.push_back(e.ToJson());
    return Json(200, {{"model", model->ToJson()}, {"history", history}});
  }
  if (p[2] == "versions" && (p.size() == 3 || p.size() == 4)) {
    if (!get) return only("GET");
    if (p.size() == 4) {
      int version = 0;
      try {
        version = std::stoi(p[3]);
      } catch (const std::exception&) {
        return Error(400, "bad_request", "version must be a number, not \"" + p[3] + "\"");
      }
      StatusOr<ModelVersion> v = registry.GetVersion(name, version);
      return v.ok() ? Json(200, {{"version", v->ToJson()}}) : Error(v.status());
    }
    StatusOr<Model> model = registry.GetModel(name);
    if (!model.ok()) return Error(model.status());
    StatusOr<std::vector<ModelVersion>> versions = registry.ListVersions(name);
    if (!versions.ok()) return Error(versions.status());
    json list = json::array();
    for (const ModelVersion& v : *versions) list.push_back(v.ToJson());
    return Json(200, {{"versions", list}});
  }
  if (p[2] == "aliases" && (p.size() == 4 || (p.size() == 5 && p[4] == "rollback"))) {
    if (m != "POST") return only("POST");
    const bool rollback = p.size() == 5;
    auto parsed = rollback
                      ? ParseBody(request, {{"reason", json::value_t::string, "a string"}})
                      : ParseBody(request, {{"version", json::value_t::number_integer, "a number"},
                                            {"reason", json::value_t::string, "a string"}});
    if (auto* error = std::get_if<HttpResponse>(&parsed)) return *error;
    const json& body = std::get<json>(parsed);
    if (!rollback && !body.contains("version")) {
      return Error(400, "bad_request", "the body needs \"version\": the version to promote");
    }
    StatusOr<ModelVersion> v =
        rollback ? registry.Rollback(name, p[3], caller.actor, body.value("reason", ""))
                 : registry.SetAlias(name, p[3], body["version"].get<int>(), caller.actor,
                                     body.value("reason", ""));
    if (!v.ok()) return Error(v.status());
    return Json(200, {{"model", name}, {"alias", p[3]}, {"version", v->ToJson()}});
  }
  return Error(404, "not_found", "no such endpoint: " + request.path + " (see docs/api.md)");
}

}  // namespace sluice
