// Execution-core benchmark: no-op tasks through `sluice run` with durable state.
//
//   wide     one DAG of N independent tasks (default 10,000): tasks per second
//   chain    one DAG of 1,000 tasks in a line: task-to-task latency (one task's end to the
//            next one's start, from the recorded timestamps), median and p99
//   runs     100 runs of a 10-task DAG (fan-out of 8 between a first and a last task), one
//            `sluice run` each: total time, runs per second
//
// Each shape also runs under GNU make -j2 with the same dependency graph, each recipe
// touching its output file (make records nothing durably), and the table prints Sluice's
// ratio to it. Timings are wall-clock for the whole command, process start included.
//
// Usage: sluice_bench_engine [--sluice PATH] [--workdir DIR] [--wide N] [--repeat R]
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "sluice/state_store.h"

namespace fs = std::filesystem;

namespace {

struct Options {
  std::string sluice;
  std::string workdir = "/tmp/sluice-bench";
  int wide = 10000;
  int chain = 1000;
  int runs = 100;
  int repeat = 3;
};

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// Runs argv with stdout/stderr to /dev/null; returns the exit code.
int Run(const std::vector<std::string>& args, const std::string& cwd = "") {
  std::fflush(stdout);  // or the child inherits and prints our buffered output again
  pid_t pid = fork();
  if (pid == 0) {
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    freopen("/dev/null", "w", stdout);
    freopen("/dev/null", "w", stderr);
    std::vector<char*> argv;
    std::vector<std::string> copy = args;
    for (std::string& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void Write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

std::string Task(const std::string& id, const std::vector<std::string>& deps) {
  std::string out = "[[task]]\nid = \"" + id + "\"\nplugin = \"core.noop\"\n";
  if (!deps.empty()) {
    out += "depends_on = [";
    for (size_t i = 0; i < deps.size(); ++i) out += (i ? ", \"" : "\"") + deps[i] + "\"";
    out += "]\n";
  }
  return out;
}

// The same graph as a Makefile: each target touches its file after its prerequisites.
std::string MakeRule(const std::string& id, const std::vector<std::string>& deps) {
  std::string out = "out/" + id + ":";
  for (const std::string& d : deps) out += " out/" + d;
  return out + "\n\t@touch $@\n";
}

struct Shape {
  std::string name;
  std::string dag;
  std::string makefile;
  size_t tasks = 0;
};

Shape Wide(int n) {
  Shape s{"wide", "[dag]\nid = \"wide\"\n", "all:", static_cast<size_t>(n)};
  std::string rules;
  for (int i = 0; i < n; ++i) {
    s.dag += Task("t" + std::to_string(i), {});
    s.makefile += " out/t" + std::to_string(i);
    rules += MakeRule("t" + std::to_string(i), {});
  }
  s.makefile += "\n" + rules;
  return s;
}

Shape Chain(int n) {
  Shape s{"chain", "[dag]\nid = \"chain\"\n", "all: out/t" + std::to_string(n - 1) + "\n",
          static_cast<size_t>(n)};
  for (int i = 0; i < n; ++i) {
    std::vector<std::string> deps;
    if (i > 0) deps.push_back("t" + std::to_string(i - 1));
    s.dag += Task("t" + std::to_string(i), deps);
    s.makefile += MakeRule("t" + std::to_string(i), deps);
  }
  return s;
}

Shape Small() {
  Shape s{"runs", "[dag]\nid = \"small\"\n", "all: out/last\n", 10};
  s.dag += Task("first", {});
  s.makefile += MakeRule("first", {});
  std::vector<std::string> mid;
  for (int i = 0; i < 8; ++i) {
    mid.push_back("m" + std::to_string(i));
    s.dag += Task(mid.back(), {"first"});
    s.makefile += MakeRule(mid.back(), {"first"});
  }
  s.dag += Task("last", mid);
  s.makefile += MakeRule("last", mid);
  return s;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<size_t>(v.size() * p))];
}

// Microseconds since the epoch from "2026-11-27T15:04:05.123456Z".
double ParseMicros(const std::string& ts) {
  std::tm tm{};
  int micros = 0;
  if (sscanf(ts.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
             &tm.tm_min, &tm.tm_sec, &micros) != 7) {
    return 0;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<double>(timegm(&tm)) * 1e6 + micros;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.sluice = (fs::read_symlink("/proc/self/exe").parent_path() / "sluice").string();
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--sluice")
      o.sluice = argv[i + 1];
    else if (flag == "--workdir")
      o.workdir = argv[i + 1];
    else if (flag == "--wide")
      o.wide = std::atoi(argv[i + 1]);
    else if (flag == "--repeat")
      o.repeat = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: %s [--sluice PATH] [--workdir DIR] [--wide N] [--repeat R]\n",
                   argv[0]);
      return 2;
    }
  }
  fs::remove_all(o.workdir);
  fs::create_directories(o.workdir);
  std::printf(
      "sluice: %s\nmachine: %u cores; state: RocksDB, every transition fsynced before it is acted "
      "on\n\n",
      o.sluice.c_str(), std::thread::hardware_concurrency());

