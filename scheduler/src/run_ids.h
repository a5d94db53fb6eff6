// Run ids of scheduled and backfill runs: "<type>__<logical date>", one per slot.
#ifndef SLUICE_SCHEDULER_RUN_IDS_H_
#define SLUICE_SCHEDULER_RUN_IDS_H_

#include <chrono>
#include <string>
#include <string_view>

#include "sluice/dag.h"

namespace sluice {

inline constexpr std::string_view kScheduledPrefix = "scheduled__";

inline std::string ScheduledRunId(std::chrono::sys_seconds logical_date) {
  return std::string(kScheduledPrefix) + FormatTimeUtc(logical_date);
}

inline std::string BackfillRunId(std::chrono::sys_seconds logical_date) {
  return "backfill__" + FormatTimeUtc(logical_date);
}

}  // namespace sluice

#endif  // SLUICE_SCHEDULER_RUN_IDS_H_
