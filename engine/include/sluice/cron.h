// Cron schedules: Vixie cron's five fields and macros, evaluated in an IANA time zone.
//
//   minute hour day-of-month month day-of-week       e.g. "0 3 * * 1-5", "*/15 9-17 * * mon-fri"
//   @yearly @annually @monthly @weekly @daily @midnight @hourly
//
// Fields: numbers, `*`, ranges `a-b`, steps `*/n` and `a-b/n`, lists `x,y,z`; month names
// jan–dec and weekday names sun–sat (any case); weekday 7 is Sunday, like 0. A bare `a/n`
// is rejected (Vixie cron rejects it too; write `a-59/n`).
//
// Day rule (Vixie's, exactly): when both day-of-month and day-of-week are restricted, a day
// that matches either one fires; a field that begins with `*` (including `*/n`) counts as
// unrestricted, and then the other field alone decides.
//
// Time zones: fire times are local times in the schedule's zone.
// - A local time that does not exist (skipped when daylight saving time starts) fires at the
//   instant of the change, once: `30 2 * * *` in Europe/Berlin on 2026-03-29 fires at
//   03:00 CEST. Several skipped times collapse into that one instant.
// - A local time that happens twice (when daylight saving time ends) fires once, at its
//   first occurrence; the repeated hour's second pass fires nothing.
// So a schedule never fires twice for one slot, and fire times always increase.
//
// Thread safety: immutable after Parse.
#ifndef SLUICE_CRON_H_
#define SLUICE_CRON_H_

#include <bitset>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "sluice/status.h"

namespace date {
class time_zone;
}

namespace sluice {

// A schedule longer than this is refused before it is parsed.
inline constexpr size_t kMaxCronBytes = 1024;

struct CronError {
  size_t offset = 0;  // 0-based byte offset of the offending part in the expression
  std::string message;
  std::string hint;
};

class CronSchedule {
 public:
  // Parses an expression; on failure returns nullopt and fills `error`. Expressions that can
  // never fire (`0 0 31 2 *`) are errors too.
  static std::optional<CronSchedule> Parse(std::string_view expression, CronError* error);

  // The first fire time strictly after `after`, in `zone` (UTC when null). nullopt only if
  // none falls within the next 100 years.
  std::optional<std::chrono::sys_seconds> Next(std::chrono::sys_seconds after,
                                               const date::time_zone* zone) const;

  const std::string& expression() const { return expression_; }

 private:
  bool MatchesDay(int month, int day, int weekday) const;

  std::string expression_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;       // 1..31
  std::bitset<13> months_;     // 1..12
  std::bitset<7> weekdays_;    // 0..6, Sunday = 0
  bool day_star_ = false;      // day-of-month field began with '*'
  bool weekday_star_ = false;  // day-of-week field began with '*'
};

// Looks up an IANA zone name ("UTC", "Europe/Berlin"); NotFound with a hint otherwise.
StatusOr<const date::time_zone*> FindTimeZone(const std::string& name);

}  // namespace sluice

#endif  // SLUICE_CRON_H_
