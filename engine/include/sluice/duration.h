// Durations as users write them in DAG files and on the command line: "30s", "5m", "1h30m",
// "2d", "250ms". Units: ms, s, m, h, d, written from largest to smallest, each at most once.
#ifndef SLUICE_DURATION_H_
#define SLUICE_DURATION_H_

#include <chrono>
#include <cstdint>
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

// Sizes as users write them: "512MiB", "2GiB", "1.5GB", "4096" (bytes). Binary units KiB MiB
// GiB TiB, decimal units KB MB GB TB, and B.
StatusOr<uint64_t> ParseSize(std::string_view text);
// "2GiB", "1536MiB", "100B": exact, in the largest binary unit that divides it.
std::string FormatSize(uint64_t bytes);

}  // namespace sluice

#endif  // SLUICE_DURATION_H_
