#include "child_step.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

extern char** environ;

namespace sluice::plugins {
namespace {

using nlohmann::json;
using sdk::Context;
using sdk::LogLevel;
using sdk::StepError;

// Splits what arrives on a pipe into log lines.
class LineForwarder {
 public:
  LineForwarder(Context& ctx, LogLevel level) : ctx_(ctx), level_(level) {}
  // Returns false at end of file.
  bool Read(int fd) {
    char buf[65536];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    if (n <= 0) {
      Flush();
      return false;
    }
    pending_.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1) {
      Emit(std::string_view(pending_).substr(start, nl - start));
    }
    pending_.erase(0, start);
    return true;
  }
  void Flush() {
    if (!pending_.empty()) Emit(pending_);
    pending_.clear();
  }
  const std::string& last() const { return last_; }

 private:
  void Emit(std::string_view line) {
    ctx_.Log(level_, line);
    if (!line.empty()) last_ = std::string(line);
  }
  Context& ctx_;
  LogLevel level_;
  std::string pending_;
  std::string last_;
};

// One connection of the step protocol: lines in, one reply line out for each.
struct Client {
  int fd = -1;
  std::string pending;
};

LogLevel LevelNamed(const std::string& name) {
  if (name == "debug") return LogLevel::kDebug;
  if (name == "warning" || name == "warn") return LogLevel::kWarning;
  if (name == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

class Protocol {
 public:
  Protocol(Context& ctx, std::string working_dir)
      : ctx_(ctx), working_dir_(std::move(working_dir)) {}

  // The reply to one request line.
  std::string Handle(const std::string& line) {
    json reply;
    try {
      const json request = json::parse(line);
      reply = {{"ok", true}, {"result", Do(request)}};
    } catch (const json::exception& e) {
      reply = {{"ok", false}, {"error", std::string("bad request: ") + e.what()}};
    } catch (const StepError& e) {
      reply = {{"ok", false}, {"error", e.what()}};
    } catch (const std::exception& e) {
      reply = {{"ok", false}, {"error", e.what()}};
    }
    return reply.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  }

  bool skipped() const { return skipped_; }
  const std::string& skip_reason() const { return skip_reason_; }

 private:
  std::filesystem::path Resolve(const std::string& path) const {
    std::filesystem::path p(path);
    return p.is_relative() ? std::filesystem::path(working_dir_) / p : p;
  }

  json Do(const json& request) {
    const std::string op = request.at("op").get<std::string>();
    if (op == "log") {
      ctx_.Log(LevelNamed(request.value("level", "info")), request.at("text").get<std::string>());
      return nullptr;
    }
    if (op == "metric") {
      const std::string name = request.at("name").get<std::string>();
      if (!request.at("value").is_number()) {
        throw StepError("metric \"" + name + "\" must be a number, got " +
                        request.at("value").dump());
      }
      ctx_.Metric(name, request.at("value").get<double>(), request.value("step", int64_t{-1}));
      return nullptr;
    }
    if (op == "output") {
      const std::string name = request.at("name").get<std::string>();
      const std::string kind = request.value("kind", "value");
      if (kind == "value") {
        ctx_.OutputValue(name, request.at("value"));
      } else if (kind == "file" || kind == "dir") {
        const std::filesystem::path path = Resolve(request.at("path").get<std::string>());
        std::error_code ec;
        if (!std::filesystem::exists(path, ec)) {
          throw StepError("output \"" + name + "\": " + path.string() + " does not exist");
        }
        if (kind == "dir" || std::filesystem::is_directory(path, ec)) {
          ctx_.OutputDir(name, path);
        } else {
          ctx_.OutputFile(name, path);
        }
      } else {
        throw StepError("output \"" + name + "\": kind must be file, dir or value, not \"" + kind +
                        "\"");
      }
      return nullptr;
    }
    if (op == "tag") {
      ctx_.Tag(request.at("name").get<std::string>(), request.at("value").get<std::string>());
      return nullptr;
    }
    if (op == "skip") {
      skipped_ = true;
      skip_reason_ = request.value("reason", "skipped by the step");
      return nullptr;
    }
    if (op == "call") {
      return ctx_.Call(request.at("method").get<std::string>(),
                       request.value("request", json::object()));
    }
    if (op == "cancelled") return ctx_.cancelled();
    if (op == "info") {
      const sdk::RunInfo& run = ctx_.run();
      return {{"run",
               {{"dag_id", run.dag_id},
                {"run_id", run.run_id},
                {"task_id", run.task_id},
                {"try_number", run.try_number},
                {"logical_date", run.logical_date},
                {"idempotency_key", run.idempotency_key}}},
              {"params", ctx_.params()},
              {"inputs", ctx_.inputs()},
              {"output_dir", ctx_.output_dir().string()},
              {"dag_dir", ctx_.dag_dir().string()},
              {"scratch_dir", ctx_.scratch_dir().string()}};
    }
    throw StepError("unknown op \"" + op +
                    "\" (use log, metric, output, tag, skip, call, cancelled or info)");
  }

  Context& ctx_;
  const std::string working_dir_;
  bool skipped_ = false;
  std::string skip_reason_;
};

// A listening Unix socket in a private folder (0700: only this user can connect), removed
// with it. The folder is short on purpose: socket paths are limited to 107 bytes.
class Listener {
 public:
  Listener() {
    const char* tmp = std::getenv("TMPDIR");
    std::string base = tmp != nullptr && *tmp != '\0' && std::strlen(tmp) < 60 ? tmp : "/tmp";
    std::string dir = base + "/sluice-step-XXXXXX";
    if (mkdtemp(dir.data()) == nullptr) {
      throw StepError("cannot create a folder for the step socket in " + base + ": " +
                      std::strerror(errno));
    }
    dir_ = dir;
    path_ = dir_ + "/s";
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(fd_, 16) != 0) {
      const int saved = errno;
      Close();
      throw StepError("cannot listen on the step socket " + path_ + ": " + std::strerror(saved));
    }
  }
  ~Listener() { Close(); }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;
  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

 private:
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    if (!path_.empty()) unlink(path_.c_str());
    if (!dir_.empty()) rmdir(dir_.c_str());
  }
  std::string dir_;
  std::string path_;
  int fd_ = -1;
};

void WriteAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      poll(&p, 1, 1000);
      continue;
    }
    if (n <= 0) return;  // the client went away; its loss
    done += static_cast<size_t>(n);
  }
}

