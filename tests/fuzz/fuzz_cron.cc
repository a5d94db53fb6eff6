// Fuzz target: cron schedules, parsed, then asked for their next fire times in UTC and in a
// zone with DST, from a start time taken from the input.
#include <date/tz.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sluice/cron.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 4) return 0;
  uint32_t seed = 0;
  for (int i = 0; i < 4; ++i) seed = (seed << 8) | data[i];
  const std::string_view text(reinterpret_cast<const char*>(data) + 4, size - 4);
  sluice::CronError error;
  std::optional<sluice::CronSchedule> schedule = sluice::CronSchedule::Parse(text, &error);
  if (!schedule) {
    if (error.offset > text.size()) __builtin_trap();
    return 0;
  }
  static const date::time_zone* berlin = date::locate_zone("Europe/Berlin");
  std::chrono::sys_seconds t{std::chrono::seconds(1700000000 + (seed % 400000000))};
  for (const date::time_zone* zone : {static_cast<const date::time_zone*>(nullptr), berlin}) {
    std::chrono::sys_seconds at = t;
    for (int i = 0; i < 3; ++i) {
      std::optional<std::chrono::sys_seconds> next = schedule->Next(at, zone);
      if (!next) break;
      if (*next <= at) __builtin_trap();  // Next is strictly after
      at = *next;
    }
  }
  return 0;
}
