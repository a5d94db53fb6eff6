// The Sluice plugin SDK: a header-only C++ layer over the C ABI in <sluice/plugin_abi.h>.
//
// A plugin is a shared library with one or more steps. Write each step as a class derived
// from sluice::sdk::Step, describe the plugin in one function, and export it with
// SLUICE_PLUGIN:
//
//   #include <sluice/step.h>
//
//   class Greet : public sluice::sdk::Step {
//    public:
//     void Run(sluice::sdk::Context& ctx) override {
//       std::string who = ctx.Param<std::string>("who");
//       ctx.Info("hello, " + who);
//       ctx.Metric("greetings", 1);
//       ctx.OutputValue("greeting", "hello, " + who);
//     }
//   };
//
//   sluice::sdk::Plugin Describe() {
//     sluice::sdk::Plugin plugin("hello", "1.0.0", "Friendly steps");
//     plugin.Add<Greet>("hello.greet", "Greets someone")
//         .Param("who", sluice::sdk::ParamType::kString, "Whom to greet", "world")
//         .Output("greeting", sluice::sdk::OutputKind::kValue, "The greeting");
//     return plugin;
//   }
//   SLUICE_PLUGIN(Describe)
//
// Rules of the layer:
// - Step::Run reports failure by throwing; any exception becomes a failed try whose reason
//   is the exception's message. Nothing propagates past the ABI.
// - Before Run, params are checked against the step's declared params: missing required
//   ones and wrong types fail the try with a message naming the param; defaults are filled
//   in, so ctx.params() holds every declared param.
// - A new Step object is made for every try and destroyed after it.
// - Build plugins with -fvisibility=hidden (sluice_add_plugin does), so that two plugins in
//   one worker never share this header's inline code or statics.
#ifndef SLUICE_STEP_H_
#define SLUICE_STEP_H_

#include <boost/dll/alias.hpp>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "sluice/plugin_abi.h"

namespace sluice::sdk {

// Thrown by the Context when a step asks for something it cannot have (a missing param, an
// input of the wrong kind). Steps may throw it too; any std::exception works.
class StepError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown by Context::Skip; ends the try as skipped with a reason. Not a failure.
class SkipStep : public std::exception {
 public:
  explicit SkipStep(std::string reason) : reason_(std::move(reason)) {}
  const char* what() const noexcept override { return reason_.c_str(); }

 private:
  std::string reason_;
};

enum class ParamType { kString, kInteger, kNumber, kBoolean, kArray, kObject, kAny };
enum class OutputKind { kFile, kDir, kValue };
enum class LogLevel {
  kDebug = SLUICE_LOG_DEBUG,
  kInfo = SLUICE_LOG_INFO,
  kWarning = SLUICE_LOG_WARNING,
  kError = SLUICE_LOG_ERROR
};

inline const char* ParamTypeName(ParamType type) {
  switch (type) {
    case ParamType::kString:
      return "string";
    case ParamType::kInteger:
      return "integer";
    case ParamType::kNumber:
      return "number";
    case ParamType::kBoolean:
      return "boolean";
    case ParamType::kArray:
      return "array";
    case ParamType::kObject:
      return "object";
    case ParamType::kAny:
      return "any";
  }
  return "any";
}

inline const char* OutputKindName(OutputKind kind) {
  switch (kind) {
    case OutputKind::kFile:
      return "file";
    case OutputKind::kDir:
      return "dir";
    case OutputKind::kValue:
      return "value";
  }
  return "value";
}

// Whether a JSON value has a param type. Integers are numbers too.
inline bool MatchesParamType(const nlohmann::json& value, ParamType type) {
  switch (type) {
    case ParamType::kString:
      return value.is_string();
    case ParamType::kInteger:
      return value.is_number_integer();
    case ParamType::kNumber:
      return value.is_number();
    case ParamType::kBoolean:
      return value.is_boolean();
    case ParamType::kArray:
      return value.is_array();
    case ParamType::kObject:
      return value.is_object();
    case ParamType::kAny:
      return true;
  }
  return true;
}

struct ParamSpec {
  std::string name;
  ParamType type = ParamType::kAny;
  bool required = false;
  nlohmann::json default_value;  // null when required or when "absent" is meaningful
  std::string doc;
};

struct InputSpec {
  std::string name;
  std::string doc;
  bool required = true;
};

struct OutputSpec {
  std::string name;
  OutputKind kind = OutputKind::kFile;
  std::string doc;
};

// Options of Context::RegisterModel.
struct ModelOptions {
  // name -> number; null: the last value of each metric the try has logged so far.
  nlohmann::json metrics;
  nlohmann::json tags = nlohmann::json::object();  // name -> text
  std::string description;
  std::string alias;   // also move this alias (e.g. "production") to the new version
  std::string reason;  // why, kept in the alias's history
};

// Who and what a try is.
struct RunInfo {
  std::string dag_id;
  std::string run_id;
  std::string task_id;
  int try_number = 0;           // 1 for the first try
  std::string logical_date;     // ISO 8601 UTC
  std::string idempotency_key;  // "dag/run/task/try": unique per try, stable across restarts
};

// What a step sees of its try. Valid only during Step::Run; not thread-safe (call it from
// the thread that runs the step).
class Context {
 public:
  Context(const sluice_host* host, nlohmann::json request)
      : host_(host), request_(std::move(request)) {
    const nlohmann::json& run = request_.value("run", nlohmann::json::object());
    run_.dag_id = run.value("dag_id", "");
    run_.run_id = run.value("run_id", "");
    run_.task_id = run.value("task_id", "");
    run_.try_number = run.value("try_number", 0);
    run_.logical_date = run.value("logical_date", "");
    run_.idempotency_key = run.value("idempotency_key", "");
    params_ = request_.value("params", nlohmann::json::object());
    inputs_ = request_.value("inputs", nlohmann::json::object());
  }

