#include "drift.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace sluice::ml {

namespace {

std::vector<double> Shares(const std::vector<double>& values, const std::vector<double>& edges) {
  std::vector<double> counts(edges.size() + 1, 0);
  for (double v : values) {
    // Bin i holds (edges[i-1], edges[i]]: the same rule for both samples is what matters.
    const size_t bin =
        static_cast<size_t>(std::lower_bound(edges.begin(), edges.end(), v) - edges.begin());
    counts[bin] += 1;
  }
  for (double& c : counts) c = values.empty() ? 0 : c / static_cast<double>(values.size());
  return counts;
}

// Q_KS(lambda) = 2 * sum_{j>=1} (-1)^(j-1) exp(-2 j^2 lambda^2).
double KolmogorovQ(double lambda) {
  if (lambda < 1e-3) return 1.0;
  double sum = 0;
  double sign = 1;
  for (int j = 1; j <= 100; ++j) {
    const double term = sign * std::exp(-2.0 * j * j * lambda * lambda);
    sum += term;
    if (std::abs(term) < 1e-12) break;
    sign = -sign;
  }
  return std::clamp(2.0 * sum, 0.0, 1.0);
}

}  // namespace

double Psi(const std::vector<double>& expected, const std::vector<double>& actual,
           const std::vector<double>& edges) {
  std::vector<double> unique_edges = edges;
  unique_edges.erase(std::unique(unique_edges.begin(), unique_edges.end()), unique_edges.end());
  const std::vector<double> e = Shares(expected, unique_edges);
  const std::vector<double> a = Shares(actual, unique_edges);
  double psi = 0;
  for (size_t i = 0; i < e.size(); ++i) {
    const double ei = std::max(e[i], 1e-4);
    const double ai = std::max(a[i], 1e-4);
    psi += (ai - ei) * std::log(ai / ei);
  }
  return psi;
}

KsResult KolmogorovSmirnov(const std::vector<double>& x, const std::vector<double>& y) {
  KsResult r;
  if (x.empty() || y.empty()) return r;
  const double n = static_cast<double>(x.size());
  const double m = static_cast<double>(y.size());
  size_t i = 0;
  size_t j = 0;
  while (i < x.size() && j < y.size()) {
    const double v = std::min(x[i], y[j]);
    while (i < x.size() && x[i] <= v) ++i;
    while (j < y.size() && y[j] <= v) ++j;
    r.statistic =
        std::max(r.statistic, std::abs(static_cast<double>(i) / n - static_cast<double>(j) / m));
  }
  const double en = std::sqrt(n * m / (n + m));
  r.p_value = KolmogorovQ((en + 0.12 + 0.11 / en) * r.statistic);
  return r;
}

double GammaQ(double a, double x) {
  if (x <= 0) return 1.0;
  const double log_prefix = -x + a * std::log(x) - std::lgamma(a);
  if (x < a + 1) {
    // Series for P(a, x); Q = 1 - P.
    double term = 1.0 / a;
    double sum = term;
    for (int n = 1; n < 1000; ++n) {
      term *= x / (a + n);
      sum += term;
      if (std::abs(term) < std::abs(sum) * 1e-15) break;
    }
    return std::clamp(1.0 - sum * std::exp(log_prefix), 0.0, 1.0);
  }
  // Continued fraction for Q (modified Lentz).
  const double tiny = 1e-300;
  double b = x + 1 - a;
  double c = 1 / tiny;
  double d = 1 / b;
  double h = d;
  for (int i = 1; i < 1000; ++i) {
    const double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1 / d;
    const double delta = d * c;
    h *= delta;
    if (std::abs(delta - 1) < 1e-15) break;
  }
  return std::clamp(std::exp(log_prefix) * h, 0.0, 1.0);
}

ChiSquaredResult ChiSquared(const std::map<std::string, double>& expected,
                            const std::map<std::string, double>& actual) {
  ChiSquaredResult r;
  double expected_total = 0;
  double actual_total = 0;
  for (const auto& [level, n] : expected) expected_total += n;
  for (const auto& [level, n] : actual) actual_total += n;
  if (expected_total <= 0 || actual_total <= 0) return r;
  std::set<std::string> levels;
  for (const auto& [level, n] : expected) levels.insert(level);
  for (const auto& [level, n] : actual) levels.insert(level);
  for (const std::string& level : levels) {
    auto e = expected.find(level);
    auto a = actual.find(level);
    const double share =
        e != expected.end() && e->second > 0 ? e->second / expected_total : 0.5 / expected_total;
    const double want = share * actual_total;
    const double got = a != actual.end() ? a->second : 0;
    r.statistic += (got - want) * (got - want) / want;
  }
  r.dof = static_cast<int>(levels.size()) - 1;
  r.p_value = r.dof > 0 ? GammaQ(r.dof / 2.0, r.statistic / 2.0) : 1.0;
  return r;
}

}  // namespace sluice::ml
