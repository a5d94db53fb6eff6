// Drift statistics: how far a new batch of one column is from the training data's.
#ifndef SLUICE_PLUGINS_ML_DRIFT_H_
#define SLUICE_PLUGINS_ML_DRIFT_H_

#include <map>
#include <string>
#include <vector>

namespace sluice::ml {

// Population stability index over the bins that `edges` (ascending inner edges, e.g. the
// training deciles) cut: sum over bins of (a - e) * ln(a / e), where e and a are the shares
// of `expected` and `actual` in the bin; shares are floored at 1e-4 so that an empty bin
// counts as rare, not as infinitely surprising. Common reading: < 0.1 stable, 0.1-0.25 a
// moderate shift, > 0.25 a major one.
double Psi(const std::vector<double>& expected, const std::vector<double>& actual,
           const std::vector<double>& edges);

struct KsResult {
  double statistic = 0;  // sup |F_expected - F_actual|
  double p_value = 1;    // asymptotic (Kolmogorov distribution), two-sided
};
// The two-sample Kolmogorov-Smirnov test. Both inputs sorted ascending.
KsResult KolmogorovSmirnov(const std::vector<double>& expected_sorted,
                           const std::vector<double>& actual_sorted);

struct ChiSquaredResult {
  double statistic = 0;
  int dof = 0;
  double p_value = 1;
};
// Pearson's chi-squared test of `actual` level counts against the shares of `expected`
// counts. A level never seen in training gets an expected share of 0.5 / (training count),
// so that it raises the statistic without dividing by zero.
ChiSquaredResult ChiSquared(const std::map<std::string, double>& expected,
                            const std::map<std::string, double>& actual);

// The upper regularised incomplete gamma function Q(a, x) (the chi-squared survival
// function is Q(dof / 2, statistic / 2)).
double GammaQ(double a, double x);

}  // namespace sluice::ml

#endif  // SLUICE_PLUGINS_ML_DRIFT_H_