  const RunInfo& run() const { return run_; }
  // Every declared param, with defaults filled in.
  const nlohmann::json& params() const { return params_; }
  nlohmann::json& mutable_params() { return params_; }

  bool HasParam(const std::string& name) const {
    return params_.contains(name) && !params_[name].is_null();
  }
  // The param's value as T. Throws StepError when it is absent or cannot be a T.
  template <typename T>
  T Param(const std::string& name) const {
    if (!HasParam(name)) throw StepError("param \"" + name + "\" is required but not set");
    try {
      return params_.at(name).get<T>();
    } catch (const nlohmann::json::exception&) {
      throw StepError("param \"" + name + "\" has the wrong type: " + params_.at(name).dump());
    }
  }
  // The param's value as T, or `fallback` when it is absent or null.
  template <typename T>
  T Param(const std::string& name, const T& fallback) const {
    return HasParam(name) ? Param<T>(name) : fallback;
  }

  bool HasInput(const std::string& name) const { return inputs_.contains(name); }
  // Every input: name -> {"kind": "file"|"dir", "path": ...} or {"kind": "value", "value": ...},
  // with "artifact" (the input's content id) when it came from the artifact store.
  const nlohmann::json& inputs() const { return inputs_; }
  // The read-only path of a file or directory input. Throws StepError if there is none.
  std::filesystem::path InputPath(const std::string& name) const {
    const nlohmann::json& input = Input(name);
    if (!input.contains("path")) {
      throw StepError("input \"" + name + "\" is a value, not a file; use InputValue");
    }
    return std::filesystem::path(input["path"].get<std::string>());
  }
  // The JSON value of a value input. Throws StepError if there is none.
  nlohmann::json InputValue(const std::string& name) const {
    const nlohmann::json& input = Input(name);
    if (!input.contains("value")) {
      throw StepError("input \"" + name + "\" is a file, not a value; use InputPath");
    }
    return input["value"];
  }

  // A private, empty directory for temporary files, removed after the try. Created on the
  // first call (most steps never need one, and a no-op step should cost nothing).
  std::filesystem::path scratch_dir() const { return EnsureDir("scratch_dir"); }
  // Where to write files and directories that become outputs (any path works: outputs
  // elsewhere are copied here). Created on the first call.
  std::filesystem::path output_dir() const { return EnsureDir("output_dir"); }
  // The folder of the DAG file the run came from: what a relative path in a task's params
  // means (a script, a data file). Empty for an engine older than Sluice 1.1's.
  std::filesystem::path dag_dir() const {
    return std::filesystem::path(request_.value("dag_dir", ""));
  }
  // A path a task's params give, as a step should read it: a relative one is relative to the
  // DAG file's folder (as Make and Snakemake read paths), never to where Sluice was started.
  std::filesystem::path DagPath(const std::string& path) const {
    std::filesystem::path p(path);
    if (p.is_relative() && !p.empty()) {
      const std::filesystem::path dir = dag_dir();
      if (!dir.empty()) p = dir / p;
    }
    return p.lexically_normal();
  }

