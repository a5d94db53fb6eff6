#include "sluice/registry.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>

#include "sluice/executor.h"

namespace sluice {

using nlohmann::json;

namespace {

constexpr const char* kModelEvents = "@model";

std::string ModelKey(const std::string& name) { return "m/" + name; }
std::string VersionKey(const std::string& name, int version) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%010d", version);
  return "v/" + name + "/" + buf;
}

std::string Now() { return FormatTimestamp(std::chrono::system_clock::now()); }

}  // namespace

Status CheckModelName(const std::string& name, const char* what) {
  const bool valid =
      !name.empty() && name.size() <= 64 && std::isalnum(static_cast<unsigned char>(name[0])) &&
      std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
      });
  if (valid) return Status::Ok();
  return Status::InvalidArgument(std::string(what) + " \"" + name +
                                 "\" is not valid: use 1-64 letters, digits, _ . or -, "
                                 "starting with a letter or digit");
}

json ModelVersion::ToJson() const {
  return {{"name", name},
          {"version", version},
          {"artifact", artifact},
          {"dag_id", dag_id},
          {"run_id", run_id},
          {"task_id", task_id},
          {"try_number", try_number},
          {"metrics", metrics},
          {"tags", tags},
          {"description", description},
          {"created_at", created_at},
          {"created_by", created_by}};
}

StatusOr<ModelVersion> ModelVersion::FromJson(const json& j) {
  try {
    ModelVersion v;
    v.name = j.at("name").get<std::string>();
    v.version = j.at("version").get<int>();
    v.artifact = j.value("artifact", "");
    v.dag_id = j.value("dag_id", "");
    v.run_id = j.value("run_id", "");
    v.task_id = j.value("task_id", "");
    v.try_number = j.value("try_number", 0);
    v.metrics = j.value("metrics", json::object());
    v.tags = j.value("tags", json::object());
    v.description = j.value("description", "");
    v.created_at = j.value("created_at", "");
    v.created_by = j.value("created_by", "");
    return v;
  } catch (const json::exception& e) {
    return Status::Corruption(std::string("malformed model version: ") + e.what());
  }
}

json Model::ToJson() const {
  json a = json::object();
  for (const auto& [alias, state] : aliases) {
    a[alias] = {{"version", state.version},
                {"history", state.history},
                {"updated_at", state.updated_at},
                {"updated_by", state.updated_by}};
  }
  return {{"name", name},
          {"created_at", created_at},
          {"latest_version", latest_version},
          {"aliases", std::move(a)}};
}

StatusOr<Model> Model::FromJson(const json& j) {
  try {
    Model m;
    m.name = j.at("name").get<std::string>();
    m.created_at = j.value("created_at", "");
    m.latest_version = j.value("latest_version", 0);
    const json aliases = j.value("aliases", json::object());
    for (const auto& [alias, state] : aliases.items()) {
      Model::Alias a;
      a.version = state.at("version").get<int>();
      a.history = state.value("history", std::vector<int>{});
      a.updated_at = state.value("updated_at", "");
      a.updated_by = state.value("updated_by", "");
      m.aliases[alias] = std::move(a);
    }
    return m;
  } catch (const json::exception& e) {
    return Status::Corruption(std::string("malformed model record: ") + e.what());
  }
}

StatusOr<Model> ModelRegistry::GetModel(const std::string& name) const {
  StatusOr<json> j = store_->Get(Space::kModels, ModelKey(name));
  if (!j.ok()) {
    if (j.status().code() == Status::Code::kNotFound) {
      return Status::NotFound("no model \"" + name + "\" (`sluice models list` shows them)");
    }
    return j.status();
  }
  return Model::FromJson(*j);
}

StatusOr<std::vector<Model>> ModelRegistry::ListModels() const {
  std::vector<Model> models;
  SLUICE_RETURN_IF_ERROR(
      store_->Scan(Space::kModels, "m/", [&](const std::string&, const json& value) {
        StatusOr<Model> m = Model::FromJson(value);
        if (m.ok()) models.push_back(*std::move(m));
        return true;
      }));
  return models;
}

