// `sluice models`: the model registry. Reads open the state dir read-only; promote and
// rollback go through the daemon when one owns the state dir (or --server names one), and
// write the state dir directly otherwise.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "client.h"
#include "commands.h"
#include "common.h"
#include "sluice/registry.h"
#include "sluice/state_store.h"

namespace sluice::cli {
namespace {

using nlohmann::json;

struct ModelOptions {
  std::string state_dir;
  std::string name;
  int version = 0;
  std::string alias = "production";
  std::string reason;
  bool json = false;
  std::string server;
  std::string token;
};

int Fail(const std::string& command, const Status& s) {
  return FailCommand("models " + command, s);
}

std::string AliasesOf(const Model& m) {
  std::string text;
  for (const auto& [alias, a] : m.aliases) {
    text += (text.empty() ? "" : ", ") + alias + "=v" + std::to_string(a.version);
  }
  return text.empty() ? "-" : text;
}

std::string MetricsText(const json& metrics) {
  std::string text;
  for (const auto& [k, v] : metrics.items()) {
    char buf[64];
    if (v.is_number()) {
      std::snprintf(buf, sizeof buf, "%.4g", v.get<double>());
    } else {
      std::snprintf(buf, sizeof buf, "%s", v.dump().c_str());
    }
    text += (text.empty() ? "" : " ") + k + "=" + buf;
  }
  return text.empty() ? "-" : text;
}

int List(const ModelOptions& o) {
  auto store = OpenStateStoreReadOnly(o.state_dir);
  if (!store.ok()) return Fail("list", store.status());
  ModelRegistry registry(store->get());
  StatusOr<std::vector<Model>> listed = registry.ListModels();
  if (!listed.ok()) return Fail("list", listed.status());
  const std::vector<Model>& models = *listed;
  if (o.json) {
    json out = json::array();
    for (const Model& m : models) out.push_back(m.ToJson());
    std::printf("%s\n", out.dump(2).c_str());
    return kExitOk;
  }
  if (models.empty()) {
    std::printf("no models registered in %s\n", o.state_dir.c_str());
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {{"MODEL", "LATEST", "ALIASES", "CREATED"}};
  for (const Model& m : models) {
    rows.push_back({m.name, "v" + std::to_string(m.latest_version), AliasesOf(m), m.created_at});
  }
  PrintTable(rows);
  return kExitOk;
}

int Show(const ModelOptions& o) {
  auto store = OpenStateStoreReadOnly(o.state_dir);
  if (!store.ok()) return Fail("show", store.status());
  ModelRegistry registry(store->get());
  StatusOr<Model> model = registry.GetModel(o.name);
  if (!model.ok()) return Fail("show", model.status());
  StatusOr<std::vector<Event>> events = registry.History(o.name);
  if (!events.ok()) return Fail("show", events.status());
  const std::vector<Event>& history = *events;
  if (o.json) {
    json h = json::array();
    for (const Event& e : history) h.push_back(e.ToJson());
    std::printf("%s\n", json{{"model", model->ToJson()}, {"history", h}}.dump(2).c_str());
    return kExitOk;
  }
  std::printf("model %s: %d version%s, created %s\n", model->name.c_str(), model->latest_version,
              model->latest_version == 1 ? "" : "s", model->created_at.c_str());
  std::printf("\naliases:\n");
  if (model->aliases.empty())
    std::printf("  none (sluice models promote %s VERSION --alias production)\n", o.name.c_str());
  for (const auto& [alias, a] : model->aliases) {
    StatusOr<ModelVersion> v = registry.GetVersion(o.name, a.version);
    std::printf("  %-12s v%d  %s  (since %s, by %s)\n", alias.c_str(), a.version,
                v.ok() ? MetricsText(v->metrics).c_str() : "", a.updated_at.c_str(),
                a.updated_by.c_str());
  }
  std::printf("\nhistory:\n");
  std::vector<std::vector<std::string>> rows = {
      {"TIME", "WHAT", "ALIAS", "FROM", "TO", "BY", "WHY"}};
  for (const Event& e : history) {
    rows.push_back({e.time, e.kind == "alias" ? "alias moved" : "registered", e.task_id,
                    e.from.empty() ? "-" : "v" + e.from, "v" + e.to, e.actor,
                    e.reason.empty() ? "-" : e.reason});
  }
  PrintTable(rows);
  return kExitOk;
}

int Versions(const ModelOptions& o) {
  auto store = OpenStateStoreReadOnly(o.state_dir);
  if (!store.ok()) return Fail("versions", store.status());
  ModelRegistry registry(store->get());
  StatusOr<Model> model = registry.GetModel(o.name);
  if (!model.ok()) return Fail("versions", model.status());
  StatusOr<std::vector<ModelVersion>> listed = registry.ListVersions(o.name);
  if (!listed.ok()) return Fail("versions", listed.status());
  std::vector<ModelVersion>& versions = *listed;
  if (o.json) {
    json out = json::array();
    for (const ModelVersion& v : versions) out.push_back(v.ToJson());
    std::printf("%s\n", out.dump(2).c_str());
    return kExitOk;
  }
  std::vector<std::vector<std::string>> rows = {
      {"VERSION", "ALIASES", "METRICS", "ARTIFACT", "MADE BY (dag/run/task#try)", "CREATED"}};
  for (const ModelVersion& v : versions) {
    std::string aliases;
    for (const auto& [alias, a] : model->aliases) {
      if (a.version == v.version) aliases += (aliases.empty() ? "" : ",") + alias;
    }
    rows.push_back(
        {"v" + std::to_string(v.version), aliases.empty() ? "-" : aliases, MetricsText(v.metrics),
         v.artifact.substr(0, 12),
         v.dag_id + "/" + v.run_id + "/" + v.task_id + "#" + std::to_string(v.try_number),
         v.created_at});
  }
  PrintTable(rows);
  return kExitOk;
}

// promote and rollback: through the daemon if there is one, else on the state dir.
int Move(const ModelOptions& o, bool rollback) {
  const std::string command = rollback ? "rollback" : "promote";
  StatusOr<ModelVersion> moved = Status::Internal("unset");
  if (std::optional<ServerTarget> daemon = FindServer(o.server, o.token, o.state_dir)) {
    json body = {{"reason", o.reason}};
    if (!rollback) body["version"] = o.version;
    const std::string path = "/api/v1/models/" + UrlEncode(o.name) + "/aliases/" +
                             UrlEncode(o.alias) + (rollback ? "/rollback" : "");
    StatusOr<ApiReply> reply = CallApi(*daemon, "POST", path, &body);
    if (!reply.ok()) return Fail(command, reply.status());
    if (reply->status >= 400) {
      std::fprintf(stderr, "sluice models %s: %s\n", command.c_str(), ApiErrorText(*reply).c_str());
      return reply->status == 404 || reply->status == 400 ? kExitUsage : kExitFailed;
    }
    moved = ModelVersion::FromJson(reply->body["version"]);
  } else {
    auto store = OpenStateStore(o.state_dir);
    if (!store.ok()) return Fail(command, store.status());
    ModelRegistry registry(store->get());
    const std::string actor = CliActor("sluice models " + command);
    moved = rollback ? registry.Rollback(o.name, o.alias, actor, o.reason)
                     : registry.SetAlias(o.name, o.alias, o.version, actor, o.reason);
  }
  if (!moved.ok()) return Fail(command, moved.status());
  if (o.json) {
    std::printf("%s\n", moved->ToJson().dump(2).c_str());
    return kExitOk;
  }
  std::printf("%s: alias %s -> v%d (%s)\n", o.name.c_str(), o.alias.c_str(), moved->version,
              MetricsText(moved->metrics).c_str());
  return kExitOk;
}

}  // namespace

void AddModelCommands(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<ModelOptions>();
  o->state_dir = DefaultStateDir();
  CLI::App* models = app.add_subcommand(
      "models",
      "The model registry: versions of named models, and aliases (production, staging, ...) "
      "that point to one version each");
  models->require_subcommand(1);
  auto common = [&](CLI::App* cmd) {
    cmd->add_option("--state-dir", o->state_dir,
                    "State directory (default: $SLUICE_STATE_DIR or .sluice)");
    cmd->add_flag("--json", o->json, "Print JSON");
  };
  auto daemon = [&](CLI::App* cmd) {
    cmd->add_option("--server", o->server,
                    "Daemon URL (default: $SLUICE_SERVER, or the "
                    "daemon that owns the state dir)");
    cmd->add_option("--token", o->token, "API token (default: $SLUICE_TOKEN)");
  };
  CLI::App* list = models->add_subcommand("list", "Every model, its latest version and aliases");
  common(list);
  list->callback([o, exit_code] { *exit_code = List(*o); });

  CLI::App* show = models->add_subcommand(
      "show",
      "A model: where its aliases point, and every registration and alias move (who, "
      "when, from which version, why)");
  show->add_option("name", o->name, "Model name")->required();
  common(show);
  show->callback([o, exit_code] { *exit_code = Show(*o); });

  CLI::App* versions = models->add_subcommand(
      "versions", "A model's versions: metrics, artifact, and the run and task that made each");
  versions->add_option("name", o->name, "Model name")->required();
  common(versions);
  versions->callback([o, exit_code] { *exit_code = Versions(*o); });

  CLI::App* promote = models->add_subcommand(
      "promote", "Move an alias to a version (atomically; the move is in the audit log)");
  promote->add_option("name", o->name, "Model name")->required();
  promote->add_option("version", o->version, "Version number")->required();
  promote->add_option("--alias", o->alias, "The alias to move (default: production)");
  promote->add_option("--reason", o->reason, "Why (kept in the audit log)");
  common(promote);
  daemon(promote);
  promote->callback([o, exit_code] { *exit_code = Move(*o, /*rollback=*/false); });

  CLI::App* rollback = models->add_subcommand(
      "rollback", "Move an alias back to the version it held before its current one");
  rollback->add_option("name", o->name, "Model name")->required();
  rollback->add_option("--alias", o->alias, "The alias to move back (default: production)");
  rollback->add_option("--reason", o->reason, "Why (kept in the audit log)");
  common(rollback);
  daemon(rollback);
  rollback->callback([o, exit_code] { *exit_code = Move(*o, /*rollback=*/true); });
  models->footer(
      "Examples:\n"
      "  sluice models list\n"
      "  sluice models versions breast_cancer\n"
      "  sluice models promote breast_cancer 3 --reason \"better AUC\"   (alias: production)\n"
      "  sluice models promote breast_cancer 4 --alias staging\n"
      "  sluice models rollback breast_cancer --reason \"latency\"");
}

}  // namespace sluice::cli
