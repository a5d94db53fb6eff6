#include "python/fork_server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <thread>

namespace sluice::python {
namespace {

namespace fs = std::filesystem;

// What the server runs: it returns from serve() only in a forked child, with the try's argv.
constexpr const char* kServeCode =
    "from sluice._forkserver import serve; argv = serve(); "
    "from sluice._run import main; main(argv)";

constexpr const char* kSocketVar = "SLUICE_STEP_SOCKET=";

bool SendAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

ForkServer::~ForkServer() {
  Stop();
  if (child_fd_ >= 0) close(child_fd_);
}

std::string ForkServer::Key(const std::string& program, const std::vector<std::string>& env) const {
  // The interpreter and every SDK file by identity and time, and the environment but for
  // the try's own socket.
  std::string key = program;
  auto stamp = [&key](const fs::path& p) {
    struct stat st {};
    if (stat(p.c_str(), &st) == 0) {
      key += '\0' + std::to_string(st.st_ino) + ':' + std::to_string(st.st_size) + ':' +
             std::to_string(st.st_mtim.tv_sec) + '.' + std::to_string(st.st_mtim.tv_nsec);
    }
  };
  stamp(program);
  std::error_code ec;
  for (fs::directory_iterator it(sdk_ / "sluice", ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".py") stamp(it->path());
  }
  for (const std::string& e : env) {
    if (e.rfind(kSocketVar, 0) != 0) key += '\n' + e;
  }
  return key;
}

bool ForkServer::Launch(const std::string& program, const std::vector<std::string>& env) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return false;
  const int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  std::vector<std::string> server_env;
  for (const std::string& e : env) {
    if (e.rfind(kSocketVar, 0) != 0) server_env.push_back(e);
  }
  // The server's own stdout and stderr are /dev/null: nothing of a try goes there, and a
  // server that fails to start is replaced by a spawned try, which shows why in the task log.
  std::vector<std::pair<int, int>> fds = {{sv[1], 3}};
  if (null >= 0) fds.insert(fds.begin(), {{null, STDOUT_FILENO}, {null, STDERR_FILENO}});
  const pid_t pid = plugins::Spawn(program, {program, "-c", kServeCode}, server_env, "/", fds);
  if (null >= 0) close(null);
  close(sv[1]);
  if (pid < 0) {
    close(sv[0]);
    return false;
  }
  server_ = pid;
  fd_ = sv[0];
  pending_.clear();
  return true;
}

void ForkServer::Stop() {
  if (fd_ >= 0) close(fd_);  // the server ends at end of file
  fd_ = -1;
  pending_.clear();
  key_.clear();
  if (server_ <= 0) return;
  int status = 0;
  for (int i = 0; i < 100; ++i) {
    if (waitpid(server_, &status, WNOHANG) != 0) {
      server_ = -1;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(server_, SIGKILL);
  while (waitpid(server_, &status, 0) < 0 && errno == EINTR) {
  }
  server_ = -1;
}

std::string ForkServer::ReadLine(int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (pending_.find('\n') == std::string::npos) {
    int wait = -1;
    if (timeout_ms >= 0) {
      wait = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  deadline - std::chrono::steady_clock::now())
                                  .count());
      if (wait < 0) return "";
    }
    pollfd p{fd_, POLLIN, 0};
    const int ready = poll(&p, 1, wait);
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) return "";
    char buf[256];
    const ssize_t n = recv(fd_, buf, sizeof buf, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return "";
    pending_.append(buf, static_cast<size_t>(n));
  }
  const size_t nl = pending_.find('\n');
  std::string line = pending_.substr(0, nl);
  pending_.erase(0, nl + 1);
  return line;
}

pid_t ForkServer::Start(const std::string& program, const std::vector<std::string>& argv,
                        const std::vector<std::string>& env, const std::string& dir, int out,
                        int err) {
  forked_ = false;
  lost_ = false;
  child_ = -1;
  if (child_fd_ >= 0) close(child_fd_);
  child_fd_ = -1;
  if (argv.size() < 3 || argv[1] != "-c" || argv[2] != kRunCode) {
    return spawn_.Start(program, argv, env, dir, out, err);
  }
  // The request is JSON: a folder, argument or variable that is not UTF-8 is spawned.
  std::string body;
  try {
    nlohmann::json request = {{"argv", nlohmann::json::array({"-c"})}, {"env", env}, {"cwd", dir}};
    for (size_t i = 3; i < argv.size(); ++i) request["argv"].push_back(argv[i]);
    body = request.dump();
  } catch (const nlohmann::json::exception&) {
    return spawn_.Start(program, argv, env, dir, out, err);
  }
  const std::string key = Key(program, env);
  if (failed_.count(key) != 0) return spawn_.Start(program, argv, env, dir, out, err);
  const bool fresh = key != key_ || fd_ < 0;
  if (fresh) {
    Stop();
    if (!Launch(program, env)) {
      failed_.insert(key);
      return spawn_.Start(program, argv, env, dir, out, err);
    }
    key_ = key;
  }
  std::string message(4, '\0');
  const auto size = static_cast<uint32_t>(body.size());
  for (int i = 0; i < 4; ++i) message[static_cast<size_t>(i)] = static_cast<char>(size >> (8 * i));
  message += body;
  // The try's stdout and stderr ride on the first bytes.
  int fds[2] = {out, err};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof fds)] = {};
  iovec iov{message.data(), message.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  cmsghdr* cm = CMSG_FIRSTHDR(&msg);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof fds);
  std::memcpy(CMSG_DATA(cm), fds, sizeof fds);
  ssize_t sent;
  while ((sent = sendmsg(fd_, &msg, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
  }
  bool ok =
      sent > 0 && SendAll(fd_, message.data() + sent, message.size() - static_cast<size_t>(sent));
  // A new server answers once it has imported the SDK; a slow disk may take seconds.
  const std::string reply = ok ? ReadLine(fresh ? 30000 : 10000) : "";
  if (reply.rfind("P ", 0) == 0) {
    child_ = static_cast<pid_t>(std::strtol(reply.c_str() + 2, nullptr, 10));
    if (child_ > 0) {
      forked_ = true;
      return child_;
    }
  }
  // It could not start, died, or refused: spawn this try (which says why in its log).
  if (reply.empty() && fresh) failed_.insert(key);
  Stop();
  return spawn_.Start(program, argv, env, dir, out, err);
}

int ForkServer::exit_fd() const {
  if (!forked_) return spawn_.exit_fd();
  return lost_ ? child_fd_ : fd_;
}

bool ForkServer::Wait(int* status, bool block) {
  if (!forked_) return spawn_.Wait(status, block);
  if (child_ <= 0) return true;
  if (!lost_) {
    if (!block) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 0) <= 0 && pending_.find('\n') == std::string::npos) return false;
    }
    const std::string line = ReadLine(-1);
    if (line.rfind("S ", 0) == 0) {
      *status = static_cast<int>(std::strtol(line.c_str() + 2, nullptr, 10));
      child_ = -1;
      return true;
    }
    // The server is gone with the child's status: wait for the child to end by its pid.
    Stop();
    lost_ = true;
    child_fd_ = static_cast<int>(syscall(SYS_pidfd_open, child_, 0));
  }
  if (child_fd_ >= 0) {
    pollfd p{child_fd_, POLLIN, 0};
    if (poll(&p, 1, block ? -1 : 0) <= 0) return false;
  } else if (kill(child_, 0) == 0) {
    if (!block) return false;
    while (kill(child_, 0) == 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  *status = 0;
  child_ = -1;
  return true;
}

}  // namespace sluice::python
