#include "sluice/duration.h"

#include <array>
#include <cstdint>
#include <limits>

namespace sluice {
namespace {

struct Unit {
  std::string_view name;
  int64_t millis;
};
// Largest first; "ms" before "m" so that the longest name matches.
constexpr std::array<Unit, 5> kUnits = {{
    {"d", 86'400'000},
    {"h", 3'600'000},
    {"m", 60'000},
    {"s", 1'000},
    {"ms", 1},
}};

Status Bad(std::string_view text, std::string_view why) {
  return Status::InvalidArgument("invalid duration \"" + std::string(text) +
                                 "\": " + std::string(why));
}

}  // namespace

StatusOr<Duration> ParseDuration(std::string_view text) {
  if (text.empty()) return Bad(text, "it is empty");
  int64_t total = 0;
  size_t i = 0;
  int last_unit = -1;
  while (i < text.size()) {
    if (text[i] < '0' || text[i] > '9') {
      return Bad(text, "expected a digit at position " + std::to_string(i + 1));
    }
    int64_t number = 0;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      if (number > (std::numeric_limits<int64_t>::max() - 9) / 10) return Bad(text, "too large");
      number = number * 10 + (text[i] - '0');
      ++i;
    }
    if (i < text.size() && (text[i] == '.' || text[i] == ',')) {
      return Bad(text, "fractions are not supported (write \"1h30m\" rather than \"1.5h\")");
    }
    size_t unit_start = i;
    while (i < text.size() &&
           ((text[i] >= 'a' && text[i] <= 'z') || (text[i] >= 'A' && text[i] <= 'Z'))) {
      ++i;
    }
    std::string_view unit_name = text.substr(unit_start, i - unit_start);
    if (unit_name.empty()) {
      return Bad(text, "the number " + std::to_string(number) + " has no unit");
    }
    int unit_index = -1;
    for (size_t u = 0; u < kUnits.size(); ++u) {
      if (kUnits[u].name == unit_name) unit_index = static_cast<int>(u);
    }
    if (unit_index < 0) return Bad(text, "unknown unit \"" + std::string(unit_name) + "\"");
    if (unit_index <= last_unit) {
      return Bad(text, "unit \"" + std::string(unit_name) + "\" is repeated or out of order");
    }
    last_unit = unit_index;
    int64_t millis = kUnits[unit_index].millis;
    if (number > (std::numeric_limits<int64_t>::max() - total) / millis) {
      return Bad(text, "too large");
    }
    total += number * millis;
  }
  return Duration(total);
}

std::string FormatDuration(Duration d) {
  int64_t rest = d.count();
  if (rest == 0) return "0s";
  std::string out;
  if (rest < 0) {
    out = "-";
    rest = -rest;
  }
  for (const Unit& unit : kUnits) {
    if (rest >= unit.millis) {
      out += std::to_string(rest / unit.millis);
      out += unit.name;
      rest %= unit.millis;
    }
  }
  return out;
}

StatusOr<uint64_t> ParseSize(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Status::InvalidArgument("invalid size \"" + std::string(text) +
                                   "\": " + std::string(why) +
                                   " (write e.g. \"512MiB\", \"2GiB\" or \"1.5GB\")");
  };
  size_t i = 0;
  double number = 0;
  bool digits = false;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    number = number * 10 + (text[i++] - '0');
    digits = true;
  }
  if (i < text.size() && text[i] == '.') {
    double scale = 0.1;
    for (++i; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, scale /= 10) {
      number += (text[i] - '0') * scale;
      digits = true;
    }
  }
  if (!digits) return bad("expected a number");
  std::string_view unit = text.substr(i);
  static const std::pair<std::string_view, double> kUnits[] = {{"", 1},
                                                               {"B", 1},
                                                               {"KiB", 1024.0},
                                                               {"MiB", 1048576.0},
                                                               {"GiB", 1073741824.0},
                                                               {"TiB", 1099511627776.0},
                                                               {"KB", 1e3},
                                                               {"MB", 1e6},
                                                               {"GB", 1e9},
                                                               {"TB", 1e12}};
  for (const auto& [name, factor] : kUnits) {
    if (unit == name) {
      const double bytes = number * factor;
      if (bytes >= 1.8e19) return bad("too large");
      return static_cast<uint64_t>(bytes);
    }
  }
  return bad("unknown unit \"" + std::string(unit) + "\"");
}

std::string FormatSize(uint64_t bytes) {
  static const std::pair<const char*, uint64_t> kUnits[] = {
      {"TiB", 1ull << 40}, {"GiB", 1ull << 30}, {"MiB", 1ull << 20}, {"KiB", 1ull << 10}};
  for (const auto& [name, factor] : kUnits) {
    if (bytes != 0 && bytes % factor == 0) return std::to_string(bytes / factor) + name;
  }
  return std::to_string(bytes) + "B";
}

}  // namespace sluice