StatusOr<std::vector<ModelVersion>> ModelRegistry::ListVersions(const std::string& name) const {
  std::vector<ModelVersion> versions;
  SLUICE_RETURN_IF_ERROR(
      store_->Scan(Space::kModels, "v/" + name + "/", [&](const std::string&, const json& value) {
        StatusOr<ModelVersion> v = ModelVersion::FromJson(value);
        if (v.ok()) versions.push_back(*std::move(v));
        return true;
      }));
  return versions;
}

StatusOr<ModelVersion> ModelRegistry::GetVersion(const std::string& name, int version) const {
  StatusOr<json> j = store_->Get(Space::kModels, VersionKey(name, version));
  if (!j.ok()) {
    if (j.status().code() != Status::Code::kNotFound) return j.status();
    SLUICE_RETURN_IF_ERROR(GetModel(name).status());
    return Status::NotFound("model \"" + name + "\" has no version " + std::to_string(version) +
                            " (`sluice models versions " + name + "` lists them)");
  }
  return ModelVersion::FromJson(*j);
}

StatusOr<ModelVersion> ModelRegistry::Resolve(const std::string& name,
                                              const std::string& alias) const {
  StatusOr<Model> model = GetModel(name);
  if (!model.ok()) return model.status();
  auto it = model->aliases.find(alias);
  if (it == model->aliases.end()) {
    return Status::NotFound("model \"" + name + "\" has no alias \"" + alias + "\"");
  }
  return GetVersion(name, it->second.version);
}

StatusOr<std::vector<Event>> ModelRegistry::History(const std::string& name) const {
  return store_->ListEvents(kModelEvents, name);
}

StatusOr<ModelVersion> ModelRegistry::Register(const Registration& r) {
  SLUICE_RETURN_IF_ERROR(CheckModelName(r.model, "model name"));
  if (!r.alias.empty()) SLUICE_RETURN_IF_ERROR(CheckModelName(r.alias, "alias"));
  if (!r.metrics.is_object()) return Status::InvalidArgument("metrics must be an object");
  for (const auto& [k, v] : r.metrics.items()) {
    if (!v.is_number()) {
      return Status::InvalidArgument("metric \"" + k + "\" must be a number, got " + v.dump());
    }
  }
  if (!r.tags.is_object()) return Status::InvalidArgument("tags must be an object");
  if (!store_->Has(Space::kArtifacts, r.artifact)) {
    return Status::NotFound("no artifact " + r.artifact +
                            "; a model version must point to an artifact a task produced");
  }
  std::unique_lock<std::mutex> lock = store_->LockForUpdate();
  Model model;
  StatusOr<Model> existing = GetModel(r.model);
  if (existing.ok()) {
    model = *std::move(existing);
  } else if (existing.status().code() == Status::Code::kNotFound) {
    model.name = r.model;
    model.created_at = Now();
  } else {
    return existing.status();
  }
  ModelVersion v;
  v.name = r.model;
  v.version = model.latest_version + 1;
  v.artifact = r.artifact;
  v.dag_id = r.dag_id;
  v.run_id = r.run_id;
  v.task_id = r.task_id;
  v.try_number = r.try_number;
  v.metrics = r.metrics;
  v.tags = r.tags;
  v.description = r.description;
  v.created_at = Now();
  v.created_by = r.actor;
  model.latest_version = v.version;

  StateStore::Batch batch;
  Event e;
  e.time = v.created_at;
  e.dag_id = kModelEvents;
  e.run_id = r.model;
  e.kind = "model_version";
  e.to = std::to_string(v.version);
  e.reason = r.run_id.empty() ? "registered"
                              : "registered from " + r.dag_id + "/" + r.run_id + "/" + r.task_id +
                                    "#" + std::to_string(r.try_number);
  e.actor = r.actor;
  batch.AddEvent(std::move(e));
  if (!r.alias.empty()) {
    Model::Alias& a = model.aliases[r.alias];
    Event move;
    move.time = v.created_at;
    move.dag_id = kModelEvents;
    move.run_id = r.model;
    move.task_id = r.alias;
    move.kind = "alias";
    move.from = a.version > 0 ? std::to_string(a.version) : "";
    move.to = std::to_string(v.version);
    move.reason = r.reason;
    move.actor = r.actor;
    batch.AddEvent(std::move(move));
    a.version = v.version;
    a.history.push_back(v.version);
    a.updated_at = v.created_at;
    a.updated_by = r.actor;
  }
  batch.Put(Space::kModels, VersionKey(r.model, v.version), v.ToJson());
  batch.Put(Space::kModels, ModelKey(r.model), model.ToJson());
  SLUICE_RETURN_IF_ERROR(store_->Commit(&batch));
  return v;
}

