// Data intervals: which scheduled runs a DAG is owed at a given moment.
//
// As in Airflow, a scheduled run covers a data interval [start, end) between two consecutive
// fire times of the DAG's schedule; its logical date is the interval's start, and it is due
// once the interval has ended (at `end`). The first interval starts at the first fire time
// at or after `start_date`; no interval starts after `end_date`.
//
// Which due intervals get runs is the catchup policy's choice (see CatchupPolicy in dag.h).
// These functions are pure: the scheduler keeps the cursor (the last interval that got a
// run) in its state and asks again on every tick.
//
// Thread safety: pure functions.
#ifndef SLUICE_INTERVALS_H_
#define SLUICE_INTERVALS_H_

#include <chrono>
#include <optional>
#include <vector>

#include "sluice/cron.h"
#include "sluice/dag.h"

namespace sluice {

struct DataInterval {
  std::chrono::sys_seconds start;
  std::chrono::sys_seconds end;
  friend bool operator==(const DataInterval&, const DataInterval&) = default;
};

// The interval that starts at the first fire time at or after `start_date`.
std::optional<DataInterval> FirstInterval(const CronSchedule& schedule, const date::time_zone* zone,
                                          std::chrono::sys_seconds start_date);

// The interval right after `previous`.
std::optional<DataInterval> NextInterval(const CronSchedule& schedule, const date::time_zone* zone,
                                         const DataInterval& previous);

struct DueQuery {
  std::chrono::sys_seconds now;
  // The start of the last interval that already has a run; none for a DAG that never ran.
  std::optional<std::chrono::sys_seconds> last_start;
  // For CatchupPolicy::kNone: intervals that ended at or before this moment are not owed
  // (typically when the scheduler started, or the DAG was unpaused).
  std::chrono::sys_seconds since;
  // At most this many intervals are returned (the oldest first); the rest come next time.
  size_t limit = 1000;
  // Out: when the walk stopped at an interval that is not due yet, when it will be (its
  // end). Lets the caller sleep until then without computing it again.
  std::optional<std::chrono::sys_seconds>* next_due = nullptr;
};

// The intervals that are due and have no run yet, oldest first, per the DAG's schedule,
// start_date, end_date and catchup policy:
// - all: every due interval after `last_start` (from the first interval when none)
// - latest: only the most recent due interval, if it is after `last_start`
// - none: like all, but only intervals that ended after `since`
// REQUIRES: dag.cron and dag.start_date are set (the loader guarantees it for scheduled DAGs).
std::vector<DataInterval> DueIntervals(const DagSpec& dag, const date::time_zone* zone,
                                       const DueQuery& query);

}  // namespace sluice

#endif  // SLUICE_INTERVALS_H_
