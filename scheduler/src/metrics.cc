#include "sluice/metrics.h"

#include <algorithm>
#include <cstdio>

namespace sluice {

namespace {

// {a="x",b="y"}, with the label values escaped as the format asks.
std::string RenderLabels(const MetricLabels& labels) {
  if (labels.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ',';
    out += labels[i].first + "=\"";
    for (char c : labels[i].second) {
      if (c == '\\' || c == '"') {
        out += '\\';
        out += c;
      } else if (c == '\n') {
        out += "\\n";
      } else {
        out += c;
      }
    }
    out += '"';
  }
  return out + "}";
}

std::string Number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// `labels` ("{a="x"}" or "") with one more label appended.
std::string WithLabel(const std::string& labels, const std::string& extra) {
  if (labels.empty()) return "{" + extra + "}";
  return labels.substr(0, labels.size() - 1) + "," + extra + "}";
}

}  // namespace

std::vector<double> Metrics::DurationBuckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
          1,     2.5,    5,     10,   30,    60,   300, 900,  3600};
}

void Metrics::Declare(const std::string& name, const std::string& type, const std::string& help,
                      std::vector<double> buckets) {
  Family& f = families_[name];
  f.type = type;
  f.help = help;
  std::sort(buckets.begin(), buckets.end());
  f.buckets = std::move(buckets);
}

Metrics::Family& Metrics::Get(const std::string& name) {
  Family& f = families_[name];
  if (f.type.empty()) f.type = "untyped";
  return f;
}

void Metrics::Add(const std::string& name, const MetricLabels& labels, double by) {
  Get(name).values[RenderLabels(labels)] += by;
}

void Metrics::Set(const std::string& name, const MetricLabels& labels, double value) {
  Get(name).values[RenderLabels(labels)] = value;
}

void Metrics::Clear(const std::string& name) { Get(name).values.clear(); }

void Metrics::Observe(const std::string& name, const MetricLabels& labels, double value) {
  Family& f = Get(name);
  Histogram& h = f.histograms[RenderLabels(labels)];
  if (h.counts.empty()) h.counts.assign(f.buckets.size(), 0);
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(f.buckets.begin(), f.buckets.end(), value) - f.buckets.begin());
  if (bucket < h.counts.size()) ++h.counts[bucket];
  ++h.count;
  h.sum += value;
}

std::string Metrics::Render() const {
  std::string out;
  for (const auto& [name, f] : families_) {
    out += "# HELP " + name + " " + f.help + "\n";
    out += "# TYPE " + name + " " + f.type + "\n";
    for (const auto& [labels, value] : f.values) out += name + labels + " " + Number(value) + "\n";
    for (const auto& [labels, h] : f.histograms) {
      uint64_t cumulative = 0;
      for (size_t i = 0; i < f.buckets.size(); ++i) {
        cumulative += h.counts[i];
        out += name + "_bucket" + WithLabel(labels, "le=\"" + Number(f.buckets[i]) + "\"") + " " +
               std::to_string(cumulative) + "\n";
      }
      out += name + "_bucket" + WithLabel(labels, "le=\"+Inf\"") + " " + std::to_string(h.count) +
             "\n";
      out += name + "_sum" + labels + " " + Number(h.sum) + "\n";
      out += name + "_count" + labels + " " + std::to_string(h.count) + "\n";
    }
  }
  return out;
}

}  // namespace sluice
