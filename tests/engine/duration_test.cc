#include "sluice/duration.h"

#include <doctest/doctest.h>

namespace sluice {
namespace {

using std::chrono::hours;
using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

TEST_CASE("Duration.Parse.AcceptsUnitsLargestFirst") {
  struct Case {
    const char* text;
    Duration want;
  };
  const Case cases[] = {
      {"0s", Duration(0)},
      {"30s", seconds(30)},
      {"5m", minutes(5)},
      {"1h30m", hours(1) + minutes(30)},
      {"2d", hours(48)},
      {"250ms", milliseconds(250)},
      {"1h0m5s", hours(1) + seconds(5)},
      {"1d2h3m4s5ms", hours(26) + minutes(3) + seconds(4) + milliseconds(5)},
      {"90s", seconds(90)},
  };
  for (const Case& c : cases) {
    const std::string text = c.text;
    CAPTURE(text);
    StatusOr<Duration> d = ParseDuration(c.text);
    REQUIRE(d.ok());
    CHECK(*d == c.want);
  }
}

TEST_CASE("Duration.Parse.RejectsWithAReason") {
  struct Case {
    const char* text;
    const char* why;
  };
  const Case cases[] = {
      {"", "empty"},
      {"30", "has no unit"},
      {"5min", "unknown unit \"min\""},
      {"30s1h", "repeated or out of order"},
      {"1h1h", "repeated or out of order"},
      {"-5s", "expected a digit"},
      {"1.5h", "fractions are not supported"},
      {"5 m", "has no unit"},
      {"h", "expected a digit"},
      {"99999999999999999999s", "too large"},
  };
  for (const Case& c : cases) {
    const std::string text = c.text;
    CAPTURE(text);
    StatusOr<Duration> d = ParseDuration(c.text);
    REQUIRE_FALSE(d.ok());
    CHECK(d.status().code() == Status::Code::kInvalidArgument);
    CHECK(d.status().message().find(c.why) != std::string::npos);
  }
}

TEST_CASE("Duration.Format.RoundTripsThroughParse") {
  const Duration values[] = {Duration(0), milliseconds(1), seconds(30), minutes(90),
                             hours(25) + milliseconds(7)};
  for (Duration d : values) {
    std::string text = FormatDuration(d);
    CAPTURE(text);
    StatusOr<Duration> back = ParseDuration(text);
    REQUIRE(back.ok());
    CHECK(*back == d);
  }
  CHECK(FormatDuration(minutes(90)) == "1h30m");
  CHECK(FormatDuration(milliseconds(250)) == "250ms");
  CHECK(FormatDuration(Duration(0)) == "0s");
}

}  // namespace
}  // namespace sluice
