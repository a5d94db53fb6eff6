// `sluice plugins list` and `sluice plugins show`.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "commands.h"
#include "common.h"
#include "sluice/suggest.h"

namespace sluice::cli {
namespace {

using nlohmann::json;

struct PluginOptions {
  std::vector<std::string> plugin_dirs;
  std::string name;
  bool json = false;
};

void PrintProblems(const PluginCatalog& catalog) {
  for (const auto& p : catalog.problems)
    std::fprintf(stderr, "warning: plugin refused: %s\n", p.message.c_str());
}

int List(const PluginOptions& o) {
  StatusOr<PluginCatalog> catalog = LoadPluginCatalog(o.plugin_dirs);
  if (!catalog.ok()) {
    std::fprintf(stderr, "sluice plugins list: %s\n", catalog.status().message().c_str());
    return kExitFailed;
  }
  if (o.json) {
    std::printf("%s\n", catalog->ToJson().dump(2).c_str());
    return catalog->problems.empty() ? kExitOk : kExitFailed;
  }
  PrintProblems(*catalog);
  std::vector<std::vector<std::string>> rows = {{"STEP", "PLUGIN", "VERSION", "DESCRIPTION"}};
  for (const PluginManifest& p : catalog->plugins) {
    for (const StepManifest& s : p.steps)
      rows.push_back({s.name, p.name, p.version, s.description});
  }
  if (rows.size() == 1) {
    std::printf("no plugins found; searched:\n");
  } else {
    PrintTable(rows);
    std::printf("\nsearched:\n");
  }
  for (const std::string& d : catalog->dirs) std::printf("  %s\n", d.c_str());
  return catalog->problems.empty() ? kExitOk : kExitFailed;
}

void PrintStep(const StepManifest& s) {
  std::printf("\n%s%s%s\n", s.name.c_str(), s.description.empty() ? "" : " - ",
              s.description.c_str());
  if (!s.cacheable) std::printf("  not cacheable (it has effects beyond its outputs)\n");
  if (!s.params.empty()) {
    std::printf("  params:\n");
    for (const ParamManifest& p : s.params) {
      std::string detail =
          p.type + (p.required ? ", required" : ", default " + p.default_value.dump());
      std::printf("    %-16s %s\n", p.name.c_str(), detail.c_str());
      if (!p.doc.empty()) std::printf("    %-16s %s\n", "", p.doc.c_str());
    }
  }
  if (!s.inputs.empty()) {
    std::printf("  inputs:\n");
    for (const auto& i : s.inputs) {
      std::printf("    %-16s %s%s\n", i.name.c_str(), i.doc.c_str(),
                  i.required ? "" : " (optional)");
    }
  }
  if (!s.outputs.empty()) {
    std::printf("  outputs:\n");
    for (const auto& out : s.outputs)
      std::printf("    %-16s %s: %s\n", out.name.c_str(), out.kind.c_str(), out.doc.c_str());
  }
}

int Show(const PluginOptions& o) {
  StatusOr<PluginCatalog> catalog = LoadPluginCatalog(o.plugin_dirs);
  if (!catalog.ok()) {
    std::fprintf(stderr, "sluice plugins show: %s\n", catalog.status().message().c_str());
    return kExitFailed;
  }
  const PluginManifest* plugin = nullptr;
  const StepManifest* only = catalog->FindStep(o.name);
  if (only != nullptr) plugin = catalog->FindPluginOfStep(o.name);
  for (const PluginManifest& p : catalog->plugins) {
    if (p.name == o.name) plugin = &p;
  }
  if (plugin == nullptr) {
    std::vector<std::string> names = catalog->StepNames();
    for (const PluginManifest& p : catalog->plugins) names.push_back(p.name);
    std::string hint = DidYouMean(o.name, names);
    std::fprintf(stderr, "sluice plugins show: no plugin or step \"%s\"%s%s\n", o.name.c_str(),
                 hint.empty() ? "; `sluice plugins list` shows what is installed" : "; ",
                 hint.c_str());
    return kExitUsage;
  }
  if (o.json) {
    // Held by name: iterating a member of the temporary ToJson() read freed memory (and
    // printed nothing).
    const json all = catalog->ToJson();
    for (const json& p : all["plugins"]) {
      if (p["name"] != plugin->name) continue;
      if (only == nullptr) {
        std::printf("%s\n", p.dump(2).c_str());
        return kExitOk;
      }
      for (const json& step : p["steps"]) {
        if (step["name"] == only->name) {
          std::printf("%s\n", step.dump(2).c_str());
          return kExitOk;
        }
      }
    }
    return kExitFailed;
  }
  std::printf("plugin %s %s (ABI %u.%u)\n  %s\n  file: %s\n", plugin->name.c_str(),
              plugin->version.c_str(), plugin->abi_major, plugin->abi_minor,
              plugin->description.c_str(), plugin->file.c_str());
  for (const StepManifest& s : plugin->steps) {
    if (only == nullptr || only->name == s.name) PrintStep(s);
  }
  if (only == nullptr && !plugin->predictors.empty()) {
    std::printf("\npredictors (model serving, docs/serving.md):\n");
    for (const PredictorManifest& p : plugin->predictors) {
      std::printf("  %-20s %s\n", p.name.c_str(), p.description.c_str());
    }
  }
  return kExitOk;
}

}  // namespace

void AddPluginCommands(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<PluginOptions>();
  CLI::App* plugins =
      app.add_subcommand("plugins", "Inspect the installed plugins and their steps");
  plugins->require_subcommand(1);
  plugins->footer(
      "Plugins are *.so files found in: --plugin-dir folders, $SLUICE_PLUGIN_PATH "
      "(colon-separated),\n"
      "~/.local/lib/sluice/plugins, and lib/sluice/plugins next to the sluice binary's folder.");

  CLI::App* list = plugins->add_subcommand(
      "list",
      "List every step of every plugin found, and any library that was refused (exit 1 then)");
  list->add_option("--plugin-dir", o->plugin_dirs, "Also search this folder (first)");
  list->add_flag("--json", o->json, "Print the catalog as JSON");
  list->callback([o, exit_code] { *exit_code = List(*o); });

  CLI::App* show = plugins->add_subcommand(
      "show", "Show a plugin's manifest, or one step's (params, inputs, outputs)");
  show->add_option("name", o->name, "Plugin name (core) or step name (core.shell)")->required();
  show->add_option("--plugin-dir", o->plugin_dirs, "Also search this folder (first)");
  show->add_flag("--json", o->json, "Print JSON");
  show->callback([o, exit_code] { *exit_code = Show(*o); });
}

}  // namespace sluice::cli