  void OutputFile(const std::string& name, const std::filesystem::path& path) {
    Output(name, SLUICE_OUTPUT_FILE, path.string());
  }
  void OutputDir(const std::string& name, const std::filesystem::path& path) {
    Output(name, SLUICE_OUTPUT_DIR, path.string());
  }
  void OutputValue(const std::string& name, const nlohmann::json& value) {
    Output(name, SLUICE_OUTPUT_VALUE, value.dump());
  }

  void Log(LogLevel level, std::string_view message) {
    host_->log(host_->context, static_cast<int>(level), message.data(), message.size());
  }
  void Debug(std::string_view message) { Log(LogLevel::kDebug, message); }
  void Info(std::string_view message) { Log(LogLevel::kInfo, message); }
  void Warning(std::string_view message) { Log(LogLevel::kWarning, message); }
  void Error(std::string_view message) { Log(LogLevel::kError, message); }

  // Records a metric; `step` orders points of a curve (e.g. the boosting round), -1 = none.
  void Metric(const std::string& name, double value, int64_t step = -1) {
    host_->metric(host_->context, name.c_str(), value, step);
  }

  // True once the try should stop. Long steps check it between units of work.
  bool cancelled() const { return host_->is_cancelled(host_->context) != 0; }
  // Throws StepError("cancelled") once the try should stop.
  void CheckCancelled() const {
    if (cancelled()) throw StepError("cancelled");
  }

  // Ends the try as skipped (not failed) with a reason, e.g. a gate that did not pass.
  [[noreturn]] void Skip(std::string reason) { throw SkipStep(std::move(reason)); }

  // Tags the try (name -> text); `sluice runs compare` shows tags next to params.
  void Tag(const std::string& name, const std::string& value) {
    Call("tags.set", {{"name", name}, {"value", value}});
  }

  // Registers this try's output `output` (declared before, with OutputFile or OutputDir) as
  // the next version of `model`, and returns the version record: {"name", "version",
  // "artifact", "metrics", "tags", ...}. With options.alias, the alias moves to it at once.
  nlohmann::json RegisterModel(const std::string& model, const std::string& output,
                               const ModelOptions& options = {}) {
    return Register(model, "output", output, options);
  }
  // The same for an input of this try: a deploy step registers the model it was given.
  nlohmann::json RegisterModelFromInput(const std::string& model, const std::string& input,
                                        const ModelOptions& options = {}) {
    return Register(model, "input", input, options);
  }

  // The version of `model` that holds `alias`, with its metrics (so that a gate can demand
  // "better than production") and "path", where its files are (read-only); nullopt when the
  // model or the alias does not exist yet.
  std::optional<nlohmann::json> ModelVersion(const std::string& model,
                                             const std::string& alias = "production") {
    nlohmann::json v = Call("models.get", {{"model", model}, {"alias", alias}});
    if (v.is_null()) return std::nullopt;
    return v;
  }

  // Moves `alias` of `model` to `version`; the move and `reason` go to the audit log.
  nlohmann::json SetModelAlias(const std::string& model, const std::string& alias, int version,
                               const std::string& reason = "") {
    return Call("models.set_alias",
                {{"model", model}, {"alias", alias}, {"version", version}, {"reason", reason}});
  }

  // Evaluates `expression` in Sluice's expression language (the one of `when` conditions:
  // and/or/not, comparisons, + - * /, dotted names) over `values`, a JSON object. Returns
  // {"value": result, "references": [names read], "missing": [names `values` lacks]}; when
  // a name is missing, "value" is null. Throws StepError for a syntax error.
  nlohmann::json EvaluateExpression(const std::string& expression, const nlohmann::json& values) {
    return Call("expression.evaluate", {{"expression", expression}, {"values", values}});
  }

