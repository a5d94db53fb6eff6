// The `core` plugin: steps every installation has.
//
//   core.noop   does nothing (optionally publishes the values it is given as outputs)
//   core.touch  creates a file or updates its time, in process (what `touch` does)
//   core.shell  runs a shell command; its stdout/stderr go to the task log
//   core.sleep  waits, checking for cancellation
//   core.fail   misbehaves on purpose, for testing retries and worker isolation
//
// It is built exactly as a third-party plugin is, against <sluice/step.h> only.
#include <fcntl.h>
#include <signal.h>
#include <sluice/step.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#include "common/child_step.h"

namespace {

using nlohmann::json;
using sluice::sdk::Context;
using sluice::sdk::OutputKind;
using sluice::sdk::ParamType;
using sluice::sdk::StepError;

class Noop : public sluice::sdk::Step {
 public:
  void Run(Context& ctx) override {
    const json outputs = ctx.Param<json>("outputs");
    for (const auto& [name, value] : outputs.items()) ctx.OutputValue(name, value);
  }
};

// The words of `command` when it is a plain command line that the shell would only split on
// blanks (no quoting, expansion, redirection, globbing, comments or compound syntax) and that
// starts with a program rather than a shell builtin or keyword; empty otherwise. Such a
// command is started directly, as GNU make does, saving the shell's own start (one exec).
std::vector<std::string> PlainCommand(const std::string& command) {
  static const char kShellChars[] = "|&;<>()$`\\\"'*?[]#~=%{}!\n";
  if (command.find_first_of(kShellChars) != std::string::npos) return {};
  std::vector<std::string> words;
  size_t i = 0;
  while (i < command.size()) {
    while (i < command.size() && (command[i] == ' ' || command[i] == '\t')) ++i;
    size_t start = i;
    while (i < command.size() && command[i] != ' ' && command[i] != '\t') ++i;
    if (i > start) words.push_back(command.substr(start, i - start));
  }
  static const std::set<std::string> kShellWords = {
      ".",      "alias", "bg",    "break",    "case",   "cd",      "command", "continue",
      "do",     "done",  "elif",  "else",     "esac",   "eval",    "exec",    "exit",
      "export", "fc",    "fg",    "fi",       "for",    "getopts", "hash",    "if",
      "jobs",   "local", "read",  "readonly", "return", "set",     "shift",   "source",
      "then",   "times", "trap",  "type",     "ulimit", "umask",   "unalias", "unset",
      "until",  "wait",  "while", "function", "select", "time",    "coproc"};
  if (words.empty() || kShellWords.count(words[0])) return {};
  return words;
}

class Shell : public sluice::sdk::Step {
 public:
  void Run(Context& ctx) override {
    sluice::plugins::ChildCommand child;
    child.command = ctx.Param<std::string>("command");
    const json env = ctx.Param<json>("env");
    child.working_dir = ctx.Param<std::string>("working_dir", "");
    child.working_dir = child.working_dir.empty() ? ctx.scratch_dir().string()
                                                  : ctx.DagPath(child.working_dir).string();
    for (const auto& [key, value] : env.items()) {
      child.env.push_back(key + "=" +
                          (value.is_string() ? value.get<std::string>() : value.dump()));
    }
    const sluice::sdk::RunInfo& run = ctx.run();
    child.env.push_back("SLUICE_DAG_ID=" + run.dag_id);
    child.env.push_back("SLUICE_RUN_ID=" + run.run_id);
    child.env.push_back("SLUICE_TASK_ID=" + run.task_id);
    child.env.push_back("SLUICE_TRY_NUMBER=" + std::to_string(run.try_number));
    child.env.push_back("SLUICE_IDEMPOTENCY_KEY=" + run.idempotency_key);
    child.env.push_back("SLUICE_OUTPUT_DIR=" + ctx.output_dir().string());
    // Inputs as SLUICE_INPUT_<NAME>: the read-only path of a file or directory, or the JSON
    // text of a value (a string value as it is).
    for (const auto& [name, input] : ctx.inputs().items()) {
      std::string var = "SLUICE_INPUT_";
      for (char c : name) {
        var += std::isalnum(static_cast<unsigned char>(c))
                   ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
                   : '_';
      }
      const json& value = input.contains("path") ? input["path"] : input.value("value", json());
      child.env.push_back(var + "=" +
                          (value.is_string() ? value.get<std::string>() : value.dump()));
    }
    // A plain command runs without the shell, unless `env` sets PATH (posix_spawnp searches
    // the worker's PATH, the shell would search the new one).
    child.argv = PlainCommand(child.command);
    if (env.contains("PATH")) child.argv.clear();
    child.shell = child.argv.empty();
    child.grace = std::chrono::milliseconds(
        static_cast<int64_t>(ctx.Param<double>("kill_grace_seconds") * 1000));

    sluice::plugins::ChildResult result;
    try {
      result = sluice::plugins::RunChild(ctx, child);
    } catch (const StepError& e) {
      // The message that a user of this step met before the runner was shared.
      const std::string text = e.what();
      if (!child.shell && text.find("not found on PATH") != std::string::npos) {
        throw StepError("command exited with code 127 (command not found?): " + child.argv[0]);
      }
      throw;
    }
    if (result.signal != 0) {
      throw StepError("command was killed by signal " + std::to_string(result.signal) + " (" +
                      strsignal(result.signal) + ")");
    }
    if (result.exit_code == 127)
      throw StepError("command exited with code 127 (command not found?)");
    if (result.exit_code != 0) {
      // Its last stderr line says why, more often than not (a traceback's last line, a tool's
      // error); the whole of it is in the log.
      std::string why = result.last_error_line;
      if (why.size() > 300) why = why.substr(0, 300) + "...";
      throw StepError("command exited with code " + std::to_string(result.exit_code) +
                      (why.empty() ? "" : ": " + why));
    }

    const json outputs = ctx.Param<json>("outputs");
    for (const auto& [name, path] : outputs.items()) {
      std::filesystem::path p(path.get<std::string>());
      if (p.is_relative()) p = std::filesystem::path(child.working_dir) / p;
      if (std::filesystem::is_directory(p))
        ctx.OutputDir(name, p);
      else
        ctx.OutputFile(name, p);
    }
    if (result.skipped) ctx.Skip(result.skip_reason);
  }
};

// Creates a file, or updates its modification time: the work a make recipe `touch $@` does,
// in process (a step needs no process of its own).
class Touch : public sluice::sdk::Step {
 public:
  void Run(Context& ctx) override {
    const std::string given = ctx.Param<std::string>("path");
    const std::string path = given.empty() || given[0] == '/' ? given : ctx.DagPath(given).string();
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0666);
    if (fd < 0) throw StepError("cannot touch " + path + ": " + std::strerror(errno));
    const int rc = futimens(fd, nullptr);
    const int saved = errno;
    close(fd);
    if (rc != 0) throw StepError("cannot touch " + path + ": " + std::strerror(saved));
  }
};

