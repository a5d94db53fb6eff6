#include "python/python_predictor.h"

#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "python/python_env.h"

extern char** environ;

namespace sluice::python {

namespace fs = std::filesystem;
using nlohmann::json;

PythonPredictor::PythonPredictor(const fs::path& dir) : dir_(dir) {
  std::ifstream in(dir / "sluice-model.json");
  json card;
  try {
    card = json::parse(in);
  } catch (const json::exception& e) {
    throw std::runtime_error((dir / "sluice-model.json").string() +
                             " is not valid JSON: " + e.what());
  }
  // The interpreter the model was trained with (a virtualenv's, say), else the default.
  std::string chosen = card.value("python", "");
  std::error_code ec;
  if (!chosen.empty() && !fs::exists(chosen, ec)) chosen.clear();
  python_ = Interpreter(chosen, "sluice-model.json's python", dir, "model folder " + dir.string());
  sdk_ = SdkDir();
  Start();
}

PythonPredictor::~PythonPredictor() { Stop(); }

void PythonPredictor::Start() {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    throw std::runtime_error(std::string("socketpair: ") + std::strerror(errno));
  }
  std::vector<std::string> env;
  const std::vector<std::string> ours = ChildEnv(sdk_);
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('='));
    bool replaced = false;
    for (const std::string& o : ours) replaced = replaced || o.rfind(name + "=", 0) == 0;
    if (!replaced) env.push_back(entry);
  }
  env.insert(env.end(), ours.begin(), ours.end());
  std::vector<char*> envp;
  envp.reserve(env.size() + 1);
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = {python_.string(), "-m", "sluice._serve", dir_.string()};
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // stdin and stdout are Python's end of the pair; stderr stays the worker's (the daemon's
  // log). Nothing else is inherited: a Python holding the worker's own channel open would
  // keep the daemon from seeing the worker die. It stays in the worker's process group, so
  // that killing the worker kills it too.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pair[1], 0);
  posix_spawn_file_actions_adddup2(&actions, pair[1], 1);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(pair[1]);
  if (rc != 0) {
    ::close(pair[0]);
    throw std::runtime_error("cannot start " + python_.string() + ": " + std::strerror(rc));
  }
  pid_ = pid;
  fd_ = pair[0];
  buffer_.clear();
  std::string line;
  if (!ReadLine(&line)) {
    Stop();
    throw std::runtime_error(python_.string() + " exited while loading " + dir_.string() +
                             " (its output is in the daemon's log)");
  }
  const json hello = json::parse(line, nullptr, false);
  if (!hello.is_object() || !hello.value("ready", false)) {
    Stop();
    const std::string why = hello.is_object() ? hello.value("error", line) : line;
    throw std::runtime_error("the Python predictor in " + dir_.string() + " cannot load: " + why);
  }
}

void PythonPredictor::Stop() {
  if (fd_ >= 0) ::close(fd_);  // Python sees the end of its input and exits
  fd_ = -1;
  if (pid_ <= 0) return;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  int status = 0;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  pid_ = -1;
}

bool PythonPredictor::ReadLine(std::string* line) {
  for (;;) {
    if (const size_t nl = buffer_.find('\n'); nl != std::string::npos) {
      line->assign(buffer_, 0, nl);
      buffer_.erase(0, nl + 1);
      return true;
    }
    char chunk[65536];
    const ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    buffer_.append(chunk, static_cast<size_t>(n));
  }
}

json PythonPredictor::Predict(const json& request) {
  if (fd_ < 0) Start();  // it died on an earlier request
  std::string out = request.dump(-1, ' ', false, json::error_handler_t::replace);
  out += '\n';
  for (size_t sent = 0; sent < out.size();) {
    const ssize_t n = ::send(fd_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string line;
  if (!ReadLine(&line)) {
    Stop();
    throw std::runtime_error(
        "the Python predictor exited while answering (its traceback, if any, is in the "
        "daemon's log); it is started again for the next request");
  }
  json reply = json::parse(line, nullptr, false);
  if (!reply.is_object()) throw std::runtime_error("the Python predictor answered: " + line);
  if (reply.contains("ok")) return std::move(reply["ok"]);
  if (reply.contains("bad_request")) throw sdk::BadRequest(reply.value("bad_request", ""));
  throw std::runtime_error(reply.value("error", std::string("the Python predictor failed")));
}

}  // namespace sluice::python