  // A raw request to the engine (sluice_host.call). Throws StepError when the engine refuses
  // it or is too old to offer services (ABI < 1.1).
  nlohmann::json Call(const std::string& method, const nlohmann::json& request) {
    if (host_->struct_size < offsetof(sluice_host, free_response) + sizeof(host_->free_response)) {
      throw StepError("this Sluice engine is too old for " + method + " (it needs ABI 1.1)");
    }
    char* response = nullptr;
    const int code = host_->call(host_->context, method.c_str(), request.dump().c_str(), &response);
    std::string text = response != nullptr ? response : "";
    if (response != nullptr) host_->free_response(host_->context, response);
    if (code != 0) throw StepError(text.empty() ? method + " failed" : text);
    return text.empty() ? nlohmann::json() : nlohmann::json::parse(text);
  }

 private:
  nlohmann::json Register(const std::string& model, const char* from, const std::string& name,
                          const ModelOptions& options) {
    nlohmann::json request = {{"model", model},
                              {from, name},
                              {"tags", options.tags},
                              {"description", options.description}};
    if (!options.metrics.is_null()) request["metrics"] = options.metrics;
    if (!options.alias.empty()) {
      request["alias"] = options.alias;
      request["reason"] = options.reason;
    }
    return Call("models.register", request);
  }
  const nlohmann::json& Input(const std::string& name) const {
    if (!inputs_.contains(name)) {
      throw StepError("no input named \"" + name + "\"; declare it in the task's inputs");
    }
    return inputs_[name];
  }
  std::filesystem::path EnsureDir(const char* key) const {
    std::filesystem::path dir(request_.value(key, ""));
    std::error_code ec;
    if (!dir.empty()) std::filesystem::create_directories(dir, ec);
    if (ec) throw StepError("cannot create " + dir.string() + ": " + ec.message());
    return dir;
  }
  void Output(const std::string& name, int kind, const std::string& data) {
    if (host_->output(host_->context, name.c_str(), kind, data.c_str()) != 0) {
      throw StepError("output \"" + name + "\" was refused (see the log for why)");
    }
  }

  const sluice_host* host_;
  nlohmann::json request_;
  nlohmann::json params_;
  nlohmann::json inputs_;
  RunInfo run_;
};

// Thrown by a Predictor for a request that is wrong (the caller gets a 400 with the message).
class BadRequest : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Serves one loaded model (ABI 1.2). A plugin adds one with Plugin::AddPredictor<P>, where P
// has a constructor P(const std::filesystem::path& model_dir) that loads the model folder
// (throwing std::exception when it cannot) and warms it up. Predict answers one request;
// it is called from one thread at a time per object, in a serving worker process.
//
//   class Echo : public sluice::sdk::Predictor {
//    public:
//     explicit Echo(const std::filesystem::path& dir) : dir_(dir) {}
//     nlohmann::json Predict(const nlohmann::json& request) override {
//       if (!request.contains("rows")) throw sluice::sdk::BadRequest("\"rows\" is required");
//       return {{"model", dir_.string()}, {"rows", request["rows"].size()}};
//     }
//    private:
//     std::filesystem::path dir_;
//   };
class Predictor {
 public:
  virtual ~Predictor() = default;
  // Throws BadRequest for a wrong request; any other exception is a failure (500).
  virtual nlohmann::json Predict(const nlohmann::json& request) = 0;
};

// One step of a plugin. Subclasses implement Run; throwing fails the try.
class Step {
 public:
  virtual ~Step() = default;
  virtual void Run(Context& ctx) = 0;
};

// Describes one step; returned by Plugin::Add for chaining.
class StepSpec {
 public:
  StepSpec(std::string name, std::string description, std::function<std::unique_ptr<Step>()> make)
      : name_(std::move(name)), description_(std::move(description)), make_(std::move(make)) {}

