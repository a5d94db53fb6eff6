// Daemon benchmark: the three figures issue 4 names, measured on a real `sluice serve`.
//
//   folder   a DAG folder of N files (default 1,000; 3 tasks each) loaded and validated:
//            in process (what the daemon's scan does per file) and as `sluice dag validate`
//            (process start and plugin scan included)
//   lag      cron trigger lag with N scheduled DAGs, all "* * * * *": for every scheduled
//            run, the time it was created minus the end of its data interval (from the
//            run records), over M minute boundaries; median, p99, max
//   api      run-list requests per second on loopback: wrk (Debian's) against
//            GET /api/v1/runs?limit=50 with a viewer token, over the runs the lag part made
//            (--wrk-seconds 0 skips it)
//
// Usage: sluice_bench_daemon [--sluice PATH] [--workdir DIR] [--dags N] [--minutes M]
//                            [--wrk-seconds S]
#include <date/date.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"
#include "sluice/dag.h"
#include "sluice/dag_loader.h"
#include "sluice/state_store.h"

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

using sluice::bench::Capture;
using sluice::bench::Percentile;
using sluice::bench::SecondsSince;
using sluice::bench::StartDaemon;

namespace {

struct Options {
  std::string sluice;
  std::string workdir = "/tmp/sluice-bench-daemon";
  int dags = 1000;
  int minutes = 2;
  int wrk_seconds = 10;
};

// "2026-11-27T17:52:42.226571Z" or "2026-11-27T17:52:00Z" as a time point.
std::optional<Clock::time_point> ParseStamp(const std::string& text) {
  std::optional<std::chrono::sys_seconds> seconds = sluice::ParseTimeUtc(text);
  if (!seconds) return std::nullopt;
  Clock::time_point t(*seconds);
  const size_t dot = text.find('.');
  if (dot != std::string::npos) {
    long micros = 0;
    int digits = 0;
    for (size_t i = dot + 1; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]));
         ++i, ++digits) {
      if (digits < 6) micros = micros * 10 + (text[i] - '0');
    }
    for (; digits < 6; ++digits) micros *= 10;
    t += std::chrono::microseconds(micros);
  }
  return t;
}

