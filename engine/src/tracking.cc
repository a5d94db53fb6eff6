#include "sluice/tracking.h"

#include <algorithm>
#include <map>

namespace sluice {

using nlohmann::json;

namespace {

// {name: {last, min, max, count, last_step}} over metric points in the order they came.
json Summarize(const json& points) {
  json summary = json::object();
  for (const json& p : points) {
    if (!p.is_object() || !p.contains("name") || !p["value"].is_number()) continue;
    const std::string name = p["name"].get<std::string>();
    const double v = p["value"].get<double>();
    json& s = summary[name];
    if (s.is_null()) {
      s = {{"last", v}, {"min", v}, {"max", v}, {"count", 0}};
    }
    s["last"] = v;
    s["min"] = std::min(s["min"].get<double>(), v);
    s["max"] = std::max(s["max"].get<double>(), v);
    s["count"] = s["count"].get<int64_t>() + 1;
    if (p.contains("step")) s["last_step"] = p["step"];
  }
  return summary;
}

// Flattens an object into "prefix.key" -> value (one level: nested values stay JSON).
void Flatten(const std::string& prefix, const json& object, std::map<std::string, json>* out) {
  if (!object.is_object()) return;
  for (const auto& item : object.items()) (*out)[prefix + "." + item.key()] = item.value();
}

}  // namespace

StatusOr<json> RunTracking(const StateStore& store, const RunRecord& run, const std::string& task) {
  std::map<std::string, TryRecord> latest;
  StatusOr<std::vector<TryRecord>> tries = store.ListTries(run.dag_id, run.run_id);
  if (!tries.ok()) return tries.status();
  for (TryRecord& t : *tries) {
    if (!task.empty() && t.task_id != task) continue;
    // The latest try that was dispatched (not a cleared task's reserved next try).
    if (t.queued_at.empty()) continue;
    auto it = latest.find(t.task_id);
    if (it == latest.end() || t.try_number > it->second.try_number) latest[t.task_id] = t;
  }
  if (!task.empty() && latest.empty()) {
    return Status::NotFound("run " + run.run_id + " has no task \"" + task + "\" that ran");
  }
  json tasks = json::object();
  for (const auto& [id, t] : latest) {
    tasks[id] = {{"try_number", t.try_number},
                 {"state", TaskStateName(t.state)},
                 {"params", t.params},
                 {"tags", t.tags},
                 {"plugin_version", t.plugin_version},
                 {"cached_from", t.cached_from},
                 {"metrics", t.metrics},
                 {"summary", Summarize(t.metrics)}};
  }
  return json{{"dag_id", run.dag_id},
              {"run_id", run.run_id},
              {"state", RunStateName(run.state)},
              {"run_type", run.run_type},
              {"created_at", run.created_at},
              {"params", run.params},
              {"tags", run.tags},
              {"note", run.note},
              {"tasks", std::move(tasks)}};
}

json CompareRuns(const std::vector<json>& runs) {
  const size_t n = runs.size();
  // section -> key -> values per run
  std::map<std::string, std::map<std::string, std::vector<json>>> table;
  auto put = [&](const std::string& section, const std::string& key, size_t i, json value) {
    std::vector<json>& values = table[section][key];
    if (values.empty()) values.resize(n);
    values[i] = std::move(value);
  };
  json heads = json::array();
  for (size_t i = 0; i < n; ++i) {
    const json& r = runs[i];
    heads.push_back({{"dag_id", r.value("dag_id", "")},
                     {"run_id", r.value("run_id", "")},
                     {"state", r.value("state", "")},
                     {"created_at", r.value("created_at", "")}});
    put("run", "state", i, r.value("state", ""));
    if (!r.value("note", "").empty()) put("run", "note", i, r["note"]);
    std::map<std::string, json> flat;
    Flatten("params", r.value("params", json::object()), &flat);
    for (auto& [k, v] : flat) put("param", k, i, v);
    flat.clear();
    Flatten("run", r.value("tags", json::object()), &flat);
    for (auto& [k, v] : flat) put("tag", k, i, v);
    const json tasks = r.value("tasks", json::object());
    for (const auto& [task, t] : tasks.items()) {
      flat.clear();
      Flatten(task, t.value("params", json::object()), &flat);
      for (auto& [k, v] : flat) put("param", k, i, v);
      flat.clear();
      Flatten(task, t.value("tags", json::object()), &flat);
      for (auto& [k, v] : flat) put("tag", k, i, v);
      const json summary = t.value("summary", json::object());
      for (const auto& [name, s] : summary.items()) {
        put("metric", task + "." + name, i, s["last"]);
      }
    }
  }
  json rows = json::array();
  for (const char* section : {"run", "param", "tag", "metric"}) {
    for (auto& [key, values] : table[section]) {
      bool differs = false;
      for (size_t i = 1; i < n; ++i) differs |= values[i] != values[0];
      rows.push_back(
          {{"section", section}, {"key", key}, {"values", values}, {"differs", differs}});
    }
  }
  return {{"runs", std::move(heads)}, {"rows", std::move(rows)}};
}

}  // namespace sluice