  // A required param.
  StepSpec& Param(std::string name, ParamType type, std::string doc) {
    params_.push_back({std::move(name), type, true, nullptr, std::move(doc)});
    return *this;
  }
  // An optional param with a default (null: optional without a default).
  StepSpec& Param(std::string name, ParamType type, std::string doc, nlohmann::json default_value) {
    params_.push_back({std::move(name), type, false, std::move(default_value), std::move(doc)});
    return *this;
  }
  StepSpec& Input(std::string name, std::string doc, bool required = true) {
    inputs_.push_back({std::move(name), std::move(doc), required});
    return *this;
  }
  StepSpec& Output(std::string name, OutputKind kind, std::string doc) {
    outputs_.push_back({std::move(name), kind, std::move(doc)});
    return *this;
  }
  // Takes inputs of any name (a shell step that hands each to its command), besides the
  // declared ones.
  StepSpec& AnyInputs() {
    any_inputs_ = true;
    return *this;
  }
  // Takes params of any name besides the declared ones (a step that hands them on, such as
  // the python step, whose script declares its own). Declared params are still checked.
  StepSpec& AnyParams() {
    any_params_ = true;
    return *this;
  }
  // Marks param `name` (a path, or an array of paths, relative to the DAG file's folder) as
  // code: the content of the files it names is part of the step cache key, so that editing
  // a script invalidates the results it cached.
  // `default_file`: what the step uses when the task leaves the param out (the python step's
  // default interpreter), hashed in its place.
  StepSpec& CodeParam(std::string name, std::string default_file = "") {
    if (!default_file.empty()) code_defaults_[name] = std::move(default_file);
    code_params_.push_back(std::move(name));
    return *this;
  }
  // For steps whose script declares its own params, inputs and outputs (the python step's
  // @step): `command` + [script, function] prints that declaration as JSON without running
  // the script (docs/plugin-sdk.md#script-manifests), so that `sluice dag validate` checks
  // the task against it. `script_param` and `function_param` name the task params that
  // hold the script (relative to the DAG file's folder) and the function.
  StepSpec& ScriptManifest(std::string script_param, std::string function_param,
                           std::vector<std::string> command) {
    script_manifest_ = {{"script", std::move(script_param)},
                        {"function", std::move(function_param)},
                        {"command", std::move(command)}};
    return *this;
  }
  // For steps with effects outside their outputs (deploying, notifying): never served
  // from the step cache.
  StepSpec& NotCacheable() {
    cacheable_ = false;
    return *this;
  }

  const std::string& name() const { return name_; }
  const std::vector<ParamSpec>& params() const { return params_; }
  std::unique_ptr<Step> Make() const { return make_(); }

  nlohmann::json ToJson() const {
    nlohmann::json params = nlohmann::json::array();
    for (const ParamSpec& p : params_) {
      params.push_back({{"name", p.name},
                        {"type", ParamTypeName(p.type)},
                        {"required", p.required},
                        {"default", p.default_value},
                        {"doc", p.doc}});
    }
    nlohmann::json inputs = nlohmann::json::array();
    for (const InputSpec& i : inputs_) {
      inputs.push_back({{"name", i.name}, {"doc", i.doc}, {"required", i.required}});
    }
    nlohmann::json outputs = nlohmann::json::array();
    for (const OutputSpec& o : outputs_) {
      outputs.push_back({{"name", o.name}, {"kind", OutputKindName(o.kind)}, {"doc", o.doc}});
    }
    nlohmann::json step = {{"name", name_},
                           {"description", description_},
                           {"cacheable", cacheable_},
                           {"any_inputs", any_inputs_},
                           {"any_params", any_params_},
                           {"code_params", code_params_},
                           {"params", params},
                           {"inputs", inputs},
                           {"outputs", outputs}};
    if (!script_manifest_.is_null()) step["script_manifest"] = script_manifest_;
    if (!code_defaults_.empty()) step["code_defaults"] = code_defaults_;
    return step;
  }

 private:
  std::string name_;
  std::string description_;
  std::function<std::unique_ptr<Step>()> make_;
  std::vector<ParamSpec> params_;
  std::vector<InputSpec> inputs_;
  std::vector<OutputSpec> outputs_;
  bool cacheable_ = true;
  bool any_inputs_ = false;
  bool any_params_ = false;
  std::vector<std::string> code_params_;
  nlohmann::json script_manifest_;                           // null, or {script, function, command}
  nlohmann::json code_defaults_ = nlohmann::json::object();  // code param -> default file
};

// A plugin: a name, a version and its steps.
class Plugin {
 public:
  Plugin(std::string name, std::string version, std::string description)
      : name_(std::move(name)),
        version_(std::move(version)),
        description_(std::move(description)) {}

