#include "sluice/plugin_host.h"

#define BOOST_DLL_USE_STD_FS
#include <unistd.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>

#include "sluice/plugin_abi.h"

namespace sluice {

using nlohmann::json;

const ParamManifest* StepManifest::FindParam(const std::string& param) const {
  for (const ParamManifest& p : params) {
    if (p.name == param) return &p;
  }
  return nullptr;
}

namespace {

const std::set<std::string> kParamTypes = {"string", "integer", "number", "boolean",
                                           "array",  "object",  "any"};
const std::set<std::string> kOutputKinds = {"file", "dir", "value"};

std::string StringField(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

StatusOr<PluginManifest> ParsePluginManifest(const std::string& json_text,
                                             const std::string& plugin_name) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    return Status::InvalidArgument(std::string("manifest is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) return Status::InvalidArgument("manifest is not a JSON object");
  PluginManifest m;
  m.name = StringField(j, "name");
  m.version = StringField(j, "version");
  m.description = StringField(j, "description");
  if (m.name != plugin_name) {
    return Status::InvalidArgument("manifest names the plugin \"" + m.name +
                                   "\" but its ABI table says \"" + plugin_name + "\"");
  }
  if (!j.contains("steps") || !j["steps"].is_array() || j["steps"].empty()) {
    return Status::InvalidArgument(
        "manifest has no \"steps\" array (a plugin needs one step or more)");
  }
  std::set<std::string> seen;
  for (const json& s : j["steps"]) {
    if (!s.is_object()) return Status::InvalidArgument("manifest: a step is not an object");
    StepManifest step;
    step.name = StringField(s, "name");
    step.description = StringField(s, "description");
    step.cacheable = s.value("cacheable", true);
    step.any_inputs = s.value("any_inputs", false);
    step.any_params = s.value("any_params", false);
    if (s.contains("code_params") && s["code_params"].is_array()) {
      for (const json& name : s["code_params"]) {
        if (name.is_string()) step.code_params.push_back(name.get<std::string>());
      }
    }
    if (s.contains("code_defaults") && s["code_defaults"].is_object()) {
      for (const auto& [name, file] : s["code_defaults"].items()) {
        if (file.is_string()) step.code_defaults[name] = file.get<std::string>();
      }
    }
    if (s.contains("script_manifest") && s["script_manifest"].is_object()) {
      const json& sm = s["script_manifest"];
      step.script_manifest_param = StringField(sm, "script");
      step.script_manifest_function_param = StringField(sm, "function");
      if (sm.contains("command") && sm["command"].is_array()) {
        for (const json& arg : sm["command"]) {
          if (arg.is_string()) step.script_manifest_command.push_back(arg.get<std::string>());
        }
      }
    }
    if (step.name.rfind(m.name + ".", 0) != 0 || step.name.size() <= m.name.size() + 1) {
      return Status::InvalidArgument("manifest: step \"" + step.name + "\" must be named \"" +
                                     m.name + ".<step>\"");
    }
    if (!seen.insert(step.name).second) {
      return Status::InvalidArgument("manifest: step \"" + step.name + "\" is listed twice");
    }
    for (const json& p : s.value("params", json::array())) {
      ParamManifest param;
      param.name = StringField(p, "name");
      param.type = p.contains("type") ? StringField(p, "type") : "any";
      param.required = p.value("required", false);
      param.default_value = p.value("default", json());
      param.doc = StringField(p, "doc");
      if (param.name.empty()) {
        return Status::InvalidArgument("manifest: step \"" + step.name +
                                       "\" has a param without a name");
      }
      if (!kParamTypes.count(param.type)) {
        return Status::InvalidArgument("manifest: param \"" + param.name + "\" of step \"" +
                                       step.name + "\" has unknown type \"" + param.type + "\"");
      }
      step.params.push_back(std::move(param));
    }
    for (const json& i : s.value("inputs", json::array())) {
      step.inputs.push_back(
          {StringField(i, "name"), StringField(i, "doc"), i.value("required", true)});
    }
    for (const json& o : s.value("outputs", json::array())) {
      StepManifest::Output out{StringField(o, "name"), StringField(o, "kind"),
                               StringField(o, "doc")};
      if (!kOutputKinds.count(out.kind)) {
        return Status::InvalidArgument("manifest: output \"" + out.name + "\" of step \"" +
                                       step.name + "\" has unknown kind \"" + out.kind + "\"");
      }
      step.outputs.push_back(std::move(out));
    }
    m.steps.push_back(std::move(step));
  }
  for (const json& p : j.value("predictors", json::array())) {
    PredictorManifest predictor{StringField(p, "name"), StringField(p, "description")};
    if (predictor.name.rfind(m.name + ".", 0) != 0 || predictor.name.size() <= m.name.size() + 1) {
      return Status::InvalidArgument("manifest: predictor \"" + predictor.name +
                                     "\" must be named \"" + m.name + ".<name>\"");
    }
    m.predictors.push_back(std::move(predictor));
  }
  return m;
}

const PluginManifest* PluginCatalog::FindPluginOfPredictor(const std::string& predictor) const {
  for (const PluginManifest& p : plugins) {
    for (const PredictorManifest& s : p.predictors) {
      if (s.name == predictor) return &p;
    }
  }
  return nullptr;
}

const PluginManifest* PluginCatalog::FindPluginOfStep(const std::string& step) const {
  for (const PluginManifest& p : plugins) {
    for (const StepManifest& s : p.steps) {
      if (s.name == step) return &p;
    }
  }
  return nullptr;
}

const StepManifest* PluginCatalog::FindStep(const std::string& step) const {
  for (const PluginManifest& p : plugins) {
    for (const StepManifest& s : p.steps) {
      if (s.name == step) return &s;
    }
  }
  return nullptr;
}

std::vector<std::string> PluginCatalog::StepNames() const {
  std::vector<std::string> names;
  for (const PluginManifest& p : plugins) {
    for (const StepManifest& s : p.steps) names.push_back(s.name);
  }
  return names;
}

namespace {

json StepToJson(const StepManifest& s) {
  json params = json::array();
  for (const ParamManifest& p : s.params) {
    params.push_back({{"name", p.name},
                      {"type", p.type},
                      {"required", p.required},
                      {"default", p.default_value},
                      {"doc", p.doc}});
  }
  json inputs = json::array();
  for (const auto& i : s.inputs) {
    inputs.push_back({{"name", i.name}, {"doc", i.doc}, {"required", i.required}});
  }
  json outputs = json::array();
  for (const auto& o : s.outputs) {
    outputs.push_back({{"name", o.name}, {"kind", o.kind}, {"doc", o.doc}});
  }
  json step = {{"name", s.name},
               {"description", s.description},
               {"cacheable", s.cacheable},
               {"any_inputs", s.any_inputs},
               {"any_params", s.any_params},
               {"code_params", s.code_params},
               {"params", params},
               {"inputs", inputs},
               {"outputs", outputs}};
  if (!s.code_defaults.empty()) step["code_defaults"] = s.code_defaults;
  if (!s.script_manifest_command.empty()) {
    step["script_manifest"] = {{"script", s.script_manifest_param},
                               {"function", s.script_manifest_function_param},
                               {"command", s.script_manifest_command}};
  }
  return step;
}

}  // namespace

json PluginCatalog::ToJson() const {
  json out = {{"plugins", json::array()}, {"problems", json::array()}, {"dirs", dirs}};
  for (const PluginManifest& p : plugins) {
    json steps = json::array();
    for (const StepManifest& s : p.steps) steps.push_back(StepToJson(s));
    json predictors = json::array();
    for (const PredictorManifest& s : p.predictors) {
      predictors.push_back({{"name", s.name}, {"description", s.description}});
    }
    out["plugins"].push_back(
        {{"name", p.name},
         {"version", p.version},
         {"description", p.description},
         {"file", p.file},
         {"abi", std::to_string(p.abi_major) + "." + std::to_string(p.abi_minor)},
         {"steps", steps},
         {"predictors", predictors}});
  }
  for (const Problem& problem : problems) {
    out["problems"].push_back({{"file", problem.file}, {"message", problem.message}});
  }
  return out;
}

StatusOr<PluginCatalog> PluginCatalog::FromJson(const json& j) {
  PluginCatalog catalog;
  try {
    catalog.dirs = j.value("dirs", std::vector<std::string>{});
    for (const json& p : j.at("plugins")) {
      StatusOr<PluginManifest> m = ParsePluginManifest(p.dump(), p.at("name").get<std::string>());
      if (!m.ok()) return m.status();
      m->file = p.value("file", "");
      std::string abi = p.value("abi", "0.0");
      m->abi_major = static_cast<uint32_t>(std::stoul(abi.substr(0, abi.find('.'))));
      m->abi_minor = static_cast<uint32_t>(std::stoul(abi.substr(abi.find('.') + 1)));
      catalog.plugins.push_back(std::move(*m));
    }
    for (const json& problem : j.at("problems")) {
      catalog.problems.push_back(
          {problem.at("file").get<std::string>(), problem.at("message").get<std::string>()});
    }
  } catch (const std::exception& e) {
    return Status::Corruption(std::string("plugin catalog from worker is malformed: ") + e.what());
  }
  return catalog;
}

std::vector<std::string> PluginSearchPath(const std::vector<std::string>& extra) {
  std::vector<std::string> dirs = extra;
  if (const char* env = std::getenv("SLUICE_PLUGIN_PATH")) {
    std::string path = env;
    size_t start = 0;
    while (start <= path.size()) {
      size_t colon = path.find(':', start);
      std::string dir =
          path.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
      if (!dir.empty()) dirs.push_back(dir);
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
  }
  if (const char* home = std::getenv("HOME")) {
    dirs.push_back(std::string(home) + "/.local/lib/sluice/plugins");
  }
  std::error_code ec;
  std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    dirs.push_back((exe.parent_path().parent_path() / "lib" / "sluice" / "plugins").string());
  }
  // Drop repeats, keeping the first position.
  std::vector<std::string> unique;
  for (std::string& d : dirs) {
    if (std::find(unique.begin(), unique.end(), d) == unique.end()) unique.push_back(std::move(d));
  }
  return unique;
}

// ---------------------------------------------------------------------------------------------

struct PluginLibrary::Impl {
  boost::dll::shared_library library;
  const sluice_plugin* table = nullptr;
};

namespace {

// The dynamic loader's reason from Boost.DLL's exception text, "boost::dll::shared_library::
// load() failed (dlerror system message: PATH: REASON): ERRNO TEXT": REASON alone. The errno
// text is whatever errno held, not the cause ("Bad file descriptor" for a text file).
std::string LoaderReason(const std::exception& e, const std::string& path) {
  std::string what = e.what();
  const std::string marker = "dlerror system message: ";
  const size_t start = what.find(marker);
  const size_t end = what.rfind("): ");
  if (start == std::string::npos || end == std::string::npos || end < start) return what;
  std::string reason = what.substr(start + marker.size(), end - start - marker.size());
  if (reason.rfind(path + ": ", 0) == 0) reason.erase(0, path.size() + 2);
  if (reason.find("file too short") != std::string::npos ||
      reason.find("invalid ELF header") != std::string::npos) {
    reason += " (is it a shared library built for this machine?)";
  }
  return reason;
}

}  // namespace

PluginLibrary::PluginLibrary() : impl_(std::make_unique<Impl>()) {}
PluginLibrary::~PluginLibrary() = default;

StatusOr<std::unique_ptr<PluginLibrary>> PluginLibrary::Load(const std::string& path) {
  std::unique_ptr<PluginLibrary> lib(new PluginLibrary());
  try {
    // rtld_now: a missing symbol is an error here, not a crash in the middle of a try.
    lib->impl_->library.load(path,
                             boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(path + ": cannot load the library: " + LoaderReason(e, path));
  }
  if (!lib->impl_->library.has(SLUICE_PLUGIN_ENTRY_NAME)) {
    return Status::InvalidArgument(
        path + ": not a Sluice plugin: it does not export \"" SLUICE_PLUGIN_ENTRY_NAME
               "\" (build it with SLUICE_PLUGIN from <sluice/step.h>, or see plugin_abi.h)");
  }
  const sluice_plugin* table = nullptr;
  try {
    auto& entry = lib->impl_->library.get_alias<const sluice_plugin*(uint32_t, uint32_t)>(
        SLUICE_PLUGIN_ENTRY_NAME);
    table = entry(SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(path + ": the entry point failed: " + e.what());
  }
  if (table == nullptr) {
    return Status::InvalidArgument(path + ": the plugin declined to load into this Sluice (ABI " +
                                   std::to_string(SLUICE_ABI_MAJOR) + "." +
                                   std::to_string(SLUICE_ABI_MINOR) +
                                   "); rebuild it against this SDK");
  }
  // Check the handshake before reading anything else; never read past struct_size.
  constexpr size_t kVersionEnd = offsetof(sluice_plugin, abi_minor) + sizeof(uint32_t);
  if (table->struct_size < kVersionEnd) {
    return Status::InvalidArgument(path + ": the plugin's ABI table is truncated (" +
                                   std::to_string(table->struct_size) + " bytes)");
  }
  const std::string built =
      std::to_string(table->abi_major) + "." + std::to_string(table->abi_minor);
  const std::string ours =
      std::to_string(SLUICE_ABI_MAJOR) + "." + std::to_string(SLUICE_ABI_MINOR);
  if (table->abi_major != SLUICE_ABI_MAJOR) {
    return Status::InvalidArgument(
        path + ": built for plugin ABI " + built + ", but this Sluice speaks ABI " + ours +
        " (the major versions differ); rebuild the plugin against this SDK");
  }
  if (table->abi_minor > SLUICE_ABI_MINOR) {
    return Status::InvalidArgument(path + ": built against a newer SDK (ABI " + built +
                                   ") than this Sluice supports (ABI " + ours +
                                   "); upgrade Sluice or rebuild the plugin against this SDK");
  }
  constexpr size_t kV10End = offsetof(sluice_plugin, free_message) + sizeof(void*);
  if (table->struct_size < kV10End) {
    return Status::InvalidArgument(path + ": the plugin's ABI table is too small for ABI " + built +
                                   " (" + std::to_string(table->struct_size) + " bytes)");
  }
  if (table->name == nullptr || table->version == nullptr || table->manifest_json == nullptr ||
      table->run == nullptr || table->free_message == nullptr) {
    return Status::InvalidArgument(path + ": the plugin's ABI table has empty entries");
  }
  StatusOr<PluginManifest> manifest = ParsePluginManifest(table->manifest_json, table->name);
  if (!manifest.ok()) return Status::InvalidArgument(path + ": " + manifest.status().message());
  lib->manifest_ = std::move(*manifest);
  lib->manifest_.version = table->version;
  lib->manifest_.file = path;
  lib->manifest_.abi_major = table->abi_major;
  lib->manifest_.abi_minor = table->abi_minor;
  lib->impl_->table = table;
  constexpr size_t kV12End = offsetof(sluice_plugin, free_model) + sizeof(void*);
  if (!lib->manifest_.predictors.empty() &&
      (table->struct_size < kV12End || table->load_model == nullptr || table->predict == nullptr ||
       table->free_model == nullptr)) {
    return Status::InvalidArgument(path +
                                   ": the manifest lists predictors, but the ABI table has no "
                                   "load_model/predict/free_model (ABI 1.2); rebuild the plugin "
                                   "against this SDK");
  }
  return lib;
}

PluginLibrary::LoadedModel::~LoadedModel() {
  if (handle_ != nullptr) table_->free_model(handle_);
}

int PluginLibrary::LoadedModel::Predict(const std::string& request_json, std::string* response) {
  char* out = nullptr;
  int code = table_->predict(handle_, request_json.c_str(), &out);
  response->assign(out != nullptr ? out : "");
  if (out != nullptr) table_->free_message(out);
  if (code != SLUICE_PREDICT_OK && code != SLUICE_PREDICT_BAD_REQUEST) {
    if (code != SLUICE_PREDICT_FAILED) {
      *response = "the predictor returned unknown code " + std::to_string(code) +
                  (response->empty() ? "" : ": " + *response);
    }
    code = SLUICE_PREDICT_FAILED;
  }
  return code;
}

StatusOr<std::unique_ptr<PluginLibrary::LoadedModel>> PluginLibrary::LoadModel(
    const std::string& predictor, const std::string& model_dir) {
  bool known = false;
  for (const PredictorManifest& p : manifest_.predictors) known = known || p.name == predictor;
  if (!known) {
    return Status::NotFound(manifest_.file + ": plugin \"" + manifest_.name +
                            "\" has no predictor \"" + predictor + "\"");
  }
  const sluice_plugin* table = impl_->table;
  void* handle = nullptr;
  char* message = nullptr;
  const int code = table->load_model(predictor.c_str(), model_dir.c_str(), &handle, &message);
  std::string text = message != nullptr ? message : "";
  if (message != nullptr) table->free_message(message);
  if (code != 0 || handle == nullptr) {
    return Status::InvalidArgument(predictor + " cannot load " + model_dir + ": " +
                                   (text.empty() ? "no reason given" : text));
  }
  return std::unique_ptr<LoadedModel>(new LoadedModel(table, handle));
}

namespace {

// Adapts a StepHost to the C table. The callbacks must not throw across the ABI.
struct HostAdapter {
  StepHost* host;
  static void Log(void* ctx, int level, const char* message, size_t length) {
    try {
      static_cast<HostAdapter*>(ctx)->host->Log(level, std::string_view(message, length));
    } catch (...) {
    }
  }
  static void Metric(void* ctx, const char* name, double value, int64_t step) {
    try {
      static_cast<HostAdapter*>(ctx)->host->Metric(name ? name : "", value, step);
    } catch (...) {
    }
  }
  static int IsCancelled(void* ctx) {
    try {
      return static_cast<HostAdapter*>(ctx)->host->Cancelled() ? 1 : 0;
    } catch (...) {
      return 1;
    }
  }
  static int Output(void* ctx, const char* name, int kind, const char* data) {
    try {
      if (name == nullptr || data == nullptr) return 1;
      return static_cast<HostAdapter*>(ctx)->host->Output(name, kind, data) ? 0 : 1;
    } catch (...) {
      return 1;
    }
  }
  static char* Copy(const std::string& s) {
    char* out = static_cast<char*>(std::malloc(s.size() + 1));
    if (out != nullptr) std::memcpy(out, s.c_str(), s.size() + 1);
    return out;
  }
  static int Call(void* ctx, const char* method, const char* request, char** response_out) {
    if (response_out == nullptr) return 1;
    try {
      if (method == nullptr || request == nullptr) {
        *response_out = Copy("call: method and request must not be null");
        return 1;
      }
      std::string response;
      const bool ok = static_cast<HostAdapter*>(ctx)->host->Call(method, request, &response);
      *response_out = Copy(response);
      return ok ? 0 : 1;
    } catch (const std::exception& e) {
      *response_out = Copy(std::string("call failed: ") + e.what());
      return 1;
    }
  }
  static void FreeResponse(void* /*ctx*/, char* response) { std::free(response); }
};

}  // namespace

StepResult PluginLibrary::Run(const std::string& step, const std::string& request_json,
                              StepHost* host) {
  HostAdapter adapter{host};
  sluice_host table{};
  table.struct_size = sizeof(sluice_host);
  table.abi_major = SLUICE_ABI_MAJOR;
  table.abi_minor = SLUICE_ABI_MINOR;
  table.context = &adapter;
  table.log = &HostAdapter::Log;
  table.metric = &HostAdapter::Metric;
  table.is_cancelled = &HostAdapter::IsCancelled;
  table.output = &HostAdapter::Output;
  table.call = &HostAdapter::Call;
  table.free_response = &HostAdapter::FreeResponse;

  char* message = nullptr;
  int code = impl_->table->run(step.c_str(), request_json.c_str(), &table, &message);
  StepResult result;
  result.code = code;
  if (message != nullptr) {
    result.message = message;
    impl_->table->free_message(message);
  }
  if (code != SLUICE_RESULT_SUCCESS && code != SLUICE_RESULT_FAILED &&
      code != SLUICE_RESULT_SKIPPED) {
    result.message = "the plugin returned unknown result code " + std::to_string(code) +
                     (result.message.empty() ? "" : ": " + result.message);
    result.code = SLUICE_RESULT_FAILED;
  }
  return result;
}

PluginCatalog ScanPlugins(const std::vector<std::string>& dirs,
                          const std::function<bool(const std::string&)>& before_load) {
  PluginCatalog catalog;
  catalog.dirs = dirs;
  std::map<std::string, std::string> step_owner;    // step -> file
  std::map<std::string, std::string> plugin_owner;  // plugin name -> file
  for (const std::string& dir : dirs) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) continue;
    std::vector<std::string> files;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      if (entry.path().extension() == ".so") files.push_back(entry.path().string());
    }
    std::sort(files.begin(), files.end());
    for (const std::string& file : files) {
      if (before_load && !before_load(file)) continue;
      StatusOr<std::unique_ptr<PluginLibrary>> lib = PluginLibrary::Load(file);
      if (!lib.ok()) {
        catalog.problems.push_back({file, lib.status().message()});
        continue;
      }
      const PluginManifest& m = (*lib)->manifest();
      if (auto it = plugin_owner.find(m.name); it != plugin_owner.end()) {
        catalog.problems.push_back(
            {file, file + ": plugin name \"" + m.name + "\" is already taken by " + it->second +
                       "; this library is ignored (remove one of them, or rename its plugin)"});
        continue;
      }
      bool clash = false;
      for (const StepManifest& s : m.steps) {
        if (auto it = step_owner.find(s.name); it != step_owner.end()) {
          catalog.problems.push_back({file, file + ": step \"" + s.name +
                                                "\" is already provided by " + it->second +
                                                "; this library is ignored"});
          clash = true;
        }
      }
      if (clash) continue;
      plugin_owner[m.name] = file;
      for (const StepManifest& s : m.steps) step_owner[s.name] = file;
      catalog.plugins.push_back(m);
      // The library is unloaded here: a catalog scan only reads manifests. Workers load the
      // library again (and keep it) when they run one of its steps.
    }
  }
  return catalog;
}

}  // namespace sluice
