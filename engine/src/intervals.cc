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

namespace {

// The latest fire time at or before `t` and at or after `floor`. Searches back from `t` in
// doubling steps, then walks forward over the fires of the last step: O(log gap) calls to
// Next, where walking from `floor` would take one per fire (a minutely schedule with a
// start_date a year back is half a million).
std::optional<sys_seconds> LastFireAtOrBefore(const CronSchedule& schedule,
                                              const date::time_zone* zone, sys_seconds t,
                                              sys_seconds floor) {
  if (t < floor) return std::nullopt;
  for (std::chrono::seconds step(60);; step *= 2) {
    const sys_seconds from = t - floor > step ? t - step : floor;
    std::optional<sys_seconds> fire = schedule.Next(from - std::chrono::seconds(1), zone);
    if (fire && *fire <= t) {
      for (std::optional<sys_seconds> n; (n = schedule.Next(*fire, zone)) && *n <= t;) fire = n;
      return fire;
    }
    if (from == floor) return std::nullopt;
  }
}

}  // namespace

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

  // Policies that skip what was missed start the walk near the cutoff, not at the cursor.
  std::optional<sys_seconds> jump;
  if (next && dag.catchup == CatchupPolicy::kNone) {
    // The first owed interval is the one that ends after `since`: it starts at the last fire
    // at or before `since`.
    jump = LastFireAtOrBefore(schedule, zone, query.since, next->start);
  } else if (next && dag.catchup == CatchupPolicy::kLatest) {
    // The latest due interval ends at the last fire at or before now, and starts at the fire
    // before that (or at the last one a DAG's end_date allows).
    std::optional<sys_seconds> end = LastFireAtOrBefore(schedule, zone, query.now, next->start);
    if (end) jump = LastFireAtOrBefore(schedule, zone, *end - std::chrono::seconds(1), next->start);
    if (jump && dag.end_date && *jump > *dag.end_date)
      jump = LastFireAtOrBefore(schedule, zone, *dag.end_date, next->start);
  }
  if (jump && *jump > next->start) {
    std::optional<sys_seconds> end = schedule.Next(*jump, zone);
    next = end ? std::optional<DataInterval>(DataInterval{*jump, *end}) : std::nullopt;
  }

  if (dag.catchup == CatchupPolicy::kLatest) {
    // Walk to the most recent due interval (a step or two after the jump above).
    std::optional<DataInterval> latest;
    for (; next && is_due(*next) && in_range(*next); next = NextInterval(schedule, zone, *next))
      latest = next;
    if (latest) due.push_back(*latest);
    if (query.next_due && next && !is_due(*next) && in_range(*next)) *query.next_due = next->end;
    return due;
  }
  for (; next && is_due(*next) && in_range(*next) && due.size() < query.limit;
       next = NextInterval(schedule, zone, *next)) {
    if (dag.catchup == CatchupPolicy::kNone && next->end <= query.since) continue;
    due.push_back(*next);
  }
  if (query.next_due && next && !is_due(*next) && in_range(*next)) *query.next_due = next->end;
  return due;
}

}  // namespace sluice
