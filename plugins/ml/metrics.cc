#include "metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace sluice::ml {

using nlohmann::json;

double RocAuc(const std::vector<double>& scores, const std::vector<int>& positive) {
  const size_t n = scores.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Average ranks over ties, then the Mann-Whitney U of the positives.
  double rank_sum = 0;
  size_t pos = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && scores[order[j]] == scores[order[i]]) ++j;
    const double avg_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (size_t t = i; t < j; ++t) {
      if (positive[order[t]] != 0) {
        rank_sum += avg_rank;
        ++pos;
      }
    }
    i = j;
  }
  const size_t neg = n - pos;
  if (pos == 0 || neg == 0) return std::nan("");
  const double p = static_cast<double>(pos);
  return (rank_sum - p * (p + 1) / 2) / (p * static_cast<double>(neg));
}

double LogLoss(const std::vector<double>& proba, size_t k, const std::vector<double>& labels) {
  double sum = 0;
  for (size_t r = 0; r < labels.size(); ++r) {
    const double p = std::clamp(proba[r * k + static_cast<size_t>(labels[r])], 1e-15, 1 - 1e-15);
    sum -= std::log(p);
  }
  return labels.empty() ? std::nan("") : sum / static_cast<double>(labels.size());
}

namespace {

double Ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

}  // namespace

json ClassificationReport(const std::vector<double>& proba, const std::vector<double>& labels,
                          const std::vector<std::string>& classes, size_t positive,
                          int calibration_bins) {
  const size_t k = classes.size();
  const size_t n = labels.size();
  std::vector<std::vector<size_t>> confusion(k, std::vector<size_t>(k, 0));
  std::vector<size_t> predicted(n);
  size_t correct = 0;
  for (size_t r = 0; r < n; ++r) {
    const double* p = proba.data() + r * k;
    const size_t top = static_cast<size_t>(std::max_element(p, p + k) - p);
    predicted[r] = top;
    const size_t truth = static_cast<size_t>(labels[r]);
    ++confusion[truth][top];
    if (top == truth) ++correct;
  }

  json per_class = json::object();
  double precision_sum = 0;
  double recall_sum = 0;
  double f1_sum = 0;
  double auc_sum = 0;
  size_t auc_count = 0;
  std::vector<double> aucs(k, std::nan(""));
  for (size_t c = 0; c < k; ++c) {
    size_t tp = confusion[c][c];
    size_t predicted_c = 0;
    size_t actual_c = 0;
    for (size_t o = 0; o < k; ++o) {
      predicted_c += confusion[o][c];
      actual_c += confusion[c][o];
    }
    const double precision = Ratio(static_cast<double>(tp), static_cast<double>(predicted_c));
    const double recall = Ratio(static_cast<double>(tp), static_cast<double>(actual_c));
    const double f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0;
    std::vector<double> scores(n);
    std::vector<int> is_c(n);
    for (size_t r = 0; r < n; ++r) {
      scores[r] = proba[r * k + c];
      is_c[r] = static_cast<size_t>(labels[r]) == c ? 1 : 0;
    }
    aucs[c] = RocAuc(scores, is_c);
    if (!std::isnan(aucs[c])) {
      auc_sum += aucs[c];
      ++auc_count;
    }
    precision_sum += precision;
    recall_sum += recall;
    f1_sum += f1;
    per_class[classes[c]] = {{"precision", precision},
                             {"recall", recall},
                             {"f1", f1},
                             {"support", actual_c},
                             {"auc", std::isnan(aucs[c]) ? json() : json(aucs[c])}};
  }
  const double kd = static_cast<double>(k);
  double auc = k == 2 ? aucs[positive]
                      : (auc_count > 0 ? auc_sum / static_cast<double>(auc_count) : std::nan(""));

  json matrix = json::array();
  for (const auto& row : confusion) matrix.push_back(row);

  // Calibration: equal-width bins over [0, 1].
  const int bins = std::max(1, calibration_bins);
  std::vector<double> conf_sum(static_cast<size_t>(bins), 0);
  std::vector<double> hit_sum(static_cast<size_t>(bins), 0);
  std::vector<size_t> counts(static_cast<size_t>(bins), 0);
  for (size_t r = 0; r < n; ++r) {
    double score = 0;
    bool hit = false;
    if (k == 2) {
      score = proba[r * k + positive];
      hit = static_cast<size_t>(labels[r]) == positive;
    } else {
      score = proba[r * k + predicted[r]];
      hit = predicted[r] == static_cast<size_t>(labels[r]);
    }
    const size_t b = std::min(static_cast<size_t>(score * bins), static_cast<size_t>(bins - 1));
    conf_sum[b] += score;
    hit_sum[b] += hit ? 1 : 0;
    ++counts[b];
  }
  json calibration = json::array();
  for (int b = 0; b < bins; ++b) {
    const size_t i = static_cast<size_t>(b);
    if (counts[i] == 0) continue;
    const double c = static_cast<double>(counts[i]);
    calibration.push_back({{"bin", b},
                           {"lower", static_cast<double>(b) / bins},
                           {"upper", static_cast<double>(b + 1) / bins},
                           {"count", counts[i]},
                           {"mean_predicted", conf_sum[i] / c},
                           {"fraction_positive", hit_sum[i] / c}});
  }

  return {{"count", n},
          {"accuracy", Ratio(static_cast<double>(correct), static_cast<double>(n))},
          {"precision_macro", precision_sum / kd},
          {"recall_macro", recall_sum / kd},
          {"f1_macro", f1_sum / kd},
          {"auc", std::isnan(auc) ? json() : json(auc)},
          {"logloss", LogLoss(proba, k, labels)},
          {"per_class", per_class},
          {"confusion_matrix", {{"labels", classes}, {"rows", matrix}}},
          {"calibration", calibration}};
}

json RegressionReport(const std::vector<double>& predicted, const std::vector<double>& actual) {
  const size_t n = actual.size();
  double se = 0;
  double ae = 0;
  double max_error = 0;
  double mean = 0;
  for (double a : actual) mean += a;
  mean = n > 0 ? mean / static_cast<double>(n) : 0;
  double ss_tot = 0;
  for (size_t i = 0; i < n; ++i) {
    const double e = predicted[i] - actual[i];
    se += e * e;
    ae += std::abs(e);
    max_error = std::max(max_error, std::abs(e));
    ss_tot += (actual[i] - mean) * (actual[i] - mean);
  }
  const double nd = static_cast<double>(std::max<size_t>(n, 1));
  return {{"count", n},
          {"rmse", std::sqrt(se / nd)},
          {"mae", ae / nd},
          {"r2", ss_tot > 0 ? 1 - se / ss_tot : 0.0},
          {"max_error", max_error}};
}

}  // namespace sluice::ml
