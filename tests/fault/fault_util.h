// What the fault suite shares: seeds that can be replayed, the real binary driven as an
// operator drives it, and the invariants every campaign ends on.
#ifndef SLUICE_TESTS_FAULT_FAULT_UTIL_H_
#define SLUICE_TESTS_FAULT_FAULT_UTIL_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace sluice::fault {

// A campaign's random source. The seed comes from $SLUICE_FAULT_SEED when set, else from
// the system; it is printed first, with the command that replays the campaign.
class Dice {
 public:
  explicit Dice(const std::string& campaign);
  uint64_t seed() const { return seed_; }
  int Between(int lo, int hi);  // inclusive
  bool Chance(double p);

 private:
  uint64_t seed_;
  std::mt19937_64 rng_;
};

// $SLUICE_FAULT_ROUNDS, else `fallback`: how many faults a campaign injects.
int Rounds(int fallback);

// The shell command of a task that records each execution in `exec_log`, one line at its
// start ("DAG RUN TASK TRY start") and one at its end, and sleeps `ms` between them.
std::string RecordingCommand(const std::string& exec_log, int ms);

// `sluice runs list --json` of every run (at most 1000; an error fails the calling test).
nlohmann::json AllRuns(const std::string& state);
// The same, or nullopt while the state dir cannot be read (a daemon starting up): for waits.
std::optional<nlohmann::json> RunsNow(const std::string& state);

// Kills `pid` with SIGKILL and reaps it.
void Kill9(int pid);

// Sends SIGTERM and waits; returns the wait status.
int Stop(int pid);

struct Invariants {
  size_t runs = 0;
  size_t tries = 0;
  size_t executions = 0;
};

// Checks, with doctest CHECKs, what must hold after any fault once the work has finished:
// - every run in `must_exist` ("DAG/RUN") exists;
// - every run succeeded (nothing is stuck), and every task has exactly one successful try,
//   its last, with tries numbered 1..n;
// - no execution started after the successful one (from `exec_log`), and the successful try
//   ran exactly once;
// - the events of each run are numbered 1..n and end in the states the records hold.
Invariants CheckInvariants(const std::string& state, const std::string& exec_log,
                           const std::set<std::string>& must_exist);

}  // namespace sluice::fault

#endif  // SLUICE_TESTS_FAULT_FAULT_UTIL_H_
