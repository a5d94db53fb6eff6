#include "profile.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "preprocess.h"

namespace sluice::ml {

using nlohmann::json;

uint64_t Random::Next() {
  uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t Random::Below(uint64_t n) {
  // Rejection sampling: the top (2^64 mod n) values would bias the result.
  const uint64_t limit = -n % n;
  for (;;) {
    const uint64_t r = Next();
    if (r >= limit) return r % n;
  }
}

std::vector<double> NumericValues(const CsvTable& table, const std::vector<size_t>& rows, int col) {
  std::vector<double> values;
  values.reserve(rows.size());
  for (size_t r : rows) {
    double v = 0;
    if (ParseNumber(table.rows[r][static_cast<size_t>(col)], &v)) values.push_back(v);
  }
  std::sort(values.begin(), values.end());
  return values;
}

namespace {

// Linear interpolation between order statistics (the common "type 7" quantile).
double Quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(pos));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (pos - static_cast<double>(lo)) * (sorted[hi] - sorted[lo]);
}

}  // namespace

json Profile(const CsvTable& table, const std::vector<size_t>& rows,
             const std::vector<std::string>& columns, const std::vector<std::string>& categorical,
             const std::string& target, size_t max_sample) {
  json out = {{"format", "sluice.profile/1"}, {"rows", rows.size()}, {"target", target}};
  json cols = json::object();
  for (const std::string& name : columns) {
    const int col = table.Column(name);
    if (col < 0) continue;
    size_t missing = 0;
    for (size_t r : rows) missing += IsMissing(table.rows[r][static_cast<size_t>(col)]) ? 1 : 0;
    const bool is_categorical =
        std::find(categorical.begin(), categorical.end(), name) != categorical.end();
    if (is_categorical) {
      std::map<std::string, size_t> levels;
      for (size_t r : rows) {
        const std::string& cell = table.rows[r][static_cast<size_t>(col)];
        if (!IsMissing(cell)) ++levels[cell];
      }
      cols[name] = {{"type", "categorical"},
                    {"count", rows.size() - missing},
                    {"missing", missing},
                    {"levels", levels}};
      continue;
    }
    const std::vector<double> values = NumericValues(table, rows, col);
    double mean = 0;
    for (double v : values) mean += v;
    mean = values.empty() ? 0 : mean / static_cast<double>(values.size());
    double ss = 0;
    for (double v : values) ss += (v - mean) * (v - mean);
    json quantiles = json::array();
    for (int q = 0; q <= 10; ++q) quantiles.push_back(Quantile(values, q / 10.0));
    json sample = json::array();
    if (values.size() <= max_sample) {
      sample = values;
    } else {
      for (size_t i = 0; i < max_sample; ++i) {
        sample.push_back(values[i * (values.size() - 1) / (max_sample - 1)]);
      }
    }
    cols[name] = {{"type", "numeric"},
                  {"count", values.size()},
                  {"missing", missing},
                  {"mean", mean},
                  {"std", values.empty() ? 0 : std::sqrt(ss / static_cast<double>(values.size()))},
                  {"min", values.empty() ? 0 : values.front()},
                  {"max", values.empty() ? 0 : values.back()},
                  {"quantiles", quantiles},
                  {"sample", sample}};
  }
  out["columns"] = cols;
  const int target_col = target.empty() ? -1 : table.Column(target);
  if (target_col >= 0) {
    std::map<std::string, size_t> classes;
    for (size_t r : rows) {
      const std::string& cell = table.rows[r][static_cast<size_t>(target_col)];
      if (!IsMissing(cell)) ++classes[cell];
    }
    out["classes"] = classes;
  }
  return out;
}

}  // namespace sluice::ml
