// Durations as users write them in DAG files and on the command line: "30s", "5m", "1h30m",
// "2d", "250ms". Units: ms, s, m, h, d, written from largest to smallest, each at most once.
#ifndef SLUICE_DURATION_H_
#define SLUICE_DURATION_H_

#include <chrono>
#include <string>
#include <string_view>

#include "sluice/status.h"

namespace sluice {

using Duration = std::chrono::milliseconds;

// Parses a duration. Errors say what is wrong with the text; kDurationHint says how to
// write one.
StatusOr<Duration> ParseDuration(std::string_view text);

inline constexpr std::string_view kDurationHint =
    "write a number and a unit, largest unit first, e.g. \"30s\", \"5m\", \"1h30m\" "
    "(units: d h m s ms)";

// The shortest text that ParseDuration reads back as `d`: "1h30m", "250ms", "0s".
std::string FormatDuration(Duration d);

}  // namespace sluice

#endif  // SLUICE_DURATION_H_
