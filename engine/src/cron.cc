#include "sluice/cron.h"

#include <date/date.h>
#include <date/tz.h>

#include <array>
#include <cctype>
#include <vector>

#include "sluice/suggest.h"

namespace sluice {
namespace {

struct FieldSpec {
  const char* name;
  int low;
  int high;
  const char* const* names;  // names[i] is value (names_base + i); null when none
  int names_base;
};

constexpr const char* kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",  "jul",
                                       "aug", "sep", "oct", "nov", "dec", nullptr};
constexpr const char* kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", nullptr};

constexpr std::array<FieldSpec, 5> kFields = {{
    {"minute", 0, 59, nullptr, 0},
    {"hour", 0, 23, nullptr, 0},
    {"day-of-month", 1, 31, nullptr, 0},
    {"month", 1, 12, kMonthNames, 1},
    {"day-of-week", 0, 7, kDayNames, 0},
}};

struct Macro {
  std::string_view name;
  std::string_view expansion;
};
constexpr std::array<Macro, 7> kMacros = {{
    {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
    {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"},
    {"@daily", "0 0 * * *"},
    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
}};

constexpr int kDaysInMonth[] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};  // Feb: leap

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

class FieldParser {
 public:
  FieldParser(const FieldSpec& spec, std::string_view text, size_t base, CronError* error)
      : spec_(spec), text_(text), base_(base), error_(error) {}

  // Sets the values the field names in `bits` (indexed by value). False on error.
  bool Parse(std::vector<bool>* bits) {
    bits->assign(static_cast<size_t>(spec_.high) + 1, false);
    size_t start = 0;
    while (start <= text_.size()) {
      size_t comma = text_.find(',', start);
      std::string_view item = text_.substr(
          start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
      if (!ParseItem(item, base_ + start, bits)) return false;
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    return true;
  }

 private:
  bool Fail(size_t offset, std::string message, std::string hint = {}) {
    *error_ = {offset, std::string(spec_.name) + " field: " + std::move(message), std::move(hint)};
    return false;
  }

  std::string Range() const {
    std::string r = std::to_string(spec_.low) + "-" + std::to_string(spec_.high);
    if (spec_.names != nullptr) r += " or names (" + std::string(spec_.names[0]) + "…)";
    return r;
  }

  // A number or a name at the start of `s`; sets *consumed.
  bool Value(std::string_view s, size_t offset, int* value, size_t* consumed) {
    size_t i = 0;
    if (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      int v = 0;
      while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
        v = v * 10 + (s[i] - '0');
        if (v > 1000)
          return Fail(offset, "number " + std::string(s.substr(0, i + 1)) + "… is out of range",
                      "use " + Range());
        ++i;
      }
      if (v < spec_.low || v > spec_.high) {
        return Fail(offset, std::to_string(v) + " is out of range", "use " + Range());
      }
      *value = v;
      *consumed = i;
      return true;
    }
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
    if (i == 0) {
      return Fail(
          offset,
          s.empty() ? "a value is missing" : "unexpected \"" + std::string(s.substr(0, 1)) + "\"",
          "use a number (" + Range() + "), a range a-b, a step */n or a-b/n, or a list x,y");
    }
    const std::string word = Lower(s.substr(0, i));
    std::vector<std::string> known;
    for (int k = 0; spec_.names != nullptr && spec_.names[k] != nullptr; ++k) {
      if (word == spec_.names[k]) {
        *value = spec_.names_base + k;
        *consumed = i;
        return true;
      }
      known.emplace_back(spec_.names[k]);
    }
    if (spec_.names == nullptr) {
      return Fail(offset, "\"" + std::string(s.substr(0, i)) + "\" is not a number",
                  "use " + Range());
    }
    std::string hint = DidYouMean(word, known);
    if (hint.empty()) {
      hint = "names are";
      for (const std::string& k : known) hint += " " + k;
    }
    return Fail(offset, "unknown name \"" + std::string(s.substr(0, i)) + "\"", hint);
  }

  bool ParseItem(std::string_view item, size_t offset, std::vector<bool>* bits) {
    if (item.empty()) return Fail(offset, "empty list entry", "remove the extra comma");
    int first = spec_.low;
    int last = spec_.high;
    size_t i = 0;
    bool single = false;
    if (item[0] == '*') {
      i = 1;
    } else {
      size_t used = 0;
      if (!Value(item, offset, &first, &used)) return false;
      i = used;
      last = first;
      single = true;
      if (i < item.size() && item[i] == '-') {
        ++i;
        if (!Value(item.substr(i), offset + i, &last, &used)) return false;
        i += used;
        single = false;
        if (last < first) {
          return Fail(
              offset,
              "range " + std::to_string(first) + "-" + std::to_string(last) + " runs backwards",
              "write the smaller value first, or split it: a-" + std::to_string(spec_.high) + "," +
                  std::to_string(spec_.low) + "-b");
        }
      }
    }
    int step = 1;
    if (i < item.size() && item[i] == '/') {
      if (single) {
        return Fail(offset, "a step needs a range: \"" + std::string(item) + "\"",
                    "write " + std::to_string(first) + "-" + std::to_string(spec_.high) +
                        std::string(item.substr(i)) + " or */" + std::string(item.substr(i + 1)));
      }
      ++i;
      size_t j = i;
      step = 0;
      while (j < item.size() && std::isdigit(static_cast<unsigned char>(item[j]))) {
        step = step * 10 + (item[j] - '0');
        if (step > 1000) break;
        ++j;
      }
      if (j == i) return Fail(offset + i, "a step needs a number after \"/\"", "e.g. */15");
      // Vixie cron takes any step from 1 up; a step past the range's end keeps its first value.
      if (step == 0 || step > 1000) {
        return Fail(offset + i, "step " + std::to_string(step) + " is out of range",
                    "use a step of 1 or more");
      }
      i = j;
    }
    if (i != item.size()) {
      return Fail(offset + i, "unexpected \"" + std::string(item.substr(i)) + "\"",
                  "an entry is a value, a range a-b, or either with a step /n");
    }
    for (int v = first; v <= last; v += step) (*bits)[static_cast<size_t>(v)] = true;
    return true;
  }

  const FieldSpec& spec_;
  std::string_view text_;
  size_t base_;
  CronError* error_;
};

}  // namespace

std::optional<CronSchedule> CronSchedule::Parse(std::string_view expression, CronError* error) {
  if (expression.size() > kMaxCronBytes) {
    *error = {0,
              "the schedule is " + std::to_string(expression.size()) +
                  " bytes, more than the limit of " + std::to_string(kMaxCronBytes),
              "a cron expression is five short fields, e.g. \"0 3 * * *\""};
    return std::nullopt;
  }
  CronSchedule schedule;
  schedule.expression_ = std::string(expression);
  std::string_view text = expression;
  size_t base = 0;
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
    ++base;
  }
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.remove_suffix(1);
  std::string macro_text;
  if (!text.empty() && text[0] == '@') {
    const std::string word = Lower(text);
    std::vector<std::string> names;
    for (const Macro& m : kMacros) {
      names.emplace_back(m.name);
      if (word == m.name) macro_text = std::string(m.expansion);
    }
    if (macro_text.empty()) {
      std::string hint = word == "@reboot"
                             ? "Sluice schedules have no @reboot; trigger the DAG by hand or by API"
                             : DidYouMean(word, names);
      if (hint.empty())
        hint = "macros: @yearly @annually @monthly @weekly @daily @midnight @hourly";
      *error = {base, "unknown schedule macro \"" + std::string(text) + "\"", hint};
      return std::nullopt;
    }
    text = macro_text;
    base = 0;  // errors cannot happen inside an expansion
  }

  // Split into fields, remembering where each starts.
  std::vector<std::pair<std::string_view, size_t>> fields;
  for (size_t i = 0; i < text.size();) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i == text.size()) break;
    size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    fields.emplace_back(text.substr(start, i - start), base + start);
  }
  if (fields.size() != 5) {
    *error = {
        base,
        "a schedule has 5 fields (minute hour day-of-month month day-of-week), this one has " +
            std::to_string(fields.size()),
        fields.size() == 6
            ? "seconds and years are not supported; drop the extra field"
            : "e.g. \"0 3 * * *\" for 03:00 every day, or a macro such as \"@daily\""};
    return std::nullopt;
  }

  std::vector<bool> bits;
  for (size_t f = 0; f < 5; ++f) {
    FieldParser parser(kFields[f], fields[f].first, fields[f].second, error);
    if (!parser.Parse(&bits)) return std::nullopt;
    for (size_t v = 0; v < bits.size(); ++v) {
      if (!bits[v]) continue;
      switch (f) {
        case 0:
          schedule.minutes_.set(v);
          break;
        case 1:
          schedule.hours_.set(v);
          break;
        case 2:
          schedule.days_.set(v);
          break;
        case 3:
          schedule.months_.set(v);
          break;
        case 4:
          schedule.weekdays_.set(v == 7 ? 0 : v);
          break;
        default:
          break;
      }
    }
  }
  schedule.day_star_ = fields[2].first[0] == '*';
  schedule.weekday_star_ = fields[4].first[0] == '*';

  // A restricted day-of-month with an unrestricted day-of-week must name a day that exists in
  // one of the months named (February counts its 29th).
  if (!schedule.day_star_ && schedule.weekday_star_) {
    bool possible = false;
    for (int m = 1; m <= 12 && !possible; ++m) {
      if (!schedule.months_[static_cast<size_t>(m)]) continue;
      for (int d = 1; d <= kDaysInMonth[m] && !possible; ++d)
        possible = schedule.days_[static_cast<size_t>(d)];
    }
    if (!possible) {
      *error = {
          fields[2].second, "the schedule never fires: no month it names has the days it names",
          "e.g. \"0 0 31 2 *\" asks for February 31st; check the day-of-month and month fields"};
      return std::nullopt;
    }
  }
  return schedule;
}

