// The model registry: named models with numbered versions and movable aliases.
//
// A version points to a model artifact (artifacts.h), the try that made it, its metrics and
// tags. An alias ("production", "staging", any name) names one version; moving it is one
// atomic write together with its audit event (who, when, from which version, why), and each
// alias keeps the stack of versions it held, so that a rollback returns to the one before.
//
// Layout (state_store.h, Space::kModels):
//   m/<name>               -> Model (latest version, aliases with their history)
//   v/<name>/<VVVVVVVVVV>  -> ModelVersion (10-digit version)
// Events go to the event log under dag_id "@model", run_id <name> (DAG ids cannot start
// with '@'): kind "model_version" for a registration, "alias" for a move (task_id holds the
// alias), so `ListEvents("@model", name)` is the model's audit trail.
//
// Thread safety: every update holds StateStore::LockForUpdate, so concurrent registrations
// in one process get distinct, consecutive version numbers. Only the process that owns the
// state dir writes (the daemon, or `sluice run`); others go through it.
#ifndef SLUICE_REGISTRY_H_
#define SLUICE_REGISTRY_H_

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sluice/state_store.h"
#include "sluice/status.h"

namespace sluice {

struct ModelVersion {
  std::string name;
  int version = 0;
  std::string artifact;  // the model's artifact id
  std::string dag_id, run_id, task_id;
  int try_number = 0;
  nlohmann::json metrics = nlohmann::json::object();  // name -> number
  nlohmann::json tags = nlohmann::json::object();     // name -> text
  std::string description;
  std::string created_at;
  std::string created_by;

  nlohmann::json ToJson() const;
  static StatusOr<ModelVersion> FromJson(const nlohmann::json& j);
};

struct Model {
  std::string name;
  std::string created_at;
  int latest_version = 0;
  struct Alias {
    int version = 0;
    std::vector<int> history;  // versions it held, oldest first; the last is `version`
    std::string updated_at;
    std::string updated_by;
  };
  std::map<std::string, Alias> aliases;

  nlohmann::json ToJson() const;
  static StatusOr<Model> FromJson(const nlohmann::json& j);
};

// Model and alias names: 1-64 letters, digits, `_ . -`, starting with a letter or digit.
Status CheckModelName(const std::string& name, const char* what);

class ModelRegistry {
 public:
  explicit ModelRegistry(StateStore* store) : store_(store) {}

  struct Registration {
    std::string model;
    std::string artifact;  // must be a recorded artifact
    std::string dag_id, run_id, task_id;
    int try_number = 0;
    nlohmann::json metrics = nlohmann::json::object();
    nlohmann::json tags = nlohmann::json::object();
    std::string description;
    std::string actor;
    std::string alias;   // optional: move this alias to the new version, in the same write
    std::string reason;  // why (kept with the alias move)
  };
  // Adds the next version of `model` (creating the model on its first version).
  StatusOr<ModelVersion> Register(const Registration& registration);

  // Moves `alias` to `version`. FailedPrecondition when it holds that version already.
  StatusOr<ModelVersion> SetAlias(const std::string& model, const std::string& alias, int version,
                                  const std::string& actor, const std::string& reason);
  // Moves `alias` back to the version it held before its current one.
  StatusOr<ModelVersion> Rollback(const std::string& model, const std::string& alias,
                                  const std::string& actor, const std::string& reason);

  StatusOr<Model> GetModel(const std::string& name) const;
  StatusOr<std::vector<Model>> ListModels() const;
  StatusOr<std::vector<ModelVersion>> ListVersions(const std::string& name) const;
  StatusOr<ModelVersion> GetVersion(const std::string& name, int version) const;
  // The version that holds `alias`. NotFound when the model or the alias does not exist.
  StatusOr<ModelVersion> Resolve(const std::string& name, const std::string& alias) const;
  // Registrations and alias moves, oldest first.
  StatusOr<std::vector<Event>> History(const std::string& name) const;

 private:
  StatusOr<ModelVersion> MoveAlias(Model model, const std::string& alias, int version,
                                   bool rollback, const std::string& actor,
                                   const std::string& reason);
  StateStore* store_;
};

}  // namespace sluice

#endif  // SLUICE_REGISTRY_H_