void WriteDags(const std::string& dir, int n) {
  fs::create_directories(dir);
  for (int i = 0; i < n; ++i) {
    std::ofstream(dir + "/d" + std::to_string(i) + ".toml")
        << "[dag]\nid = \"d" << i
        << "\"\nschedule = \"* * * * *\"\nstart_date = 2026-01-01T00:00:00Z\n"
           "catchup = \"none\"\n"
           "[[task]]\nid = \"extract\"\nplugin = \"core.noop\"\n"
           "[[task]]\nid = \"transform\"\nplugin = \"core.noop\"\ndepends_on = [\"extract\"]\n"
           "[[task]]\nid = \"load\"\nplugin = \"core.noop\"\ndepends_on = [\"transform\"]\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.sluice = (fs::read_symlink("/proc/self/exe").parent_path() / "sluice").string();
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
    if (value && flag == "--sluice") {
      o.sluice = value;
    } else if (value && flag == "--workdir") {
      o.workdir = value;
    } else if (value && flag == "--dags") {
      o.dags = std::atoi(value);
    } else if (value && flag == "--minutes") {
      o.minutes = std::atoi(value);
    } else if (value && flag == "--wrk-seconds") {
      o.wrk_seconds = std::atoi(value);
    } else {
      const bool help = flag == "--help" || flag == "-h";
      std::fprintf(help ? stdout : stderr,
                   "usage: %s [--sluice PATH] [--workdir DIR] [--dags N] [--minutes M] "
                   "[--wrk-seconds S]\n"
                   "  folder, cron trigger lag and API figures of a real `sluice serve` with N "
                   "scheduled DAGs\n  (default 1000) over M minute boundaries (default 2); "
                   "--wrk-seconds 0 skips the API figure\n",
                   argv[0]);
      return help ? 0 : 2;
    }
  }
  fs::remove_all(o.workdir);
  const std::string dags = o.workdir + "/dags";
  const std::string state = o.workdir + "/state";
  WriteDags(dags, o.dags);
  std::printf("sluice: %s\nmachine: %u cores\n\n", o.sluice.c_str(),
              std::thread::hardware_concurrency());

  // 1. The folder.
  auto t0 = std::chrono::steady_clock::now();
  const std::vector<sluice::DagLoadResult> loaded = sluice::LoadDagDirectory(dags);
  const double in_process = SecondsSince(t0);
  const size_t valid = static_cast<size_t>(
      std::count_if(loaded.begin(), loaded.end(), [](const auto& r) { return r.ok(); }));
  t0 = std::chrono::steady_clock::now();
  const int validate_rc =
      std::system(("'" + o.sluice + "' dag validate '" + dags + "' >/dev/null 2>&1").c_str());
  const double validate = SecondsSince(t0);
  std::printf(
      "folder  %d files: loaded in process in %.3f s (%zu DAGs); `sluice dag validate` "
      "%.3f s (exit %d)  [target < 1 s]\n",
      o.dags, in_process, valid, validate, WEXITSTATUS(validate_rc));
  std::fflush(stdout);

  // 2. The daemon, with a viewer token for wrk.
  const std::string token = Capture("'" + o.sluice + "' tokens create bench --role viewer " +
                                    "--state-dir '" + state + "' 2>/dev/null");
  const std::string secret = token.substr(0, token.find('\n'));
  const int port = 30000 + getpid() % 20000;
  const pid_t daemon = StartDaemon(
      o.sluice,
      {"--dags", dags, "--state-dir", state, "--listen", "127.0.0.1:" + std::to_string(port)},
      state, o.workdir + "/serve.log");
  if (daemon < 0) return 1;
  // Wait for M minute boundaries, and a few seconds for the runs to finish.
  const auto now = Clock::now();
  const auto first = std::chrono::ceil<std::chrono::minutes>(now);
  const auto until = first + std::chrono::minutes(o.minutes - 1) + std::chrono::seconds(8);
  std::printf("lag     waiting for %d minute boundaries (until %s) ...\n", o.minutes,
              date::format("%T", std::chrono::floor<std::chrono::seconds>(until)).c_str());
  std::fflush(stdout);
  std::this_thread::sleep_until(until);

  // 3. The API under wrk, while the daemon holds the runs just made.
  if (o.wrk_seconds <= 0) {
    // Skipped on request.
  } else if (!Capture("command -v wrk").empty()) {
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/api/v1/runs?limit=50";
    const std::string out =
        Capture("wrk -t2 -c32 -d" + std::to_string(o.wrk_seconds) + "s -H 'Authorization: Bearer " +
                secret + "' '" + url + "' 2>&1");
    const size_t at = out.find("Requests/sec:");
    const size_t errors = out.find("Non-2xx");
    std::printf(
        "api     GET /api/v1/runs?limit=50 with a token, wrk -t2 -c32 %ds: %s req/s%s  "
        "[target >= 5,000]\n",
        o.wrk_seconds,
        at == std::string::npos ? "?" : out.substr(at + 13, out.find('\n', at) - at - 13).c_str(),
        errors == std::string::npos ? "" : " (NON-2XX ANSWERS: see wrk output)");
    if (at == std::string::npos) std::printf("%s\n", out.c_str());
  } else {
    std::printf("api     skipped: wrk is not installed (apt-get install wrk)\n");
  }
  // The step before each boundary (folder rescan + runs prepared), from the daemon's
  // metrics: if it ran past the boundary, every run's lag carries the overrun.
  const std::string metrics =
      Capture("bash -c 'exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(port) +
              " && printf \"GET /metrics HTTP/1.0\\r\\nAuthorization: Bearer " + secret +
              "\\r\\n\\r\\n\" >&3 && cat <&3' 2>/dev/null");
  const auto metric = [&](const std::string& name) -> double {
    const size_t at = metrics.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::atof(metrics.c_str() + at + name.size() + 2);
  };
  const double prepares = metric("sluice_scheduler_prepare_duration_seconds_count");
  if (prepares > 0) {
    std::printf("prepare %.0f steps before a boundary (rescan + prepare): mean %.1f ms\n", prepares,
                1000 * metric("sluice_scheduler_prepare_duration_seconds_sum") / prepares);
  }
  std::fflush(stdout);
  sluice::bench::StopDaemon(daemon);

  auto store = sluice::StateStore::OpenReadOnly(state);
  if (!store.ok()) {
    std::fprintf(stderr, "%s\n", store.status().message().c_str());
    return 1;
  }
  sluice::StateStore::RunQuery query;
  query.run_type = "scheduled";
  query.limit = 1000000;
  auto page = (*store)->QueryRuns(query);
  std::vector<double> lags;
  size_t succeeded = 0;
  for (const sluice::RunRecord& run : page->runs) {
    auto created = ParseStamp(run.created_at);
    auto due = ParseStamp(run.data_interval_end);
    if (created && due) lags.push_back(std::chrono::duration<double>(*created - *due).count());
    succeeded += run.state == sluice::RunState::kSuccess;
  }
  std::printf(
      "lag     %zu scheduled runs of %d DAGs (%zu succeeded): created - interval end: "
      "min %.2f ms, median %.2f ms, p99 %.2f ms, max %.2f ms  [target p99 <= 10 ms]\n",
      lags.size(), o.dags, succeeded, 1000 * Percentile(lags, 0.0), 1000 * Percentile(lags, 0.5),
      1000 * Percentile(lags, 0.99), 1000 * Percentile(lags, 1.0));
  return 0;
}
