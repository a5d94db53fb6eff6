#include "sluice/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

extern char** environ;

namespace sluice {

std::string SelfExecutable() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("sluice") : exe.string();
}

StatusOr<ChildProcess> SpawnChild(std::vector<std::string> command) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return Status::IoError(std::string("socketpair: ") + std::strerror(errno));
  }
  int out[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(sv[0]);
    close(sv[1]);
    return Status::IoError(std::string("pipe: ") + std::strerror(errno));
  }
  // The child's end goes to fd 3; keep it away from 3 in the parent so that dup2 is a real copy.
  int child_sock = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
  close(sv[1]);

  std::vector<std::string> args = std::move(command);
  args.emplace_back("--fd");
  args.emplace_back("3");
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, out[1], 2);
  posix_spawn_file_actions_adddup2(&actions, child_sock, 3);
  // Nothing else of the parent's: a descriptor opened without O_CLOEXEC (Asio opens its
  // listening and accepted sockets so) would live on in the worker and in every task it starts,
  // and keep the daemon's port bound after the daemon dies.
  posix_spawn_file_actions_addclosefrom_np(&actions, 4);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Its own process group: a timeout or crash kills the worker and everything it started.
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t no_signals;
  sigemptyset(&no_signals);
  posix_spawnattr_setsigmask(&attr, &no_signals);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  sigaddset(&defaults, SIGINT);
  sigaddset(&defaults, SIGTERM);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(child_sock);
  close(out[1]);
  if (rc != 0) {
    close(sv[0]);
    close(out[0]);
    return Status::IoError("cannot start " + args[0] + ": " + std::strerror(rc));
  }
  fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
  ChildProcess child;
  child.pid = pid;
  child.socket_fd = sv[0];
  child.output_fd = out[0];
  return child;
}

}  // namespace sluice
