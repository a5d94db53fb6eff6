// Data profiles: per-column statistics of a table, kept as the reference that later data
// is compared against (monitor.drift) and logged as metrics (dataprep.csv).
#ifndef SLUICE_PLUGINS_ML_PROFILE_H_
#define SLUICE_PLUGINS_ML_PROFILE_H_

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "csv.h"

namespace sluice::ml {

// The profile of `rows` of `table` over `columns` (categorical ones listed in
// `categorical`), as JSON:
//   {"format": "sluice.profile/1", "rows": N, "target": ..., "classes": {class: count},
//    "columns": {name: {"type": "numeric", "count", "missing", "mean", "std", "min", "max",
//                       "quantiles": [q0, q10, ..., q100], "sample": [sorted values]}
//                     | {"type": "categorical", "count", "missing", "levels": {level: n}}}}
// "sample" holds every value, or an evenly spaced subset of `max_sample` sorted values,
// enough for a two-sample Kolmogorov-Smirnov test.
nlohmann::json Profile(const CsvTable& table, const std::vector<size_t>& rows,
                       const std::vector<std::string>& columns,
                       const std::vector<std::string>& categorical, const std::string& target,
                       size_t max_sample = 2000);

// Sorted numeric values of a column (missing and non-numeric cells left out).
std::vector<double> NumericValues(const CsvTable& table, const std::vector<size_t>& rows, int col);

// A deterministic random generator (SplitMix64) and an unbiased Fisher-Yates shuffle, so
// that a seed gives the same split on every platform and standard library.
class Random {
 public:
  explicit Random(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  uint64_t Below(uint64_t n);  // uniform in [0, n)
  template <typename T>
  void Shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[Below(i)]);
  }

 private:
  uint64_t state_;
};

}  // namespace sluice::ml

#endif  // SLUICE_PLUGINS_ML_PROFILE_H_
