// Helpers shared by the tests: fixture paths, files, temporary folders, running the binary.
#ifndef SLUICE_TESTS_TEST_UTIL_H_
#define SLUICE_TESTS_TEST_UTIL_H_

#include <doctest/doctest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "sluice/status.h"

namespace sluice::testing {

// The value of a read that must succeed (the test stops if it does not). Returned by value, so
// that `for (x : Must(store->ListTries(...)))` iterates no dangling temporary.
template <typename T>
T Must(StatusOr<T> result) {
  REQUIRE_MESSAGE(result.ok(), result.status().ToString());
  return std::move(result).value();
}

// tests/data/<relative>
std::string DataPath(const std::string& relative);
// <source root>/<relative>
std::string SourcePath(const std::string& relative);

std::string ReadFile(const std::string& path);

// y-mo-d h:mi:00 UTC.
std::chrono::sys_seconds UtcTime(int y, unsigned mo, unsigned d, int h = 0, int mi = 0);
void WriteFile(const std::string& path, const std::string& text);

// A fresh folder under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

struct CommandResult {
  int exit_code = -1;  // -1 when the process did not exit normally
  std::string out;     // stdout
  std::string err;     // stderr
};

// Runs the built `sluice` binary with `args` (no shell; arguments are passed as they are).
CommandResult RunSluice(const std::vector<std::string>& args);

// Starts the built `sluice` binary in the background with stdout and stderr going to
// `output_file`; returns its pid. The caller waits for it (waitpid) or kills it.
int SpawnSluice(const std::vector<std::string>& args, const std::string& output_file);

struct HttpReply {
  int status = 0;  // 0 when nothing answered
  std::string body;
};

// One HTTP/1.1 request to 127.0.0.1:`port`, with a bearer token when `token` is not empty.
// A server may answer (413) before it has read a body that is too large and stop reading:
// the write then fails, and the answer is still read.
HttpReply HttpCall(unsigned short port, const std::string& method, const std::string& target,
                   const std::string& token = "", const std::string& body = "");

// How much slower than a plain build the tests run: $SLUICE_TEST_TIME_SCALE (scripts/sanitize
// sets it, since ASan and UBSan slow everything several times), else 1. Waits for work to
// finish scale with it; nothing is ever asserted about how fast something was.
double TimeScale();

// doctest::timeout(seconds), scaled by TimeScale().
inline auto Timeout(double seconds) -> decltype(doctest::timeout(seconds)) {
  return doctest::timeout(seconds * TimeScale());
}

// Polls `done` every 50 ms for up to `seconds` (scaled by TimeScale()); true once it holds.
bool WaitFor(const std::function<bool()>& done, int seconds = 30);

// The worker processes of the process `pid` (its children running `sluice worker`).
std::vector<int> WorkerPids(int pid);

// The port of the daemon that owns `state_dir`, from its daemon.json (waits for the file).
unsigned short DaemonPort(const std::string& state_dir);

}  // namespace sluice::testing

#endif  // SLUICE_TESTS_TEST_UTIL_H_