  // Adds step S (default-constructible) under `name`, which must start with "<plugin>.".
  template <typename S>
  StepSpec& Add(std::string name, std::string description) {
    steps_.push_back(std::make_unique<StepSpec>(std::move(name), std::move(description),
                                                [] { return std::make_unique<S>(); }));
    return *steps_.back();
  }

  // Adds predictor P (see Predictor) under `name`, which must start with "<plugin>."; by
  // convention it is the name of the step that writes the models it serves.
  template <typename P>
  Plugin& AddPredictor(std::string name, std::string description) {
    predictors_.push_back({std::move(name), std::move(description),
                           [](const std::filesystem::path& dir) -> std::unique_ptr<Predictor> {
                             return std::make_unique<P>(dir);
                           }});
    return *this;
  }

  const std::string& name() const { return name_; }
  const std::string& version() const { return version_; }

  std::string ManifestJson() const {
    nlohmann::json steps = nlohmann::json::array();
    for (const auto& s : steps_) steps.push_back(s->ToJson());
    nlohmann::json predictors = nlohmann::json::array();
    for (const auto& p : predictors_) {
      predictors.push_back({{"name", p.name}, {"description", p.description}});
    }
    return nlohmann::json{{"name", name_}, {"version", version_}, {"description", description_},
                          {"sdk", "c++"},  {"steps", steps},      {"predictors", predictors}}
        .dump();
  }

  // The ABI's load_model function. Never throws.
  int LoadModel(const char* predictor, const char* model_dir, void** model_out,
                char** message_out) const noexcept {
    try {
      for (const auto& p : predictors_) {
        if (p.name != predictor) continue;
        *model_out = p.make(std::filesystem::path(model_dir)).release();
        return 0;
      }
      return Fail(message_out,
                  "plugin \"" + name_ + "\" has no predictor \"" + std::string(predictor) + "\"");
    } catch (const std::exception& e) {
      return Fail(message_out, e.what());
    } catch (...) {
      return Fail(message_out, "the predictor threw an exception that is not a std::exception");
    }
  }
  // The ABI's predict function. Never throws.
  static int PredictModel(void* model, const char* request_json, char** response_out) noexcept {
    try {
      const nlohmann::json request = nlohmann::json::parse(request_json);
      *response_out = Copy(static_cast<Predictor*>(model)->Predict(request).dump());
      return SLUICE_PREDICT_OK;
    } catch (const nlohmann::json::parse_error& e) {
      *response_out = Copy(std::string("the request is not valid JSON: ") + e.what());
      return SLUICE_PREDICT_BAD_REQUEST;
    } catch (const BadRequest& e) {
      *response_out = Copy(e.what());
      return SLUICE_PREDICT_BAD_REQUEST;
    } catch (const std::exception& e) {
      *response_out = Copy(e.what());
      return SLUICE_PREDICT_FAILED;
    } catch (...) {
      *response_out = Copy("the predictor threw an exception that is not a std::exception");
      return SLUICE_PREDICT_FAILED;
    }
  }
  static void FreeModel(void* model) noexcept { delete static_cast<Predictor*>(model); }

  // The ABI's run function. Never throws.
  int Run(const char* step, const char* request_json, const sluice_host* host,
          char** message_out) const noexcept {
    try {
      const StepSpec* spec = nullptr;
      for (const auto& s : steps_) {
        if (s->name() == step) spec = s.get();
      }
      if (spec == nullptr) {
        return Fail(message_out,
                    "plugin \"" + name_ + "\" has no step \"" + std::string(step) + "\"");
      }
      Context ctx(host, nlohmann::json::parse(request_json));
      if (std::string problem = CheckParams(*spec, ctx.mutable_params()); !problem.empty()) {
        return Fail(message_out, problem);
      }
      std::unique_ptr<Step> instance = spec->Make();
      instance->Run(ctx);
      return SLUICE_RESULT_SUCCESS;
    } catch (const SkipStep& skip) {
      *message_out = Copy(skip.what());
      return SLUICE_RESULT_SKIPPED;
    } catch (const std::exception& e) {
      return Fail(message_out, e.what());
    } catch (...) {
      return Fail(message_out, "the step threw an exception that is not a std::exception");
    }
  }

  static void FreeMessage(char* message) { std::free(message); }