// The child's environment: ours first, then the worker's entries we do not override.
std::vector<std::string> Environment(const std::vector<std::string>& ours) {
  std::vector<std::string> env = ours;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view entry(*e);
    std::string_view key = entry.substr(0, entry.find('='));
    bool overridden = false;
    for (const std::string& o : ours) {
      if (std::string_view(o).substr(0, o.find('=')) == key) overridden = true;
    }
    if (!overridden) env.emplace_back(entry);
  }
  return env;
}

}  // namespace

std::string FindOnPath(const std::string& program, const std::string& path) {
  if (program.find('/') != std::string::npos) return program;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t colon = path.find(':', start);
    std::string dir =
        path.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    if (dir.empty()) dir = ".";
    std::string candidate = dir + "/" + program;
    std::error_code ec;
    if (access(candidate.c_str(), X_OK) == 0 && std::filesystem::is_regular_file(candidate, ec)) {
      return candidate;
    }
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return "";
}

SpawnLauncher::~SpawnLauncher() {
  if (exit_fd_ >= 0) close(exit_fd_);
  if (pid_ > 0) {  // never waited for: RunChild threw in between; do not leave a zombie
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
}

pid_t Spawn(const std::string& program, const std::vector<std::string>& argv,
            const std::vector<std::string>& env, const std::string& dir,
            const std::vector<std::pair<int, int>>& fds) {
  std::vector<char*> argp;
  argp.reserve(argv.size() + 1);
  for (const std::string& a : argv) argp.push_back(const_cast<char*>(a.c_str()));
  argp.push_back(nullptr);
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  // posix_spawn, not fork: glibc starts the child with vfork semantics (no copy of the
  // worker's page tables), so a short command costs one exec, not a fork of a large process.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  int keep = STDERR_FILENO;
  for (const auto& [from, to] : fds) {
    posix_spawn_file_actions_adddup2(&actions, from, to);
    keep = std::max(keep, to);
  }
  // The child gets the fds it is given and nothing else the worker holds.
  posix_spawn_file_actions_addclosefrom_np(&actions, keep + 1);
  posix_spawn_file_actions_addchdir_np(&actions, dir.c_str());
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Default signal handling and no blocked signals, whatever the worker has set.
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGCHLD}) sigaddset(&defaults, sig);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, program.c_str(), &actions, &attr, argp.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  return rc != 0 ? -rc : pid;
}

