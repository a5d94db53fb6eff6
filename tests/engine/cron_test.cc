#include "sluice/cron.h"

#include <date/date.h>
#include <date/tz.h>
#include <doctest/doctest.h>

#include <random>
#include <set>

#include "sluice/dag.h"
#include "test_util.h"

namespace sluice {
namespace {

using std::chrono::sys_seconds;

sys_seconds At(int y, unsigned mo, unsigned d, int h = 0, int mi = 0) {
  return testing::UtcTime(y, mo, d, h, mi);
}

std::vector<std::string> NextTimes(const std::string& expr, sys_seconds from, int count,
                                   const std::string& tz = "UTC") {
  CronError error;
  auto schedule = CronSchedule::Parse(expr, &error);
  REQUIRE_MESSAGE(schedule.has_value(), error.message);
  const date::time_zone* zone = date::locate_zone(tz);
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    auto next = schedule->Next(from, zone);
    if (!next) break;
    out.push_back(FormatTimeUtc(*next));
    from = *next;
  }
  return out;
}

TEST_CASE("Cron.Next.Table") {
  struct Case {
    const char* expr;
    const char* from;
    std::vector<std::string> want;
  };
  const sys_seconds jan1 = At(2026, 1, 1);  // a Thursday
  CHECK(NextTimes("0 3 * * *", jan1, 2) ==
        std::vector<std::string>{"2026-01-01T03:00:00Z", "2026-01-02T03:00:00Z"});
  // Strictly after: a fire time equal to `from` is not returned.
  CHECK(NextTimes("0 3 * * *", At(2026, 1, 1, 3), 1) ==
        std::vector<std::string>{"2026-01-02T03:00:00Z"});
  CHECK(NextTimes("*/20 * * * *", At(2026, 1, 1, 0, 0) + std::chrono::seconds(30), 3) ==
        std::vector<std::string>{"2026-01-01T00:20:00Z", "2026-01-01T00:40:00Z",
                                 "2026-01-01T01:00:00Z"});
  CHECK(NextTimes("0 9-17/4 * * mon-fri", jan1, 4) ==
        std::vector<std::string>{"2026-01-01T09:00:00Z", "2026-01-01T13:00:00Z",
                                 "2026-01-01T17:00:00Z", "2026-01-02T09:00:00Z"});
  CHECK(NextTimes("@weekly", jan1, 2) ==
        std::vector<std::string>{"2026-01-04T00:00:00Z", "2026-01-11T00:00:00Z"});
  CHECK(NextTimes("@monthly", jan1, 2) ==
        std::vector<std::string>{"2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"});
  CHECK(NextTimes("@yearly", jan1, 1) == std::vector<std::string>{"2027-01-01T00:00:00Z"});
  CHECK(NextTimes("@hourly", jan1, 1) == std::vector<std::string>{"2026-01-01T01:00:00Z"});
  CHECK(NextTimes("0 0 29 2 *", jan1, 2) ==
        std::vector<std::string>{"2028-02-29T00:00:00Z", "2032-02-29T00:00:00Z"});
  CHECK(NextTimes("0 0 * * 7", jan1, 1) ==
        std::vector<std::string>{"2026-01-04T00:00:00Z"});  // 7 is Sunday
  CHECK(NextTimes("0 0 * * 5-7", jan1, 3) == std::vector<std::string>{"2026-01-02T00:00:00Z",
                                                                      "2026-01-03T00:00:00Z",
                                                                      "2026-01-04T00:00:00Z"});
  CHECK(NextTimes("0 0 * JAN,jUl *", At(2026, 1, 31), 2) ==
        std::vector<std::string>{"2026-07-01T00:00:00Z", "2026-07-02T00:00:00Z"});
}

TEST_CASE("Cron.Next.VixieDayRule") {
  const sys_seconds jan1 = At(2026, 1, 1);
  // Both restricted: the 1st or the 15th, or any Friday.
  CHECK(NextTimes("0 0 1,15 * fri", jan1 - std::chrono::seconds(1), 5) ==
        std::vector<std::string>{"2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z",
                                 "2026-01-09T00:00:00Z", "2026-01-15T00:00:00Z",
                                 "2026-01-16T00:00:00Z"});
  // Day-of-week begins with '*' (*/2: Sun, Tue, Thu, Sat): unrestricted, so both must match.
  CHECK(NextTimes("0 0 1-10 * */2", jan1 - std::chrono::seconds(1), 4) ==
        std::vector<std::string>{"2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z",
                                 "2026-01-04T00:00:00Z", "2026-01-06T00:00:00Z"});
  // Day-of-month '*' with a weekday: only that weekday.
  CHECK(NextTimes("0 0 * * mon", jan1, 2) ==
        std::vector<std::string>{"2026-01-05T00:00:00Z", "2026-01-12T00:00:00Z"});
}

TEST_CASE("Cron.Next.DaylightSavingTime") {
  // Europe/Berlin: 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET.
  CHECK(
      NextTimes("30 2 * * *", At(2026, 3, 27), 4, "Europe/Berlin") ==
      std::vector<std::string>{"2026-03-27T01:30:00Z", "2026-03-28T01:30:00Z",
                               "2026-03-29T01:00:00Z",  // 02:30 does not exist: fires at the change
                               "2026-03-30T00:30:00Z"});
  // Every 15 minutes across the gap: the skipped times collapse into one fire at the change.
  CHECK(NextTimes("*/15 * * * *", At(2026, 3, 29, 0, 30), 4, "Europe/Berlin") ==
        std::vector<std::string>{"2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z",
                                 "2026-03-29T01:15:00Z", "2026-03-29T01:30:00Z"});
  // The repeated hour fires once, at its first occurrence.
  CHECK(NextTimes("30 2 * * *", At(2026, 10, 24), 3, "Europe/Berlin") ==
        std::vector<std::string>{"2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z",
                                 "2026-10-26T01:30:00Z"});
  CHECK(NextTimes("*/30 * * * *", At(2026, 10, 24, 23), 5, "Europe/Berlin") ==
        std::vector<std::string>{"2026-10-24T23:30:00Z", "2026-10-25T00:00:00Z",
                                 "2026-10-25T00:30:00Z", "2026-10-25T02:00:00Z",
                                 "2026-10-25T02:30:00Z"});
  // Fire times always increase and never repeat, across a whole year of DST changes.
  CronError error;
  auto hourly = CronSchedule::Parse("*/7 * * * *", &error);
  REQUIRE(hourly.has_value());
  const date::time_zone* zone = date::locate_zone("America/New_York");
  sys_seconds t = At(2026, 1, 1);
  for (int i = 0; i < 80000; ++i) {
    auto next = hourly->Next(t, zone);
    REQUIRE(next.has_value());
    REQUIRE(*next > t);
    t = *next;
  }
}

TEST_CASE("Cron.Parse.ErrorsSayWhereAndWhat") {
  struct Case {
    const char* expr;
    size_t offset;
    const char* message;
    const char* hint;
  };
  const Case cases[] = {
      {"0 0 31 2 *", 4, "never fires", "February 31st"},
      {"60 * * * *", 0, "minute field: 60 is out of range", "0-59"},
      {"0 24 * * *", 2, "hour field: 24 is out of range", "0-23"},
      {"0 0 0 * *", 4, "day-of-month field: 0 is out of range", "1-31"},
      {"0 0 * 13 *", 6, "month field: 13 is out of range", "1-12"},
      {"0 0 * * 8", 8, "day-of-week field: 8 is out of range", "0-7"},
      {"0 0 * * mnn", 8, "unknown name \"mnn\"", "did you mean \"mon\"?"},
      {"0 0 * foo *", 6, "unknown name \"foo\"", "names are jan"},
      {"5/15 * * * *", 0, "a step needs a range", "5-59/15"},
      {"*/0 * * * *", 2, "step 0 is out of range", "1 or more"},
      {"30-10 * * * *", 0, "runs backwards", "smaller value first"},
      {"1,,2 * * * *", 2, "empty list entry", "extra comma"},
      {"0 0 * *", 0, "this one has 4", "e.g."},
      {"0 0 0 * * *", 0, "this one has 6", "seconds and years are not supported"},
      {"@dayly", 0, "unknown schedule macro", "did you mean \"@daily\"?"},
      {"@reboot", 0, "unknown schedule macro", "no @reboot"},
      {"*/x * * * *", 2, "a step needs a number", "*/15"},
      {"1-5x * * * *", 3, "unexpected \"x\"", ""},
      {"", 0, "this one has 0", ""},
  };
  for (const Case& c : cases) {
    const std::string expr = c.expr;
    CAPTURE(expr);
    CronError error;
    CHECK_FALSE(CronSchedule::Parse(c.expr, &error).has_value());
    CHECK(error.offset == c.offset);
    CHECK(error.message.find(c.message) != std::string::npos);
    CHECK(error.hint.find(c.hint) != std::string::npos);
  }
}

// An independent reference: fields as explicit sets, matched minute by minute.
struct Reference {
  std::set<int> minutes, hours, days, months, weekdays;
  bool day_star = false, weekday_star = false;
  bool Matches(sys_seconds t) const {
    const date::sys_days day = date::floor<date::days>(t);
    const date::year_month_day ymd(day);
    const auto hms = date::hh_mm_ss<std::chrono::seconds>(t - day);
    const int weekday = static_cast<int>(date::weekday(day).c_encoding());
    if (!minutes.count(static_cast<int>(hms.minutes().count())) ||
        !hours.count(static_cast<int>(hms.hours().count())) ||
        !months.count(static_cast<int>(static_cast<unsigned>(ymd.month())))) {
      return false;
    }
    const bool dom = days.count(static_cast<int>(static_cast<unsigned>(ymd.day()))) > 0;
    const bool dow = weekdays.count(weekday) > 0 || (weekday == 0 && weekdays.count(7) > 0);
    return (day_star || weekday_star) ? (dom && dow) : (dom || dow);
  }
};

// A random field: `*`, `*/n`, a value, a range, a stepped range, or a list of those.
std::string RandomField(std::mt19937& rng, int low, int high, std::set<int>* values, bool* star) {
  auto pick = [&](int a, int b) { return std::uniform_int_distribution<int>(a, b)(rng); };
  const int kind = pick(0, 9);
  if (kind <= 1) {
    *star = true;
    const int step = kind == 0 ? 1 : pick(2, std::min(15, high));
    for (int v = low; v <= high; v += step) values->insert(v);
    return step == 1 ? "*" : "*/" + std::to_string(step);
  }
  *star = false;
  std::string out;
  for (int parts = pick(1, 3), p = 0; p < parts; ++p) {
    int a = pick(low, high);
    int b = pick(a, high);
    std::string item;
    switch (pick(0, 2)) {
      case 0:
        values->insert(a);
        item = std::to_string(a);
        break;
      case 1:
        for (int v = a; v <= b; ++v) values->insert(v);
        item = std::to_string(a) + "-" + std::to_string(b);
        break;
      default: {
        int step = pick(1, 10);
        for (int v = a; v <= b; v += step) values->insert(v);
        item = std::to_string(a) + "-" + std::to_string(b) + "/" + std::to_string(step);
      }
    }
    out += (out.empty() ? "" : ",") + item;
  }
  return out;
}

TEST_CASE("Cron.Next.AgreesWithABruteForceReferenceOnRandomExpressions" * testing::Timeout(120)) {
  std::mt19937 rng(20261127);
  int checked = 0;
  for (int round = 0; round < 400; ++round) {
    Reference ref;
    bool unused;
    std::string expr = RandomField(rng, 0, 59, &ref.minutes, &unused) + " " +
                       RandomField(rng, 0, 23, &ref.hours, &unused) + " " +
                       RandomField(rng, 1, 31, &ref.days, &ref.day_star) + " " +
                       RandomField(rng, 1, 12, &ref.months, &unused) + " " +
                       RandomField(rng, 0, 7, &ref.weekdays, &ref.weekday_star);
    CAPTURE(expr);
    CronError error;
    auto schedule = CronSchedule::Parse(expr, &error);
    if (!schedule) {
      // Only "never fires" may be refused among these well-formed expressions.
      CHECK(error.message.find("never fires") != std::string::npos);
      continue;
    }
    sys_seconds from =
        At(2026, 1, 1) + std::chrono::minutes(std::uniform_int_distribution<int>(0, 525600)(rng));
    for (int k = 0; k < 3; ++k) {
      auto got = schedule->Next(from, nullptr);
      REQUIRE(got.has_value());
      // The reference walks minute by minute from just after `from`.
      sys_seconds t = date::floor<std::chrono::minutes>(from) + std::chrono::minutes(1);
      while (!ref.Matches(t)) t += std::chrono::minutes(1);
      CHECK(FormatTimeUtc(*got) == FormatTimeUtc(t));
      from = *got;
      ++checked;
    }
  }
  CHECK(checked > 900);
}

}  // namespace
}  // namespace sluice