class Sleep : public sluice::sdk::Step {
 public:
  void Run(Context& ctx) override {
    const double seconds = ctx.Param<double>("seconds");
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (std::chrono::steady_clock::now() < end) {
      ctx.CheckCancelled();
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
};

class Fail : public sluice::sdk::Step {
 public:
  void Run(Context& ctx) override {
    const std::string mode = ctx.Param<std::string>("mode");
    const std::string message = ctx.Param<std::string>("message");
    if (mode == "error") throw StepError(message);
    if (mode == "throw") throw std::logic_error(message);
    if (mode == "throw_int") throw 42;
    if (mode == "abort") std::abort();
    if (mode == "segfault") {
      raise(SIGSEGV);
    }
    if (mode == "exit") std::_Exit(static_cast<int>(ctx.Param<int64_t>("exit_code")));
    if (mode == "hang") {
      ctx.Info("hanging until killed");
      for (;;) pause();  // ignores cancellation on purpose: only a kill ends it
    }
    if (mode == "flaky") {
      // Fails until try `succeed_on_try`, then succeeds.
      const int64_t succeed_on = ctx.Param<int64_t>("succeed_on_try");
      if (ctx.run().try_number < succeed_on) {
        throw StepError("flaky: try " + std::to_string(ctx.run().try_number) + " fails on purpose");
      }
      ctx.OutputValue("succeeded_on_try", ctx.run().try_number);
      return;
    }
    if (mode == "allocate") {
      // Allocates and touches `bytes`, to test memory limits.
      std::vector<char> block(static_cast<size_t>(ctx.Param<int64_t>("bytes")), 1);
      ctx.OutputValue("allocated", static_cast<int64_t>(block.size()));
      return;
    }
    if (mode == "spin") {
      for (volatile uint64_t i = 0;; i = i + 1) {
      }  // burns CPU until a limit or a kill stops it
    }
    if (mode == "flood") {
      const int64_t bytes = ctx.Param<int64_t>("bytes");
      const std::string line(99, 'x');
      for (int64_t written = 0; written < bytes; written += 100) ctx.Info(line);
      return;
    }
    if (mode == "bad_utf8") {
      // Names that are not UTF-8, as a careless plugin may give them.
      ctx.Metric("loss\xff", 0.5);
      ctx.OutputValue("caf\xe9", 1);
      return;
    }
    throw StepError("unknown mode \"" + mode +
                    "\" (use error, throw, throw_int, abort, segfault, exit, hang, flaky, flood, "
                    "allocate, spin, bad_utf8)");
  }
};

sluice::sdk::Plugin Describe() {
  sluice::sdk::Plugin plugin("core", "1.0.0", "Steps every Sluice installation has");
  plugin.Add<Noop>("core.noop", "Does nothing; publishes `outputs` as value outputs")
      .Param("outputs", ParamType::kObject, "Values to publish as outputs, by name",
             json::object());
  plugin.Add<Touch>("core.touch", "Creates a file or updates its modification time, in process")
      .Param("path", ParamType::kString, "The file (relative: to the DAG file's folder)");
  plugin
      .Add<Shell>("core.shell",
                  "Runs a shell command; stdout and stderr stream into the task log, and the "
                  "command reaches the step's context (metrics, outputs, tags, skip, the model "
                  "registry) with `sluice step` or the socket in $SLUICE_STEP_SOCKET "
                  "(docs/step-protocol.md). Its environment also has SLUICE_DAG_ID, "
                  "SLUICE_RUN_ID, SLUICE_TASK_ID, SLUICE_TRY_NUMBER, SLUICE_IDEMPOTENCY_KEY, "
                  "SLUICE_OUTPUT_DIR, SLUICE_BIN, and SLUICE_INPUT_<NAME> for each input (a "
                  "file's or folder's read-only path, or a value's JSON)")
      .Param("command", ParamType::kString, "The command, run with /bin/sh -c")
      .Param("env", ParamType::kObject, "Extra environment variables", json::object())
      .Param("working_dir", ParamType::kString,
             "Directory to run in, relative to the DAG file's folder (default: the try's "
             "scratch directory)",
             "")
      .Param("outputs", ParamType::kObject,
             "Files or directories the command writes, published as outputs: name -> path "
             "(relative to the working directory)",
             json::object())
      .Param("kill_grace_seconds", ParamType::kNumber,
             "When the try is cancelled, how long the command has after SIGTERM before SIGKILL",
             10.0)
      .Param("code_files", ParamType::kArray,
             "Files the command's results depend on (the script it runs, its config), "
             "relative to the DAG file's folder: their content is part of the cache key, so "
             "that editing them invalidates cached results",
             json::array())
      .CodeParam("code_files")
      .AnyInputs();
  plugin.Add<Sleep>("core.sleep", "Waits, then succeeds; stops early when cancelled")
      .Param("seconds", ParamType::kNumber, "How long to wait");
  plugin.Add<Fail>("core.fail", "Misbehaves on purpose, for testing")
      .Param("mode", ParamType::kString,
             "error | throw | throw_int | abort | segfault | exit | hang | flaky | flood | "
             "allocate | spin",
             "error")
      .Param("message", ParamType::kString, "Error message for error and throw",
             "failed on purpose")
      .Param("exit_code", ParamType::kInteger, "Exit code for mode exit", 3)
      .Param("succeed_on_try", ParamType::kInteger, "For mode flaky: the first try that succeeds",
             2)
      .Param("bytes", ParamType::kInteger,
             "flood: bytes of log to write; allocate: bytes to allocate", 1 << 20)
      .NotCacheable();
  return plugin;
}

}  // namespace

SLUICE_PLUGIN(Describe)
