// Metrics in the Prometheus text exposition format (version 0.0.4): counters and histograms
// kept here, plus gauges the caller computes at scrape time.
//
// Thread safety: not thread-safe; the daemon updates and renders it on its io thread.
#ifndef SLUICE_METRICS_H_
#define SLUICE_METRICS_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace sluice {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
 public:
  // Declares a family once: its type ("counter", "gauge", "histogram") and help text.
  // Histogram buckets are upper bounds in seconds.
  void Declare(const std::string& name, const std::string& type, const std::string& help,
               std::vector<double> buckets = {});
  void Add(const std::string& name, const MetricLabels& labels, double by = 1);
  void Set(const std::string& name, const MetricLabels& labels, double value);
  void Observe(const std::string& name, const MetricLabels& labels, double value);
  // Drops every series of a gauge family (before it is set afresh at scrape time).
  void Clear(const std::string& name);

  std::string Render() const;

  // Seconds: 1 ms to 1 h.
  static std::vector<double> DurationBuckets();

 private:
  struct Histogram {
    std::vector<uint64_t> counts;  // per bucket, not cumulative
    uint64_t count = 0;
    double sum = 0;
  };
  struct Family {
    std::string type;
    std::string help;
    std::vector<double> buckets;
    std::map<std::string, double> values;         // rendered labels -> value
    std::map<std::string, Histogram> histograms;  // rendered labels -> histogram
  };
  Family& Get(const std::string& name);

  std::map<std::string, Family> families_;
};

}  // namespace sluice

#endif  // SLUICE_METRICS_H_