  struct Row {
    std::string shape;
    double sluice_s;
    double make_s;
    std::string detail;
  };
  std::vector<Row> rows;

  for (Shape shape : {Wide(o.wide), Chain(o.chain), Small()}) {
    const std::string dir = o.workdir + "/" + shape.name;
    fs::create_directories(dir);
    Write(dir + "/dag.toml", shape.dag);
    Write(dir + "/Makefile", shape.makefile);
    const int invocations = shape.name == "runs" ? o.runs : 1;
    std::vector<double> sluice_times, make_times, latencies;
    // Alternate Sluice and make, after one warm-up of each.
    for (int r = -1; r < o.repeat; ++r) {
      const std::string state = dir + "/state" + std::to_string(r + 1);
      fs::remove_all(state);
      auto start = std::chrono::steady_clock::now();
      for (int k = 0; k < invocations; ++k) {
        if (Run({o.sluice, "run", dir + "/dag.toml", "--state-dir", state, "--quiet"}) != 0) {
          std::fprintf(stderr, "sluice run failed on %s\n", shape.name.c_str());
          return 1;
        }
      }
      const double sluice_s = Seconds(start);
      fs::remove_all(dir + "/out");
      fs::create_directories(dir + "/out");
      start = std::chrono::steady_clock::now();
      for (int k = 0; k < invocations; ++k) {
        if (k > 0) {
          fs::remove_all(dir + "/out");
          fs::create_directories(dir + "/out");
        }
        if (Run({"make", "-j2", "-s", "-f", "Makefile"}, dir) != 0) {
          std::fprintf(stderr, "make failed on %s\n", shape.name.c_str());
          return 1;
        }
      }
      const double make_s = Seconds(start);
      if (r < 0) continue;  // warm-up
      sluice_times.push_back(sluice_s);
      make_times.push_back(make_s);
      if (shape.name == "chain") {
        auto store = sluice::StateStore::OpenReadOnly(state);
        if (!store.ok()) return 1;
        auto runs = (*store)->ListRuns("chain", 1);
        if (!runs.ok() || runs->empty()) return 1;
        auto tries = (*store)->ListTries("chain", (*runs)[0].run_id);
        if (!tries.ok()) return 1;
        std::map<std::string, sluice::TryRecord> by_task;
        for (auto& t : *tries) by_task[t.task_id] = t;
        for (int i = 1; i < o.chain; ++i) {
          const auto& prev = by_task["t" + std::to_string(i - 1)];
          const auto& next = by_task["t" + std::to_string(i)];
          latencies.push_back((ParseMicros(next.started_at) - ParseMicros(prev.ended_at)) / 1000.0);
        }
      }
    }
    const double s = Median(sluice_times);
    const double m = Median(make_times);
    char detail[200];
    const double tasks = static_cast<double>(shape.tasks * invocations);
    if (shape.name == "chain") {
      std::snprintf(detail, sizeof detail, "task-to-task median %.3f ms, p99 %.3f ms",
                    Median(latencies), Percentile(latencies, 0.99));
    } else if (shape.name == "runs") {
      std::snprintf(detail, sizeof detail, "%d runs: %.1f runs/s, %.0f tasks/s", invocations,
                    invocations / s, tasks / s);
    } else {
      std::snprintf(detail, sizeof detail, "%.0f tasks/s (make: %.0f tasks/s)", tasks / s,
                    tasks / m);
    }
    rows.push_back({shape.name + " (" + std::to_string(shape.tasks) +
                        (invocations > 1 ? " x" + std::to_string(invocations) : "") + ")",
                    s, m, detail});
  }

  std::printf("%-16s %10s %10s %8s  %s\n", "shape", "sluice s", "make -j2 s", "ratio", "detail");
  for (const Row& r : rows) {
    std::printf("%-16s %10.3f %10.3f %7.2fx  %s\n", r.shape.c_str(), r.sluice_s, r.make_s,
                r.make_s / r.sluice_s, r.detail.c_str());
  }
  std::printf(
      "\nratio = make time / sluice time (above 1: Sluice is faster). Medians of %d alternating "
      "runs\n"
      "after a warm-up. Sluice records every transition durably; make records nothing.\n",
      o.repeat);
  return 0;
}
