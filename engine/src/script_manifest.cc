#include "sluice/script_manifest.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include "sluice/json_limits.h"
#include "sluice/sha256.h"

extern char** environ;

namespace sluice {

using nlohmann::json;

namespace {

constexpr auto kReaderTimeout = std::chrono::seconds(10);
constexpr size_t kMaxReaderOutput = 4u << 20;

// Runs argv with stdin from /dev/null; its stdout, or an error naming the command.
StatusOr<std::string> Capture(const std::vector<std::string>& argv) {
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) return Status::Internal(std::string("pipe: ") + strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  std::vector<std::string> args = argv;
  std::vector<char*> raw;
  raw.reserve(args.size() + 1);
  for (std::string& a : args) raw.push_back(a.data());
  raw.push_back(nullptr);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, raw[0], &actions, nullptr, raw.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  if (rc != 0) {
    ::close(out[0]);
    return Status::NotFound("cannot run the manifest reader " + argv[0] + ": " + strerror(rc));
  }
  std::string text;
  bool timed_out = false;
  const auto deadline = std::chrono::steady_clock::now() + kReaderTimeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{out[0], POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    char buf[65536];
    const ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    if (text.size() < kMaxReaderOutput) text.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return Status::Internal("the manifest reader " + argv[0] + " did not answer within " +
                            std::to_string(kReaderTimeout.count()) + " s");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return Status::Internal("the manifest reader " + argv[0] + " failed (exit status " +
                            std::to_string(status) + ")");
  }
  return text;
}

std::vector<std::string> Strings(const json& j) {
  std::vector<std::string> out;
  if (!j.is_array()) return out;
  for (const json& v : j) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

StatusOr<ScriptManifest> Parse(const std::string& text, const std::string& reader) {
  StatusOr<json> parsed = ParseJson(text, "the output of " + reader);
  if (!parsed.ok()) return parsed.status();
  const json& j = *parsed;
  if (!j.is_object()) return Status::Internal(reader + " printed no manifest object");
  ScriptManifest m;
  m.error = j.value("error", "");
  m.line = j.value("line", 0);
  m.column = j.value("column", 0);
  m.candidates = Strings(j.value("candidates", json::array()));
  if (!m.error.empty()) return m;
  m.function = j.value("function", "");
  m.params_known = j.contains("params") && j["params"].is_array();
  if (m.params_known) {
    for (const json& p : j["params"]) {
      if (!p.is_object()) continue;
      ScriptManifest::Param param;
      param.name = p.value("name", "");
      param.type = p.value("type", "any");
      param.default_value = p.value("default", json());
      param.line = p.value("line", 0);
      param.column = p.value("column", 0);
      m.params.push_back(std::move(param));
    }
  }
  m.inputs_known = j.contains("inputs") && j["inputs"].is_array();
  m.inputs = Strings(j.value("inputs", json::array()));
  m.outputs = Strings(j.value("outputs", json::array()));
  m.arguments = Strings(j.value("arguments", json::array()));
  m.any_arguments = j.value("any_arguments", false);
  return m;
}

}  // namespace

const ScriptManifest::Param* ScriptManifest::FindParam(const std::string& name) const {
  for (const Param& p : params) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

StatusOr<ScriptManifest> ReadScriptManifest(const std::vector<std::string>& command,
                                            const std::string& script,
                                            const std::string& function) {
  if (command.empty()) return Status::InvalidArgument("no manifest reader command");
  std::ifstream in(script, std::ios::binary);
  if (!in) return Status::NotFound(script + " cannot be read");
  std::ostringstream content;
  content << in.rdbuf();
  std::string key = Sha256Hex(content.str()) + '\n' + function;
  for (const std::string& c : command) key += '\n' + c;

  static std::mutex mutex;
  static std::map<std::string, ScriptManifest> cache;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (auto it = cache.find(key); it != cache.end()) return it->second;
  }
  std::vector<std::string> argv = command;
  argv.push_back(script);
  argv.push_back(function);
  StatusOr<std::string> text = Capture(argv);
  if (!text.ok()) return text.status();
  StatusOr<ScriptManifest> m = Parse(*text, command.back());
  if (!m.ok()) return m.status();
  std::lock_guard<std::mutex> lock(mutex);
  if (cache.size() > 4096) cache.clear();  // a bound for a daemon whose scripts keep changing
  cache[key] = *m;
  return m;
}

}  // namespace sluice
