// The `python` plugin: a step written as a Python function (docs/python-steps.md).
//
//   python.function  runs FUNCTION of SCRIPT in an interpreter, with the Python SDK
//                    (sdk/python) on its path: ctx, params and inputs as arguments; metrics,
//                    outputs, tags, skip and the registry through the step protocol
//                    (docs/step-protocol.md)
//   python.predict   serves a model folder's predict(rows) (python_predictor.h)
//
// Built as a third-party plugin is, against <sluice/step.h> and plugins/common.
#include <sluice/step.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/child_step.h"
#include "python/fork_server.h"
#include "python/python_env.h"
#include "python/python_predictor.h"

namespace {

using nlohmann::json;
using sluice::sdk::Context;
using sluice::sdk::ParamType;
using sluice::sdk::StepError;
namespace fs = std::filesystem;

// This worker's fork server (fork_server.h), unless $SLUICE_PYTHON_FORK_SERVER is 0. A
// worker runs one try at a time; a second one at once would be spawned.
std::mutex fork_server_mutex;
std::unique_ptr<sluice::python::ForkServer> fork_server;

bool ForkServerWanted() {
  const char* setting = std::getenv("SLUICE_PYTHON_FORK_SERVER");
  return setting == nullptr || std::strcmp(setting, "0") != 0;
}

class Python : public sluice::sdk::Step {
 public:
  void Run(Context& ctx) override {
    const std::string task = ctx.run().task_id;
    fs::path script(ctx.Param<std::string>("script"));
    if (script.is_relative() && !ctx.dag_dir().empty()) script = ctx.dag_dir() / script;
    std::error_code ec;
    script = fs::absolute(script, ec);  // Python runs in the scratch folder
    if (!fs::is_regular_file(script, ec)) {
      throw StepError(
          "task \"" + task + "\": script " + script.string() +
          " does not exist (a relative script path is relative to the DAG file's "
          "folder, " +
          (ctx.dag_dir().empty() ? std::string("unknown here") : ctx.dag_dir().string()) + ")");
    }
    fs::path python;
    fs::path sdk;
    try {
      python = sluice::python::Interpreter(ctx.Param<std::string>("python", ""),
                                           "the task's python param", ctx.dag_dir(),
                                           "task \"" + task + "\"");
      sdk = sluice::python::SdkDir();
    } catch (const std::runtime_error& e) {
      throw StepError(e.what());
    }

    sluice::plugins::ChildCommand child;
    // -c rather than -m sluice._run: runpy's imports alone cost each try ~5 ms
    // (bench/python_bench.py).
    child.argv = {python.string(), "-c", sluice::python::kRunCode, script.string(),
                  ctx.Param<std::string>("function", "")};
    child.working_dir = ctx.scratch_dir().string();
    child.env = sluice::python::ChildEnv(sdk);
    child.grace = std::chrono::milliseconds(
        static_cast<int64_t>(ctx.Param<double>("kill_grace_seconds") * 1000));

    std::unique_lock<std::mutex> lock(fork_server_mutex, std::try_to_lock);
    if (lock.owns_lock() && !ctx.Param<bool>("fresh_interpreter") && ForkServerWanted()) {
      if (!fork_server) fork_server = std::make_unique<sluice::python::ForkServer>(sdk);
      child.launcher = fork_server.get();
    }
    const sluice::plugins::ChildResult result = sluice::plugins::RunChild(ctx, child);
    if (child.launcher != nullptr && fork_server->lost()) {
      throw StepError(
          "this worker's Python fork server died while the try ran, so how the try ended is "
          "unknown (set fresh_interpreter = true, or SLUICE_PYTHON_FORK_SERVER=0 for the "
          "daemon, to start an interpreter per try)");
    }
    if (result.signal != 0) {
      throw StepError("the Python process was killed by signal " + std::to_string(result.signal) +
                      " (" + strsignal(result.signal) + ")");
    }
    if (result.exit_code != 0) {
      // A traceback's last line: "ValueError: C must be positive".
      std::string why = result.last_error_line;
      if (why.size() > 500) why = why.substr(0, 500) + "...";
      if (why.find("No module named 'sluice'") != std::string::npos) {
        why += " (the interpreter " + python.string() + " does not see the Python SDK in " +
               sdk.string() + ")";
      }
      throw StepError(why.empty()
                          ? "the Python step exited with code " + std::to_string(result.exit_code)
                          : why);
    }
    if (result.skipped) ctx.Skip(result.skip_reason);
  }
};

// How `sluice dag validate` reads a script's @step: the SDK's _manifest.py, which parses it
// with `ast` and runs none of it, under an isolated interpreter (-I -S: no site packages,
// no PYTHONPATH). Empty when there is no Python or no SDK: the scripts go unchecked.
std::vector<std::string> ManifestReader() {
  try {
    const fs::path python = sluice::python::Interpreter("", "the default", {}, "the python plugin");
    const fs::path reader = sluice::python::SdkDir() / "sluice" / "_manifest.py";
    return {python.string(), "-I", "-S", reader.string()};
  } catch (const std::runtime_error&) {
    return {};
  }
}

// The interpreter a task without `python` runs (its file is in such a task's cache key), or
// "" when there is none.
std::string DefaultInterpreter() {
  try {
    return sluice::python::Interpreter("", "the default", {}, "the python plugin").string();
  } catch (const std::runtime_error&) {
    return "";
  }
}

sluice::sdk::Plugin Describe() {
  sluice::sdk::Plugin plugin("python", "1.0.0", "Steps written as Python functions");
  auto& function =
      plugin
          .Add<Python>("python.function",
                       "Runs a Python function decorated with @sluice.step: its params and inputs "
                       "as arguments; metrics, outputs, tags, skip and the model registry through "
                       "its ctx (docs/python-steps.md). Other params are handed to the function")
          .Param("script", ParamType::kString,
                 "The Python file (relative to the DAG file's folder)")
          .Param("function", ParamType::kString,
                 "The function to run (default: the one @step function in the script)", "")
          .Param("python", ParamType::kString,
                 "The interpreter, e.g. a virtualenv's .venv/bin/python (default: $SLUICE_PYTHON, "
                 "else /usr/bin/python3, else python3 on PATH)",
                 "")
          .Param("kill_grace_seconds", ParamType::kNumber,
                 "When the try is cancelled, how long Python has after SIGTERM before SIGKILL",
                 10.0)
          .Param("fresh_interpreter", ParamType::kBoolean,
                 "Start a new interpreter for each try instead of forking this worker's waiting "
                 "one, which has the SDK imported (about 10 ms faster a try)",
                 false)
          .Param("code_files", ParamType::kArray,
                 "Other files the script's results depend on (modules it imports, a config), "
                 "relative to the DAG file's folder: with the script (and the interpreter when "
                 "`python` is given) their content is part of the cache key",
                 json::array())
          .CodeParam("script")
          .CodeParam("python", DefaultInterpreter())
          .CodeParam("code_files")
          .AnyParams()
          .AnyInputs();
  if (std::vector<std::string> reader = ManifestReader(); !reader.empty()) {
    function.ScriptManifest("script", "function", std::move(reader));
  }
  plugin.AddPredictor<sluice::python::PythonPredictor>(
      "python.predict",
      "Serves model folders published with ctx.output_model: their predict(rows) function, "
      "in a Python process per loaded version");
  return plugin;
}

}  // namespace

SLUICE_PLUGIN(Describe)
