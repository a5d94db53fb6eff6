#include "sluice/intervals.h"

namespace sluice {

using std::chrono::sys_seconds;

std::optional<DataInterval> FirstInterval(const CronSchedule& schedule, const date::time_zone* zone,
                                          sys_seconds start_date) {
  // "At or after": ask for the first fire strictly after one second before.
  std::optional<sys_seconds> start = schedule.Next(start_date - std::chrono::seconds(1), zone);
  if (!start) return std::nullopt;
  std::optional<sys_seconds> end = schedule.Next(*start, zone);
  if (!end) return std::nullopt;
  return DataInterval{*start, *end};
}

std::optional<DataInterval> NextInterval(const CronSchedule& schedule, const date::time_zone* zone,
                                         const DataInterval& previous) {
  std::optional<sys_seconds> end = schedule.Next(previous.end, zone);
  if (!end) return std::nullopt;
  return DataInterval{previous.end, *end};
}

std::vector<DataInterval> DueIntervals(const DagSpec& dag, const date::time_zone* zone,
                                       const DueQuery& query) {
  std::vector<DataInterval> due;
  if (!dag.cron || !dag.start_date) return due;
  const CronSchedule& schedule = *dag.cron;
  auto in_range = [&](const DataInterval& i) { return !dag.end_date || i.start <= *dag.end_date; };
  auto is_due = [&](const DataInterval& i) { return i.end <= query.now; };

  std::optional<DataInterval> next;
  if (query.last_start) {
    // The interval after the last one with a run.
    std::optional<sys_seconds> end = schedule.Next(*query.last_start, zone);
    if (end) next = NextInterval(schedule, zone, DataInterval{*query.last_start, *end});
  } else {
    next = FirstInterval(schedule, zone, *dag.start_date);
  }

  if (dag.catchup == CatchupPolicy::kLatest) {
    // Walk to the most recent due interval without collecting the ones before it. A DAG that
    // fires every minute and was paused for a year makes this walk long, but only once: the
    // cursor then moves to now.
    std::optional<DataInterval> latest;
    for (; next && is_due(*next) && in_range(*next); next = NextInterval(schedule, zone, *next))
      latest = next;
    if (latest) due.push_back(*latest);
    return due;
  }
  for (; next && is_due(*next) && in_range(*next) && due.size() < query.limit;
       next = NextInterval(schedule, zone, *next)) {
    if (dag.catchup == CatchupPolicy::kNone && next->end <= query.since) continue;
    due.push_back(*next);
  }
  return due;
}

}  // namespace sluice
