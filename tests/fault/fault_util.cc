#include "fault_util.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "test_util.h"

namespace sluice::fault {

using nlohmann::json;

Dice::Dice(const std::string& campaign) {
  const char* env = std::getenv("SLUICE_FAULT_SEED");
  seed_ = env != nullptr && *env != '\0'
              ? std::strtoull(env, nullptr, 10)
              : (uint64_t{std::random_device{}()} << 32) ^ std::random_device{}();
  rng_.seed(seed_);
  std::fprintf(stderr, "[fault] %s: seed %llu (replay: SLUICE_FAULT_SEED=%llu ctest -R '%s')\n",
               campaign.c_str(), static_cast<unsigned long long>(seed_),
               static_cast<unsigned long long>(seed_), campaign.c_str());
  MESSAGE("seed " << seed_ << " (replay: SLUICE_FAULT_SEED=" << seed_ << ")");
}

int Dice::Between(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }

bool Dice::Chance(double p) { return std::bernoulli_distribution(p)(rng_); }

int Rounds(int fallback) {
  const char* env = std::getenv("SLUICE_FAULT_ROUNDS");
  return env != nullptr && *env != '\0' ? std::atoi(env) : fallback;
}

std::string RecordingCommand(const std::string& exec_log, int ms) {
  const std::string line = "$SLUICE_DAG_ID $SLUICE_RUN_ID $SLUICE_TASK_ID $SLUICE_TRY_NUMBER";
  char seconds[16];
  std::snprintf(seconds, sizeof seconds, "%d.%03d", ms / 1000, ms % 1000);
  return "echo \"" + line + " start\" >> " + exec_log + "; sleep " + seconds + "; echo \"" + line +
         " end\" >> " + exec_log;
}

std::optional<json> RunsNow(const std::string& state) {
  // 1000: the most the API gives in one page (a daemon that owns the state dir answers).
  auto r = testing::RunSluice({"runs", "list", "--json", "--limit", "1000", "--state-dir", state});
  if (r.exit_code != 0) return std::nullopt;
  return json::parse(r.out);
}

json AllRuns(const std::string& state) {
  auto r = testing::RunSluice({"runs", "list", "--json", "--limit", "1000", "--state-dir", state});
  REQUIRE_MESSAGE(r.exit_code == 0, r.err);
  return json::parse(r.out);
}

void Kill9(int pid) {
  kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
}

int Stop(int pid) {
  kill(pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

namespace {

struct Execution {
  int try_number = 0;
  bool ended = false;
};

// exec_log lines, per "DAG/RUN/TASK", in the order they were written.
std::map<std::string, std::vector<Execution>> ReadExecutions(const std::string& exec_log,
                                                             size_t* count) {
  std::map<std::string, std::vector<Execution>> by_task;
  std::ifstream in(exec_log);
  std::string dag, run, task, what;
  int try_number = 0;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    if (!(fields >> dag >> run >> task >> try_number >> what)) continue;
    auto& list = by_task[dag + "/" + run + "/" + task];
    if (what == "start") {
      list.push_back({try_number, false});
      ++*count;
    } else {
      for (auto it = list.rbegin(); it != list.rend(); ++it) {
        if (it->try_number == try_number) {
          it->ended = true;
          break;
        }
      }
    }
  }
  return by_task;
}

}  // namespace

Invariants CheckInvariants(const std::string& state, const std::string& exec_log,
                           const std::set<std::string>& must_exist) {
  Invariants seen;
  const json runs = AllRuns(state);
  std::set<std::string> ids;
  for (const json& run : runs) {
    const std::string key =
        run["dag_id"].get<std::string>() + "/" + run["run_id"].get<std::string>();
    CHECK_MESSAGE(ids.insert(key).second, "run listed twice: " << key);
  }
  for (const std::string& id : must_exist) CHECK_MESSAGE(ids.count(id) == 1, "lost run " << id);
  const auto executions = ReadExecutions(exec_log, &seen.executions);

  for (const json& run : runs) {
    const std::string dag = run["dag_id"];
    const std::string run_id = run["run_id"];
    INFO("run " << dag << "/" << run_id);
    ++seen.runs;
    CHECK(run["state"] == "success");
    auto tasks =
        testing::RunSluice({"tasks", "list", run_id, "--dag", dag, "--json", "--state-dir", state});
    REQUIRE_MESSAGE(tasks.exit_code == 0, tasks.err);
    std::map<std::string, std::vector<json>> tries;
    for (const json& t : json::parse(tasks.out)) tries[t["task_id"]].push_back(t);
    for (auto& [task, list] : tries) {
      INFO("task " << task);
      std::sort(list.begin(), list.end(), [](const json& a, const json& b) {
        return a["try_number"].get<int>() < b["try_number"].get<int>();
      });
      int successes = 0;
      for (size_t i = 0; i < list.size(); ++i) {
        CHECK(list[i]["try_number"] == static_cast<int>(i) + 1);
        successes += list[i]["state"] == "success";
        ++seen.tries;
      }
      CHECK(successes == 1);
      CHECK(list.back()["state"] == "success");
      const int success_try = list.back()["try_number"];
      const auto found = executions.find(dag + "/" + run_id + "/" + task);
      REQUIRE_MESSAGE(found != executions.end(), "no execution recorded");
      const std::vector<Execution>& ran = found->second;
      CHECK_MESSAGE(ran.back().try_number == success_try,
                    "an execution started after the successful try " << success_try);
      CHECK(ran.back().ended);
      int runs_of_success = 0;
      for (const Execution& e : ran) {
        runs_of_success += e.try_number == success_try;
        CHECK(e.try_number <= success_try);
      }
      CHECK(runs_of_success == 1);
    }

    auto events =
        testing::RunSluice({"events", run_id, "--dag", dag, "--json", "--state-dir", state});
    REQUIRE_MESSAGE(events.exit_code == 0, events.err);
    const json list = json::parse(events.out);
    std::string last_run_state;
    std::map<std::pair<std::string, int>, std::string> last_try_state;
    for (size_t i = 0; i < list.size(); ++i) {
      CHECK(list[i]["seq"] == static_cast<int64_t>(i) + 1);
      if (list[i]["kind"] == "run_state") last_run_state = list[i]["to"];
      if (list[i]["kind"] == "task_state") {
        last_try_state[{list[i]["task_id"], list[i]["try_number"]}] = list[i]["to"];
      }
    }
    CHECK(last_run_state == run["state"]);
    for (const auto& [task, list_of_tries] : tries) {
      for (const json& t : list_of_tries) {
        auto it = last_try_state.find({task, t["try_number"].get<int>()});
        REQUIRE_MESSAGE(it != last_try_state.end(), "try " << t["try_number"] << " has no event");
        CHECK_MESSAGE(it->second == t["state"], "try " << t["try_number"] << " of " << task);
      }
    }
  }
  return seen;
}

}  // namespace sluice::fault
