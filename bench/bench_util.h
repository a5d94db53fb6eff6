// Small helpers the benchmarks share: shell capture, timing, percentiles, and starting a
// daemon in the background.
#ifndef SLUICE_BENCH_BENCH_UTIL_H_
#define SLUICE_BENCH_BENCH_UTIL_H_

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

namespace sluice::bench {

inline double SecondsSince(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// Runs a shell command; returns its stdout.
inline std::string Capture(const std::string& command) {
  std::string out;
  if (FILE* p = popen(command.c_str(), "r")) {
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    pclose(p);
  }
  return out;
}

// The value at quantile p (0..1) of v: the element at floor(p * n), clamped.
inline double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  return v[i];
}

// Starts `sluice serve ARGS...` with stdout and stderr in `log`, and waits (up to 30 s) for
// it to write <state>/daemon.json. Returns its pid, or -1 (the daemon is killed then).
inline pid_t StartDaemon(const std::string& sluice, std::vector<std::string> args,
                         const std::string& state, const std::string& log) {
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    // One open file for both, so that neither overwrites the other's lines.
    if (std::freopen(log.c_str(), "w", stdout) != nullptr) dup2(STDOUT_FILENO, STDERR_FILENO);
    std::vector<char*> argv = {const_cast<char*>(sluice.c_str()), const_cast<char*>("serve")};
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(sluice.c_str(), argv.data());
    _exit(127);
  }
  for (int i = 0; i < 600 && !std::filesystem::exists(state + "/daemon.json"); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (!std::filesystem::exists(state + "/daemon.json")) {
    std::fprintf(stderr, "the daemon did not start; see %s\n", log.c_str());
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    return -1;
  }
  return pid;
}

// SIGTERM, then waits.
inline void StopDaemon(pid_t pid) {
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
}

}  // namespace sluice::bench

#endif  // SLUICE_BENCH_BENCH_UTIL_H_
