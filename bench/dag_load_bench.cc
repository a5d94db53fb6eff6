// Loads and validates a large generated DAG file: 10,000 tasks and 50,000 dependency edges,
// each task with templated params, an input from an upstream task and a `when` condition.
// Prints the median and best of several runs; the target is "well under a second".
//
// Usage: sluice_bench_dag_load [--tasks N] [--edges-per-task K] [--runs R]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "sluice/dag_loader.h"

namespace {

std::string Generate(int tasks, int edges_per_task, size_t* edge_count) {
  std::mt19937 rng(42);
  std::string text;
  text.reserve(static_cast<size_t>(tasks) * 220);
  text += "[dag]\nid = \"big\"\nschedule = \"@daily\"\nstart_date = 2026-01-01\n";
  text += "timezone = \"Europe/Berlin\"\n\n[params]\nscale = 2\n\n";
  text += "[defaults]\nretries = 2\nretry_delay = \"10s\"\ntimeout = \"1h\"\n\n";
  *edge_count = 0;
  // The first tasks have fewer possible upstream tasks; the last ones make up for it, so
  // that the total is exactly tasks * edges_per_task (50,000 by default).
  const int deficit = edges_per_task * (edges_per_task + 1) / 2;
  for (int i = 0; i < tasks; ++i) {
    text += "[[task]]\nid = \"t" + std::to_string(i) + "\"\nplugin = \"core.noop\"\n";
    int k = std::min(i, edges_per_task + (i >= tasks - deficit ? 1 : 0));
    if (k > 0) {
      std::vector<int> deps;
      while (static_cast<int>(deps.size()) < k) {
        // Mostly recent tasks, like real pipelines, with some long edges.
        int window = std::min(i, 50);
        int d = (rng() % 4 == 0) ? static_cast<int>(rng() % i)
                                 : i - 1 - static_cast<int>(rng() % window);
        if (std::find(deps.begin(), deps.end(), d) == deps.end()) deps.push_back(d);
      }
      text += "depends_on = [";
      for (size_t j = 0; j < deps.size(); ++j) {
        text += (j ? ", \"t" : "\"t") + std::to_string(deps[j]) + "\"";
      }
      text += "]\n";
      text += "inputs = { data = \"t" + std::to_string(deps[0]) + ".out\" }\n";
      text += "when = \"t" + std::to_string(deps[0]) + ".rows > 0\"\n";
      *edge_count += deps.size();
    }
    text += "params = { path = \"data/{{ ds }}/part-" + std::to_string(i) +
            ".csv\", scale = \"{{ params.scale }}\" }\n\n";
  }
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  int tasks = 10000;
  int edges_per_task = 5;
  int runs = 7;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--tasks"))
      tasks = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--edges-per-task"))
      edges_per_task = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--runs"))
      runs = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: %s [--tasks N] [--edges-per-task K] [--runs R]\n", argv[0]);
      return 2;
    }
  }
  size_t edges = 0;
  const std::string text = Generate(tasks, edges_per_task, &edges);

  std::vector<double> ms;
  for (int r = 0; r < runs; ++r) {
    auto start = std::chrono::steady_clock::now();
    sluice::DagLoadResult result = sluice::LoadDagText(text, "big.toml");
    auto end = std::chrono::steady_clock::now();
    if (!result.ok()) {
      std::fprintf(stderr, "generated DAG did not validate:\n");
      for (const auto& d : result.diagnostics.items()) {
        std::fputs(sluice::Render(d).c_str(), stderr);
      }
      return 1;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(end - start).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("dag_load: %d tasks, %zu edges, %.1f MiB of TOML\n", tasks, edges,
              static_cast<double>(text.size()) / (1024.0 * 1024.0));
  std::printf(
      "dag_load: parse + validate + build graph: median %.1f ms, best %.1f ms over %d runs\n",
      ms[ms.size() / 2], ms.front(), runs);
  return 0;
}