StatusOr<ModelVersion> ModelRegistry::MoveAlias(Model model, const std::string& alias, int version,
                                                bool rollback, const std::string& actor,
                                                const std::string& reason) {
  StatusOr<ModelVersion> target = GetVersion(model.name, version);
  if (!target.ok()) return target.status();
  Model::Alias& a = model.aliases[alias];
  const int from = a.version;
  if (rollback) {
    a.history.pop_back();
  } else {
    if (from == version) {
      return Status::FailedPrecondition("alias \"" + alias + "\" of model \"" + model.name +
                                        "\" is on version " + std::to_string(version) + " already");
    }
    a.history.push_back(version);
  }
  a.version = version;
  a.updated_at = Now();
  a.updated_by = actor;

  StateStore::Batch batch;
  Event e;
  e.time = a.updated_at;
  e.dag_id = kModelEvents;
  e.run_id = model.name;
  e.task_id = alias;
  e.kind = "alias";
  e.from = from > 0 ? std::to_string(from) : "";
  e.to = std::to_string(version);
  e.reason = rollback ? "rollback" + (reason.empty() ? std::string() : ": " + reason) : reason;
  e.actor = actor;
  batch.AddEvent(std::move(e));
  batch.Put(Space::kModels, ModelKey(model.name), model.ToJson());
  SLUICE_RETURN_IF_ERROR(store_->Commit(&batch));
  return target;
}

StatusOr<ModelVersion> ModelRegistry::SetAlias(const std::string& name, const std::string& alias,
                                               int version, const std::string& actor,
                                               const std::string& reason) {
  SLUICE_RETURN_IF_ERROR(CheckModelName(alias, "alias"));
  std::unique_lock<std::mutex> lock = store_->LockForUpdate();
  StatusOr<Model> model = GetModel(name);
  if (!model.ok()) return model.status();
  return MoveAlias(*std::move(model), alias, version, /*rollback=*/false, actor, reason);
}

StatusOr<ModelVersion> ModelRegistry::Rollback(const std::string& name, const std::string& alias,
                                               const std::string& actor,
                                               const std::string& reason) {
  std::unique_lock<std::mutex> lock = store_->LockForUpdate();
  StatusOr<Model> model = GetModel(name);
  if (!model.ok()) return model.status();
  auto it = model->aliases.find(alias);
  if (it == model->aliases.end()) {
    return Status::NotFound("model \"" + name + "\" has no alias \"" + alias + "\"");
  }
  const std::vector<int>& history = it->second.history;
  if (history.size() < 2) {
    return Status::FailedPrecondition("alias \"" + alias + "\" of model \"" + name +
                                      "\" has held only version " +
                                      std::to_string(it->second.version) +
                                      "; there is nothing to roll back to (promote a version "
                                      "instead)");
  }
  const int previous = history[history.size() - 2];
  return MoveAlias(*std::move(model), alias, previous, /*rollback=*/true, actor, reason);
}

}  // namespace sluice