bool CronSchedule::MatchesDay(int month, int day, int weekday) const {
  if (!months_[static_cast<size_t>(month)]) return false;
  const bool dom = days_[static_cast<size_t>(day)];
  const bool dow = weekdays_[static_cast<size_t>(weekday)];
  if (day_star_ || weekday_star_) return dom && dow;
  return dom || dow;
}

std::optional<std::chrono::sys_seconds> CronSchedule::Next(std::chrono::sys_seconds after,
                                                           const date::time_zone* zone) const {
  using namespace std::chrono;
  using date::local_seconds;
  const local_seconds local_after =
      zone != nullptr ? zone->to_local(after) : local_seconds(after.time_since_epoch());
  // Candidates are local minutes, in increasing order, starting after `after`'s minute.
  local_seconds from = date::floor<minutes>(local_after) + minutes(1);

  auto resolve = [&](local_seconds local) -> sys_seconds {
    if (zone == nullptr) return sys_seconds(local.time_since_epoch());
    const date::local_info info = zone->get_info(local);
    switch (info.result) {
      case date::local_info::unique:
      case date::local_info::ambiguous:  // the first occurrence
        return sys_seconds(local.time_since_epoch()) - info.first.offset;
      case date::local_info::nonexistent:  // skipped by a DST change: the change's instant
        return info.second.begin;
    }
    return sys_seconds(local.time_since_epoch());
  };

  const date::local_days end_day = date::floor<date::days>(from) + date::days(366 * 100);
  while (from < local_seconds(end_day)) {
    // The first matching local minute at or after `from`.
    date::local_days day = date::floor<date::days>(from);
    minutes into_day = duration_cast<minutes>(from - day);
    int hour = static_cast<int>(into_day.count() / 60);
    int minute = static_cast<int>(into_day.count() % 60);
    std::optional<local_seconds> candidate;
    for (; day < end_day && !candidate; ++day, hour = 0, minute = 0) {
      const date::year_month_day ymd(day);
      const int month = static_cast<int>(static_cast<unsigned>(ymd.month()));
      if (!months_[static_cast<size_t>(month)]) {
        // Skip to the last day of this month; the loop's ++day moves to the next one.
        day = date::local_days(ymd.year() / ymd.month() / date::last);
        continue;
      }
      const int weekday = static_cast<int>(date::weekday(day).c_encoding());
      if (!MatchesDay(month, static_cast<int>(static_cast<unsigned>(ymd.day())), weekday)) continue;
      for (int h = hour; h < 24 && !candidate; ++h) {
        if (!hours_[static_cast<size_t>(h)]) continue;
        for (int m = h == hour ? minute : 0; m < 60; ++m) {
          if (minutes_[static_cast<size_t>(m)]) {
            candidate = local_seconds(day) + hours(h) + minutes(m);
            break;
          }
        }
      }
    }
    if (!candidate) return std::nullopt;
    const sys_seconds fire = resolve(*candidate);
    if (fire > after) return fire;
    // Mapped to or before `after` (a skipped or repeated hour): look further.
    from = *candidate + minutes(1);
  }
  return std::nullopt;
}

StatusOr<const date::time_zone*> FindTimeZone(const std::string& name) {
  try {
    return date::locate_zone(name);
  } catch (const std::exception&) {
    std::vector<std::string> zones;
    for (const auto& zone : date::get_tzdb().zones) zones.emplace_back(zone.name());
    std::string hint = DidYouMean(name, zones);
    if (hint.empty()) hint = "use an IANA time zone name such as \"UTC\" or \"Europe/Berlin\"";
    return Status::NotFound("unknown time zone \"" + name + "\": " + hint);
  }
}

}  // namespace sluice