pid_t SpawnLauncher::Start(const std::string& program, const std::vector<std::string>& argv,
                           const std::vector<std::string>& env, const std::string& dir, int out,
                           int err) {
  if (exit_fd_ >= 0) close(exit_fd_);
  exit_fd_ = -1;
  // The step gets its stdio and nothing else (it reaches the worker through
  // SLUICE_STEP_SOCKET, by path).
  const pid_t pid = Spawn(program, argv, env, dir, {{out, STDOUT_FILENO}, {err, STDERR_FILENO}});
  if (pid < 0) return pid;
  pid_ = pid;
  exit_fd_ = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  return pid;
}

bool SpawnLauncher::Wait(int* status, bool block) {
  if (pid_ <= 0) return true;
  pid_t got;
  while ((got = waitpid(pid_, status, block ? 0 : WNOHANG)) < 0 && errno == EINTR) {
  }
  if (got != pid_) return false;
  pid_ = -1;
  return true;
}

ChildResult RunChild(Context& ctx, const ChildCommand& command) {
  Listener listener;
  std::vector<std::string> env = command.env;
  env.push_back("SLUICE_STEP_SOCKET=" + listener.path());
  // The step runs in a worker, which is the `sluice` binary: $SLUICE_BIN names it, and its
  // folder goes at the end of PATH, so that `sluice step ...` works even when sluice is not
  // installed on PATH (a build tree), without shadowing anything the user has there.
  std::error_code link_error;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", link_error);
  if (!link_error) {
    env.push_back("SLUICE_BIN=" + self.string());
    bool has_path = false;
    for (const std::string& e : env) has_path = has_path || e.rfind("PATH=", 0) == 0;
    const char* path = std::getenv("PATH");
    if (!has_path) {
      env.push_back("PATH=" + std::string(path != nullptr ? path : "/usr/bin:/bin") + ":" +
                    self.parent_path().string());
    }
  }
  const std::vector<std::string> env_strings = Environment(env);
  const std::vector<std::string>& words = command.argv;
  const std::vector<std::string> argv_words =
      command.shell ? std::vector<std::string>{"sh", "-c", command.command} : words;

  int out[2];
  int err[2];
  if (pipe2(out, O_CLOEXEC) != 0)
    throw StepError(std::string("cannot create pipes: ") + std::strerror(errno));
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(out[0]);
    close(out[1]);
    throw StepError(std::string("cannot create pipes: ") + std::strerror(errno));
  }
  // A program is searched on the child's PATH (posix_spawnp would search the worker's).
  std::string child_path = "/usr/bin:/bin";
  for (const std::string& e : env_strings) {
    if (e.rfind("PATH=", 0) == 0) child_path = e.substr(5);
  }
  const std::string program = command.shell ? "/bin/sh" : FindOnPath(words[0], child_path);
  SpawnLauncher spawner;
  Launcher& launcher = command.launcher != nullptr ? *command.launcher : spawner;
  const pid_t pid = program.empty() ? -ENOENT
                                    : launcher.Start(program, argv_words, env_strings,
                                                     command.working_dir, out[1], err[1]);
  close(out[1]);
  close(err[1]);
  if (pid < 0) {
    const int rc = -pid;
    close(out[0]);
    close(err[0]);
    std::error_code ec;
    if (!command.shell && (rc == ENOENT || rc == EACCES) &&
        std::filesystem::is_directory(command.working_dir, ec)) {
      throw StepError("cannot run " + words[0] + ": " + std::strerror(rc) +
                      (rc == ENOENT ? " (not found on PATH; give its full path)" : ""));
    }
    throw StepError("cannot start the command in " + command.working_dir + ": " +
                    std::strerror(rc) + (rc == ENOENT ? " (does working_dir exist?)" : ""));
  }

  LineForwarder stdout_lines(ctx, LogLevel::kInfo);
  LineForwarder stderr_lines(ctx, LogLevel::kWarning);
  Protocol protocol(ctx, command.working_dir);
  std::vector<Client> clients;
  int pipes[2] = {out[0], err[0]};
  int status = 0;
  bool exited = false;
  bool cancelled = false;
  std::chrono::steady_clock::time_point killed_at{};
  // The child's exit wakes the poll (a pidfd, or the fork server's socket): its pipes close a
  // moment before it can be reaped, and without this the loop would sleep out a poll timeout
  // after every step.
  const int exit_fd = launcher.exit_fd();
  while (!exited || pipes[0] >= 0 || pipes[1] >= 0) {
    std::vector<pollfd> fds;
    for (int fd : pipes) fds.push_back({fd, POLLIN, 0});  // a negative fd is ignored
    fds.push_back({listener.fd(), POLLIN, 0});
    for (const Client& c : clients) fds.push_back({c.fd, POLLIN, 0});
    fds.push_back({exited ? -1 : exit_fd, POLLIN, 0});
    const int ready = poll(fds.data(), fds.size(), exit_fd >= 0 ? 100 : 5);
    if (ready < 0 && errno != EINTR) break;
    for (int i = 0; i < 2 && ready > 0; ++i) {
      if (pipes[i] < 0 || (fds[static_cast<size_t>(i)].revents & (POLLIN | POLLHUP | POLLERR)) == 0)
        continue;
      if (!(i == 0 ? stdout_lines : stderr_lines).Read(pipes[i])) {
        close(pipes[i]);
        pipes[i] = -1;
      }
    }
    if (ready > 0 && (fds[2].revents & POLLIN) != 0) {
      for (int fd; (fd = accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) {
        clients.push_back({fd, {}});
      }
    }
    for (size_t k = 0; ready > 0 && k < clients.size() && 3 + k + 1 < fds.size(); ++k) {
      if ((fds[3 + k].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      Client& c = clients[k];
      char buf[65536];
      const ssize_t n = read(c.fd, buf, sizeof buf);
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) {
        close(c.fd);
        c.fd = -1;
        continue;
      }
      c.pending.append(buf, static_cast<size_t>(n));
      size_t start = 0;
      for (size_t nl; (nl = c.pending.find('\n', start)) != std::string::npos; start = nl + 1) {
        WriteAll(c.fd, protocol.Handle(c.pending.substr(start, nl - start)));
      }
      c.pending.erase(0, start);
    }
    clients.erase(
        std::remove_if(clients.begin(), clients.end(), [](const Client& c) { return c.fd < 0; }),
        clients.end());
    if (!exited && launcher.Wait(&status, false)) exited = true;
    if (!exited && !cancelled && ctx.cancelled()) {
      cancelled = true;
      killed_at = std::chrono::steady_clock::now();
      kill(pid, SIGTERM);
    }
    if (!exited && cancelled && std::chrono::steady_clock::now() - killed_at > command.grace) {
      kill(pid, SIGKILL);
    }
  }
  for (int fd : pipes) {
    if (fd >= 0) close(fd);
  }
  for (const Client& c : clients) close(c.fd);
  if (!exited) launcher.Wait(&status, true);
  if (cancelled) {
    throw StepError(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL
                        ? "cancelled; the command ignored SIGTERM and was killed after " +
                              std::to_string(command.grace.count()) + " ms"
                        : "cancelled; the command was sent SIGTERM");
  }
  ChildResult result;
  if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  } else {
    result.exit_code = WEXITSTATUS(status);
  }
  result.skipped = protocol.skipped();
  result.skip_reason = protocol.skip_reason();
  result.last_error_line = stderr_lines.last();
  return result;
}

}  // namespace sluice::plugins