 private:
  static char* Copy(const std::string& s) {
    char* out = static_cast<char*>(std::malloc(s.size() + 1));
    if (out != nullptr) std::memcpy(out, s.c_str(), s.size() + 1);
    return out;
  }
  static int Fail(char** message_out, const std::string& message) {
    *message_out = Copy(message);
    return SLUICE_RESULT_FAILED;
  }
  // Fills defaults; returns a description of the first problem, or "".
  static std::string CheckParams(const StepSpec& spec, nlohmann::json& params) {
    if (!params.is_object()) return "params must be a JSON object";
    for (const ParamSpec& p : spec.params()) {
      auto it = params.find(p.name);
      if (it == params.end() || it->is_null()) {
        if (p.required) return "param \"" + p.name + "\" is required (" + p.doc + ")";
        params[p.name] = p.default_value;
        continue;
      }
      if (!MatchesParamType(*it, p.type)) {
        return "param \"" + p.name + "\" must be of type " + ParamTypeName(p.type) + ", got " +
               it->dump();
      }
    }
    return "";
  }

  struct PredictorSpec {
    std::string name;
    std::string description;
    std::function<std::unique_ptr<Predictor>(const std::filesystem::path&)> make;
  };

  std::string name_;
  std::string version_;
  std::string description_;
  std::vector<std::unique_ptr<StepSpec>> steps_;
  std::vector<PredictorSpec> predictors_;
};

}  // namespace sluice::sdk

// Exports a plugin described by `describe_fn`, a function returning sluice::sdk::Plugin.
// Use it once per shared library, at namespace scope.
#define SLUICE_PLUGIN(describe_fn)                                                        \
  namespace {                                                                             \
  const ::sluice::sdk::Plugin& SluiceSdkPluginInstance() {                                \
    static const ::sluice::sdk::Plugin plugin = describe_fn();                            \
    return plugin;                                                                        \
  }                                                                                       \
  int SluiceSdkRun(const char* step, const char* request, const sluice_host* host,        \
                   char** message_out) {                                                  \
    return SluiceSdkPluginInstance().Run(step, request, host, message_out);               \
  }                                                                                       \
  void SluiceSdkFree(char* message) { ::sluice::sdk::Plugin::FreeMessage(message); }      \
  int SluiceSdkLoadModel(const char* predictor, const char* dir, void** model_out,        \
                         char** message_out) {                                            \
    return SluiceSdkPluginInstance().LoadModel(predictor, dir, model_out, message_out);   \
  }                                                                                       \
  const sluice_plugin* SluiceSdkEntry(uint32_t host_major, uint32_t /*host_minor*/) {     \
    if (host_major != SLUICE_ABI_MAJOR) {                                                 \
      /* Only the version, so that the host can say which ABI this plugin speaks. */      \
      static const sluice_plugin version_only = [] {                                      \
        sluice_plugin t{};                                                                \
        t.struct_size =                                                                   \
            static_cast<uint32_t>(offsetof(sluice_plugin, abi_minor) + sizeof(uint32_t)); \
        t.abi_major = SLUICE_ABI_MAJOR;                                                   \
        t.abi_minor = SLUICE_ABI_MINOR;                                                   \
        return t;                                                                         \
      }();                                                                                \
      return &version_only;                                                               \
    }                                                                                     \
    try {                                                                                 \
      static const std::string manifest = SluiceSdkPluginInstance().ManifestJson();       \
      static const sluice_plugin table = {sizeof(sluice_plugin),                          \
                                          SLUICE_ABI_MAJOR,                               \
                                          SLUICE_ABI_MINOR,                               \
                                          SluiceSdkPluginInstance().name().c_str(),       \
                                          SluiceSdkPluginInstance().version().c_str(),    \
                                          manifest.c_str(),                               \
                                          &SluiceSdkRun,                                  \
                                          &SluiceSdkFree,                                 \
                                          &SluiceSdkLoadModel,                            \
                                          &::sluice::sdk::Plugin::PredictModel,           \
                                          &::sluice::sdk::Plugin::FreeModel};             \
      return &table;                                                                      \
    } catch (...) {                                                                       \
      return nullptr;                                                                     \
    }                                                                                     \
  }                                                                                       \
  }                                                                                       \
  BOOST_DLL_ALIAS(SluiceSdkEntry, sluice_plugin_entry_v1)

#endif  // SLUICE_STEP_H_
