// Plugin host: finds plugin libraries, loads them with Boost.DLL, checks the ABI handshake
// and the manifest, and runs steps.
//
// Loading a plugin runs its code, so the functions here that load libraries (ScanPlugins,
// PluginLibrary::Load) are called in worker processes only, never in the scheduler or the
// `sluice run` process. Those processes see plugins through a PluginCatalog, which a worker
// produces and sends as JSON.
//
// Thread safety: PluginCatalog is a value. A PluginLibrary may run one step at a time.
#ifndef SLUICE_PLUGIN_HOST_H_
#define SLUICE_PLUGIN_HOST_H_

#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sluice/status.h"

struct sluice_plugin;

namespace sluice {

struct ParamManifest {
  std::string name;
  std::string type;  // string | integer | number | boolean | array | object | any
  bool required = false;
  nlohmann::json default_value;
  std::string doc;
};

struct StepManifest {
  std::string name;  // "core.shell"
  std::string description;
  bool cacheable = true;
  bool any_inputs = false;  // takes inputs of any name, besides the declared ones
  bool any_params = false;  // takes params of any name, besides the declared ones
  // Params whose value names files (a path or a list of paths, relative to the DAG folder)
  // whose content is part of the step's cache key: a script and the code it imports.
  std::vector<std::string> code_params;
  // A code param's file when the task leaves it out (python's default interpreter).
  std::map<std::string, std::string> code_defaults;
  // For a step whose script declares its own params (python.function): the task params
  // naming the script and the function, and the reader command that prints the script's
  // declaration (see script_manifest.h). Empty `script_manifest_command`: none.
  std::string script_manifest_param;
  std::string script_manifest_function_param;
  std::vector<std::string> script_manifest_command;
  std::vector<ParamManifest> params;
  struct Input {
    std::string name;
    std::string doc;
    bool required = true;
  };
  std::vector<Input> inputs;
  struct Output {
    std::string name;
    std::string kind;  // file | dir | value
    std::string doc;
  };
  std::vector<Output> outputs;

  const ParamManifest* FindParam(const std::string& param) const;
};

// A predictor (ABI 1.2): serves models that a step of the plugin wrote.
struct PredictorManifest {
  std::string name;  // "train.xgboost"
  std::string description;
};

struct PluginManifest {
  std::string name;     // "core"
  std::string version;  // "1.0.0"
  std::string description;
  std::string file;  // the .so it came from
  uint32_t abi_major = 0;
  uint32_t abi_minor = 0;
  std::vector<StepManifest> steps;
  std::vector<PredictorManifest> predictors;
};

// Parses and checks a manifest's JSON; `plugin_name` is the name from the ABI table.
StatusOr<PluginManifest> ParsePluginManifest(const std::string& json_text,
                                             const std::string& plugin_name);

// Every plugin found in a set of folders, and every library that was refused.
struct PluginCatalog {
  std::vector<PluginManifest> plugins;
  struct Problem {
    std::string file;
    std::string message;  // why the library was refused, and what to do
  };
  std::vector<Problem> problems;
  std::vector<std::string> dirs;  // the folders searched, in order

  // The plugin that has `step`, or null. Step names are unique in a catalog.
  const PluginManifest* FindPluginOfStep(const std::string& step) const;
  const PluginManifest* FindPluginOfPredictor(const std::string& predictor) const;
  const StepManifest* FindStep(const std::string& step) const;
  std::vector<std::string> StepNames() const;

  nlohmann::json ToJson() const;
  static StatusOr<PluginCatalog> FromJson(const nlohmann::json& json);
};

// The folders plugins are searched in, in order: `extra` (command-line --plugin-dir), each
// entry of $SLUICE_PLUGIN_PATH (colon-separated), $HOME/.local/lib/sluice/plugins, and
// `<folder of the sluice binary>/../lib/sluice/plugins` (the build tree and installs alike).
std::vector<std::string> PluginSearchPath(const std::vector<std::string>& extra);

// WORKER ONLY. Loads every *.so in `dirs` (not recursive) and catalogs it. A library that
// fails to load or to pass the handshake is listed in `problems` with the reason; so is a
// plugin or step name that an earlier library already has (the first one wins). Missing
// folders are skipped. `before_load`, when given, is told each library before it is loaded
// and may return false to skip it (the engine uses this to step over a library that crashed
// an earlier scan).
PluginCatalog ScanPlugins(const std::vector<std::string>& dirs,
                          const std::function<bool(const std::string&)>& before_load = {});

// What the engine offers a step while it runs (see sluice_host in plugin_abi.h).
class StepHost {
 public:
  virtual ~StepHost() = default;
  virtual void Log(int level, std::string_view message) = 0;
  virtual void Metric(const std::string& name, double value, int64_t step) = 0;
  virtual bool Cancelled() = 0;
  // kind: SLUICE_OUTPUT_*; returns false (after logging why) to refuse.
  virtual bool Output(const std::string& name, int kind, const std::string& data) = 0;
  // A synchronous request to the engine (sluice_host.call): true and the JSON result in
  // *response, or false and an error message in it.
  virtual bool Call(const std::string& method, const std::string& request, std::string* response) {
    (void)method;
    (void)request;
    *response = "this host offers no services";
    return false;
  }
};

struct StepResult {
  int code = 0;  // SLUICE_RESULT_*
  std::string message;
};

// WORKER ONLY. One loaded plugin library; stays loaded while this object lives.
class PluginLibrary {
 public:
  // Loads `path` and checks the handshake and the manifest. Errors say which file and why.
  static StatusOr<std::unique_ptr<PluginLibrary>> Load(const std::string& path);
  ~PluginLibrary();

  const PluginManifest& manifest() const { return manifest_; }

  // Runs `step` with `request_json` (see sluice_plugin.run). A result code outside the ABI's
  // set counts as a failure.
  StepResult Run(const std::string& step, const std::string& request_json, StepHost* host);

  // A model loaded by one of the plugin's predictors (ABI 1.2). MUST NOT outlive the
  // library. Not thread-safe: one Predict at a time.
  class LoadedModel {
   public:
    ~LoadedModel();
    LoadedModel(const LoadedModel&) = delete;
    LoadedModel& operator=(const LoadedModel&) = delete;
    // Returns SLUICE_PREDICT_OK, _BAD_REQUEST or _FAILED; *response is the JSON answer or
    // the error message.
    int Predict(const std::string& request_json, std::string* response);

   private:
    friend class PluginLibrary;
    LoadedModel(const sluice_plugin* table, void* handle) : table_(table), handle_(handle) {}
    const sluice_plugin* table_;
    void* handle_;
  };
  // Loads (and warms up) `model_dir` with `predictor`. Errors name the folder and why.
  StatusOr<std::unique_ptr<LoadedModel>> LoadModel(const std::string& predictor,
                                                   const std::string& model_dir);

 private:
  PluginLibrary();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  PluginManifest manifest_;
};

}  // namespace sluice

#endif  // SLUICE_PLUGIN_HOST_H_
