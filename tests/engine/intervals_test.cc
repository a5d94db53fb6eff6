#include "sluice/intervals.h"

#include <date/tz.h>
#include <doctest/doctest.h>

#include "sluice/dag_loader.h"
#include "test_util.h"

namespace sluice {
namespace {

using std::chrono::sys_seconds;

sys_seconds At(int y, unsigned mo, unsigned d, int h = 0, int mi = 0) {
  return testing::UtcTime(y, mo, d, h, mi);
}

std::unique_ptr<const Dag> Load(const std::string& dag_table) {
  DagLoadResult r = LoadDagText(
      "[dag]\nid = \"s\"\n" + dag_table + "\n[[task]]\nid = \"a\"\nplugin = \"core.noop\"\n",
      "s.toml");
  std::string errors;
  for (const auto& d : r.diagnostics.items()) errors += Render(d);
  REQUIRE_MESSAGE(r.ok(), errors);
  return std::move(r.dag);
}

std::vector<std::string> Starts(const std::vector<DataInterval>& intervals) {
  std::vector<std::string> out;
  for (const DataInterval& i : intervals)
    out.push_back(FormatTimeUtc(i.start) + ".." + FormatTimeUtc(i.end));
  return out;
}

const date::time_zone* Utc() { return date::locate_zone("UTC"); }

TEST_CASE("Intervals.First.AlignedAndUnalignedStartDates") {
  CronError error;
  auto daily = CronSchedule::Parse("0 3 * * *", &error);
  REQUIRE(daily.has_value());
  // Aligned: the first interval starts at start_date itself.
  auto aligned = FirstInterval(*daily, Utc(), At(2026, 1, 1, 3));
  REQUIRE(aligned.has_value());
  CHECK(aligned->start == At(2026, 1, 1, 3));
  CHECK(aligned->end == At(2026, 1, 2, 3));
  // Not aligned: at the next fire time.
  auto unaligned = FirstInterval(*daily, Utc(), At(2026, 1, 1, 12));
  REQUIRE(unaligned.has_value());
  CHECK(unaligned->start == At(2026, 1, 2, 3));
  auto next = NextInterval(*daily, Utc(), *unaligned);
  REQUIRE(next.has_value());
  CHECK(next->start == At(2026, 1, 3, 3));
}

TEST_CASE("Intervals.Due.CatchupPolicies") {
  const std::string base = "schedule = \"@daily\"\nstart_date = 2026-01-01T00:00:00Z\n";
  DueQuery q;
  q.now = At(2026, 1, 4, 12);  // intervals of Jan 1, 2 and 3 have ended
  q.since = At(2026, 1, 3, 6);

  auto all = Load(base + "catchup = \"all\"");
  CHECK(Starts(DueIntervals(all->spec(), Utc(), q)) ==
        std::vector<std::string>{"2026-01-01T00:00:00Z..2026-01-02T00:00:00Z",
                                 "2026-01-02T00:00:00Z..2026-01-03T00:00:00Z",
                                 "2026-01-03T00:00:00Z..2026-01-04T00:00:00Z"});
  auto latest = Load(base + "catchup = \"latest\"");
  CHECK(Starts(DueIntervals(latest->spec(), Utc(), q)) ==
        std::vector<std::string>{"2026-01-03T00:00:00Z..2026-01-04T00:00:00Z"});
  auto none = Load(base + "catchup = \"none\"");
  // Only the interval that ended after `since` (Jan 4 00:00 > Jan 3 06:00).
  CHECK(Starts(DueIntervals(none->spec(), Utc(), q)) ==
        std::vector<std::string>{"2026-01-03T00:00:00Z..2026-01-04T00:00:00Z"});

  // After the cursor: only what is newer.
  q.last_start = At(2026, 1, 2);
  CHECK(Starts(DueIntervals(all->spec(), Utc(), q)) ==
        std::vector<std::string>{"2026-01-03T00:00:00Z..2026-01-04T00:00:00Z"});
  q.last_start = At(2026, 1, 3);
  CHECK(DueIntervals(all->spec(), Utc(), q).empty());
  CHECK(DueIntervals(latest->spec(), Utc(), q).empty());  // never the same slot twice

  // The limit takes the oldest first; the next call continues after the cursor.
  q.last_start.reset();
  q.limit = 2;
  CHECK(DueIntervals(all->spec(), Utc(), q).size() == 2);
}

TEST_CASE("Intervals.Due.EndDateAndNotYetEnded") {
  auto dag = Load(
      "schedule = \"0 * * * *\"\nstart_date = 2026-01-01T00:00:00Z\nend_date = "
      "2026-01-01T02:00:00Z\ncatchup = true");
  DueQuery q;
  q.now = At(2026, 1, 2);
  // Intervals starting at 00:00, 01:00 and 02:00 (02:00 <= end_date), not 03:00.
  CHECK(DueIntervals(dag->spec(), Utc(), q).size() == 3);
  q.now = At(2026, 1, 1, 1, 30);  // only the 00:00 interval has ended
  CHECK(Starts(DueIntervals(dag->spec(), Utc(), q)) ==
        std::vector<std::string>{"2026-01-01T00:00:00Z..2026-01-01T01:00:00Z"});
}

TEST_CASE("Intervals.Due.DailyAcrossDstIsOneIntervalPerLocalDay") {
  // 03:30 local in Berlin: 23 hours on the day clocks go forward, 25 when they go back.
  auto dag = Load(
      "schedule = \"30 3 * * *\"\ntimezone = \"Europe/Berlin\"\nstart_date = 2026-03-28\ncatchup = "
      "true");
  const date::time_zone* berlin = date::locate_zone("Europe/Berlin");
  DueQuery q;
  q.now = At(2026, 3, 31);
  std::vector<DataInterval> due = DueIntervals(dag->spec(), berlin, q);
  REQUIRE(due.size() == 2);
  CHECK(FormatTimeUtc(due[0].start) == "2026-03-28T02:30:00Z");
  CHECK(due[0].end - due[0].start == std::chrono::hours(23));
  CHECK(FormatTimeUtc(due[1].start) == "2026-03-29T01:30:00Z");
  CHECK(due[1].end - due[1].start == std::chrono::hours(24));
}

}  // namespace
}  // namespace sluice
