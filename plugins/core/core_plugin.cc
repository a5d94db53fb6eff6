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
#include <poll.h>
#include <signal.h>
#include <sluice/step.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

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

// Forwards complete lines from a pipe to the log; keeps a partial last line for later.
class LineForwarder {
 public:
  LineForwarder(Context& ctx, sluice::sdk::LogLevel level) : ctx_(ctx), level_(level) {}
  // Returns false at end of file.
  bool Read(int fd) {
    char buf[65536];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    if (n <= 0) {
      Flush();
      return false;
    }
    pending_.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
      ctx_.Log(level_, std::string_view(pending_).substr(start, nl - start));
    }
    pending_.erase(0, start);
    return true;
  }
  void Flush() {
    if (!pending_.empty()) ctx_.Log(level_, pending_);
    pending_.clear();
  }

 private:
  Context& ctx_;
  sluice::sdk::LogLevel level_;
  std::string pending_;
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
    const std::string command = ctx.Param<std::string>("command");
    const json env = ctx.Param<json>("env");
    std::string dir = ctx.Param<std::string>("working_dir", "");
    if (dir.empty()) dir = ctx.scratch_dir().string();

    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
      throw StepError(std::string("cannot create pipes: ") + std::strerror(errno));
    }
    // Build everything the child needs before spawning it.
    std::vector<std::string> env_strings;
    for (const auto& [key, value] : env.items()) {
      env_strings.push_back(key + "=" +
                            (value.is_string() ? value.get<std::string>() : value.dump()));
    }
    const sluice::sdk::RunInfo& run = ctx.run();
    env_strings.push_back("SLUICE_DAG_ID=" + run.dag_id);
    env_strings.push_back("SLUICE_RUN_ID=" + run.run_id);
    env_strings.push_back("SLUICE_TASK_ID=" + run.task_id);
    env_strings.push_back("SLUICE_TRY_NUMBER=" + std::to_string(run.try_number));
    env_strings.push_back("SLUICE_IDEMPOTENCY_KEY=" + run.idempotency_key);
    env_strings.push_back("SLUICE_OUTPUT_DIR=" + ctx.output_dir().string());
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
      env_strings.push_back(var + "=" +
                            (value.is_string() ? value.get<std::string>() : value.dump()));
    }

    // The environment: ours first, then the worker's entries we do not override.
    std::vector<char*> envp;
    for (std::string& e : env_strings) envp.push_back(e.data());
    for (char** e = environ; *e != nullptr; ++e) {
      std::string_view entry(*e);
      std::string_view key = entry.substr(0, entry.find('='));
      bool overridden = false;
      for (const std::string& ours : env_strings) {
        if (std::string_view(ours).substr(0, ours.find('=')) == key) overridden = true;
      }
      if (!overridden) envp.push_back(*e);
    }
    envp.push_back(nullptr);
    // A plain command runs without the shell, unless `env` sets PATH (posix_spawnp searches
    // the worker's PATH, the shell would search the new one).
    std::vector<std::string> words = PlainCommand(command);
    if (env.contains("PATH")) words.clear();
    std::vector<char*> argv;
    if (words.empty()) {
      for (const char* a : {"sh", "-c"}) argv.push_back(const_cast<char*>(a));
      argv.push_back(const_cast<char*>(command.c_str()));
    } else {
      for (std::string& w : words) argv.push_back(w.data());
    }
    argv.push_back(nullptr);

    // posix_spawn, not fork: glibc starts the child with vfork semantics (no copy of the
    // worker's page tables, which grow with every plugin library it has loaded), so a short
    // command costs one exec, not a fork of a large process.
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
    posix_spawn_file_actions_addchdir_np(&actions, dir.c_str());
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    // The command starts with default signal handling and no blocked signals, whatever the
    // worker has set.
    sigset_t defaults;
    sigemptyset(&defaults);
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGCHLD}) sigaddset(&defaults, sig);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
    pid_t pid = -1;
    const int rc = words.empty()
                       ? posix_spawn(&pid, "/bin/sh", &actions, &attr, argv.data(), envp.data())
                       : posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (rc != 0) {
      for (int fd : {out[0], out[1], err[0], err[1]}) close(fd);
      if (!words.empty() && (rc == ENOENT || rc == EACCES) && std::filesystem::is_directory(dir)) {
        throw StepError("command exited with code 127 (command not found?): " + words[0]);
      }
      throw StepError(std::string("cannot start the command in ") + dir + ": " + std::strerror(rc) +
                      (rc == ENOENT ? " (does working_dir exist?)" : ""));
    }
    close(out[1]);
    close(err[1]);
    LineForwarder stdout_lines(ctx, sluice::sdk::LogLevel::kInfo);
    LineForwarder stderr_lines(ctx, sluice::sdk::LogLevel::kWarning);
    pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
    int open_fds = 2;
    bool cancelled = false;
    while (open_fds > 0) {
      int ready = poll(fds, 2, 200);
      if (ready < 0 && errno != EINTR) break;
      for (int i = 0; i < 2 && ready > 0; ++i) {
        if (fds[i].fd < 0 || (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        LineForwarder& forwarder = i == 0 ? stdout_lines : stderr_lines;
        if (!forwarder.Read(fds[i].fd)) {
          close(fds[i].fd);
          fds[i].fd = -1;
          --open_fds;
        }
      }
      if (!cancelled && ctx.cancelled()) {
        cancelled = true;
        kill(pid, SIGTERM);
      }
    }
    for (pollfd& p : fds) {
      if (p.fd >= 0) close(p.fd);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (cancelled) throw StepError("cancelled; the command was sent SIGTERM");
    if (WIFSIGNALED(status)) {
      throw StepError("command was killed by signal " + std::to_string(WTERMSIG(status)) + " (" +
                      strsignal(WTERMSIG(status)) + ")");
    }
    int code = WEXITSTATUS(status);
    if (code == 127) throw StepError("command exited with code 127 (command not found?)");
    if (code != 0) throw StepError("command exited with code " + std::to_string(code));

    const json outputs = ctx.Param<json>("outputs");
    for (const auto& [name, path] : outputs.items()) {
      std::filesystem::path p(path.get<std::string>());
      if (p.is_relative()) p = std::filesystem::path(dir) / p;
      if (std::filesystem::is_directory(p))
        ctx.OutputDir(name, p);
      else
        ctx.OutputFile(name, p);
    }
  }
};

// Creates a file, or updates its modification time: the work a make recipe `touch $@` does,
// in process (a step needs no process of its own).
class Touch : public sluice::sdk::Step {
 public:
  void Run(Context& ctx) override {
    const std::string path = ctx.Param<std::string>("path");
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
    throw StepError("unknown mode \"" + mode +
                    "\" (use error, throw, throw_int, abort, segfault, exit, hang, flaky, flood, "
                    "allocate, spin)");
  }
};

sluice::sdk::Plugin Describe() {
  sluice::sdk::Plugin plugin("core", "1.0.0", "Steps every Sluice installation has");
  plugin.Add<Noop>("core.noop", "Does nothing; publishes `outputs` as value outputs")
      .Param("outputs", ParamType::kObject, "Values to publish as outputs, by name",
             json::object());
  plugin.Add<Touch>("core.touch", "Creates a file or updates its modification time, in process")
      .Param("path", ParamType::kString, "The file");
  plugin.Add<Shell>("core.shell", "Runs a shell command; stdout and stderr go to the task log")
      .Param("command", ParamType::kString, "The command, run with /bin/sh -c")
      .Param("env", ParamType::kObject, "Extra environment variables", json::object())
      .Param("working_dir", ParamType::kString,
             "Directory to run in (default: the try's scratch directory)", "")
      .Param("outputs", ParamType::kObject,
             "Files or directories the command writes, published as outputs: name -> path "
             "(relative to the working directory)",
             json::object())
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
