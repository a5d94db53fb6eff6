#include "sluice/dag.h"

#include <date/date.h>

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <cstdio>
#include <functional>
#include <queue>

namespace sluice {
namespace {

constexpr std::array<std::pair<TriggerRule, std::string_view>, 9> kTriggerRules = {{
    {TriggerRule::kAllSuccess, "all_success"},
    {TriggerRule::kAllFailed, "all_failed"},
    {TriggerRule::kAllDone, "all_done"},
    {TriggerRule::kOneSuccess, "one_success"},
    {TriggerRule::kOneFailed, "one_failed"},
    {TriggerRule::kNoneFailed, "none_failed"},
    {TriggerRule::kNoneFailedMinOneSuccess, "none_failed_min_one_success"},
    {TriggerRule::kNoneSkipped, "none_skipped"},
    {TriggerRule::kAlways, "always"},
}};

}  // namespace

std::string_view TriggerRuleName(TriggerRule rule) {
  for (const auto& [r, name] : kTriggerRules) {
    if (r == rule) return name;
  }
  return "?";
}

std::optional<TriggerRule> ParseTriggerRule(std::string_view name) {
  for (const auto& [r, n] : kTriggerRules) {
    if (n == name) return r;
  }
  return std::nullopt;
}

std::vector<std::string> TriggerRuleNames() {
  std::vector<std::string> names;
  names.reserve(kTriggerRules.size());
  for (const auto& entry : kTriggerRules) names.emplace_back(entry.second);
  return names;
}

std::string_view CatchupPolicyName(CatchupPolicy policy) {
  switch (policy) {
    case CatchupPolicy::kAll:
      return "all";
    case CatchupPolicy::kLatest:
      return "latest";
    case CatchupPolicy::kNone:
      return "none";
  }
  return "?";
}

Duration RetryDelay(Duration retry_delay, const RetryBackoff& backoff, int failed_tries,
                    double random01) {
  double delay_ms = static_cast<double>(retry_delay.count());
  if (backoff.exponential && failed_tries > 1) {
    delay_ms *= std::pow(backoff.multiplier, failed_tries - 1);
  }
  if (backoff.exponential) {
    delay_ms = std::min(delay_ms, static_cast<double>(backoff.max_delay.count()));
  }
  delay_ms -= delay_ms * backoff.jitter * std::clamp(random01, 0.0, 1.0);
  return Duration(static_cast<int64_t>(std::max(0.0, delay_ms)));
}

Dag::Dag(DagSpec spec) : spec_(std::move(spec)) {
  const size_t n = spec_.tasks.size();
  index_.reserve(n);
  for (size_t i = 0; i < n; ++i) index_.emplace(spec_.tasks[i].id, static_cast<uint32_t>(i));
  upstream_.resize(n);
  downstream_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    for (const std::string& dep : spec_.tasks[i].depends_on) {
      auto it = index_.find(dep);
      assert(it != index_.end() && "Dag built from an unvalidated spec");
      if (it == index_.end()) continue;
      upstream_[i].push_back(it->second);
    }
    std::sort(upstream_[i].begin(), upstream_[i].end());
    upstream_[i].erase(std::unique(upstream_[i].begin(), upstream_[i].end()), upstream_[i].end());
    for (uint32_t u : upstream_[i]) downstream_[u].push_back(static_cast<uint32_t>(i));
    edge_count_ += upstream_[i].size();
  }

  // Kahn's algorithm with a min-heap on the file index: ties keep file order.
  std::vector<uint32_t> pending(n);
  std::vector<uint32_t> depth(n, 0);
  std::priority_queue<uint32_t, std::vector<uint32_t>, std::greater<>> ready;
  for (size_t i = 0; i < n; ++i) {
    pending[i] = static_cast<uint32_t>(upstream_[i].size());
    if (pending[i] == 0) ready.push(static_cast<uint32_t>(i));
  }
  order_.reserve(n);
  while (!ready.empty()) {
    uint32_t t = ready.top();
    ready.pop();
    order_.push_back(t);
    if (layers_.size() <= depth[t]) layers_.resize(depth[t] + 1);
    layers_[depth[t]].push_back(t);
    for (uint32_t d : downstream_[t]) {
      depth[d] = std::max(depth[d], depth[t] + 1);
      if (--pending[d] == 0) ready.push(d);
    }
  }
  assert(order_.size() == n && "Dag built from a spec with a cycle");
  for (auto& layer : layers_) std::sort(layer.begin(), layer.end());
}

int64_t Dag::IndexOf(std::string_view task_id) const {
  auto it = index_.find(task_id);
  return it == index_.end() ? -1 : static_cast<int64_t>(it->second);
}

std::string FormatTimeUtc(TimePoint t) {
  // By hand: date::format goes through an ostringstream, and run ids and run records are
  // formatted on the scheduler's hot path.
  const auto days = std::chrono::floor<date::days>(t);
  const date::year_month_day ymd(days);
  const date::hh_mm_ss<std::chrono::seconds> hms(t - days);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                static_cast<int>(hms.seconds().count()));
  return buf;
}

std::optional<std::chrono::sys_seconds> ParseTimeUtc(const std::string& text) {
  std::optional<std::chrono::system_clock::time_point> t = ParseTimeUtcPrecise(text);
  if (!t) return std::nullopt;
  return std::chrono::floor<std::chrono::seconds>(*t);
}

std::optional<std::chrono::system_clock::time_point> ParseTimeUtcPrecise(const std::string& text) {
  int y, mo, d, h = 0, mi = 0, sec = 0;
  char rest[32] = "";
  int n = std::sscanf(text.c_str(), "%d-%d-%dT%d:%d:%d%31s", &y, &mo, &d, &h, &mi, &sec, rest);
  if (n < 3) return std::nullopt;
  if (n == 3 && text.size() != 10) return std::nullopt;
  if (n == 4) return std::nullopt;
  if (n == 5) {  // no seconds: what follows the minutes is the zone
    const size_t pos = text.find(':');
    std::snprintf(rest, sizeof rest, "%s", text.substr(pos + 3).c_str());
  }
  const date::year_month_day ymd{date::year(y), date::month(static_cast<unsigned>(mo)),
                                 date::day(static_cast<unsigned>(d))};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 60) return std::nullopt;
  std::string zone = rest;
  std::chrono::microseconds fraction{0};
  if (!zone.empty() && zone[0] == '.') {  // fractional seconds, to the microsecond
    size_t k = 1;
    int64_t scale = 100000;
    while (k < zone.size() && std::isdigit(static_cast<unsigned char>(zone[k]))) {
      fraction += std::chrono::microseconds((zone[k] - '0') * scale);
      scale /= 10;
      ++k;
    }
    zone = zone.substr(k);
  }
  int offset_minutes = 0;
  if (zone == "Z" || zone.empty()) {
    offset_minutes = 0;
  } else if ((zone[0] == '+' || zone[0] == '-') && zone.size() == 6 && zone[3] == ':') {
    offset_minutes = std::stoi(zone.substr(1, 2)) * 60 + std::stoi(zone.substr(4, 2));
    if (zone[0] == '-') offset_minutes = -offset_minutes;
  } else {
    return std::nullopt;
  }
  const std::chrono::sys_seconds whole =
      std::chrono::sys_seconds(date::sys_days(ymd).time_since_epoch()) + std::chrono::hours(h) +
      std::chrono::minutes(mi) + std::chrono::seconds(sec) - std::chrono::minutes(offset_minutes);
  return std::chrono::time_point_cast<std::chrono::system_clock::duration>(whole) + fraction;
}

}  // namespace sluice

namespace sluice {

nlohmann::json DagToJson(const Dag& dag) {
  using nlohmann::json;
  const DagSpec& spec = dag.spec();
  json out;
  out["id"] = spec.id;
  out["description"] = spec.description;
  out["owner"] = spec.owner;
  out["tags"] = spec.tags;
  out["schedule"] = spec.schedule ? json(*spec.schedule) : json();
  out["timezone"] = spec.timezone;
  out["start_date"] = spec.start_date ? json(FormatTimeUtc(*spec.start_date)) : json();
  out["end_date"] = spec.end_date ? json(FormatTimeUtc(*spec.end_date)) : json();
  out["catchup"] = CatchupPolicyName(spec.catchup);
  out["max_active_runs"] = spec.max_active_runs;
  out["dagrun_timeout"] = spec.dagrun_timeout ? json(FormatDuration(*spec.dagrun_timeout)) : json();
  out["params"] = spec.params;
  out["source_path"] = spec.source_path;
  json tasks = json::array();
  for (size_t i = 0; i < dag.size(); ++i) {
    const TaskSpec& t = dag.tasks()[i];
    json task;
    task["id"] = t.id;
    task["plugin"] = t.plugin;
    task["description"] = t.description;
    json deps = json::array();
    for (uint32_t u : dag.upstream(i)) deps.push_back(dag.tasks()[u].id);
    task["depends_on"] = deps;
    task["params"] = t.params;
    json inputs = json::object();
    for (const TaskSpec::Input& in : t.inputs) inputs[in.name] = in.task + "." + in.output;
    task["inputs"] = inputs;
    task["retries"] = t.retries;
    task["retry_delay"] = FormatDuration(t.retry_delay);
    if (t.retry_backoff.exponential) {
      task["retry_backoff"] = {{"multiplier", t.retry_backoff.multiplier},
                               {"max_delay", FormatDuration(t.retry_backoff.max_delay)},
                               {"jitter", t.retry_backoff.jitter}};
    } else {
      task["retry_backoff"] = false;
    }
    task["timeout"] = t.timeout ? json(FormatDuration(*t.timeout)) : json();
    task["timeout_grace"] = t.timeout_grace ? json(FormatDuration(*t.timeout_grace)) : json();
    task["trigger_rule"] = TriggerRuleName(t.trigger_rule);
    task["pool"] = t.pool;
    task["priority"] = t.priority;
    task["cache"] = t.cache;
    json limits = json::object();
    if (t.limits.memory_bytes) limits["memory"] = FormatSize(*t.limits.memory_bytes);
    if (t.limits.cpu_time) limits["cpu_time"] = FormatDuration(*t.limits.cpu_time);
    if (t.limits.open_files) limits["open_files"] = *t.limits.open_files;
    task["limits"] = limits;
    task["when"] = t.when ? json(t.when->text()) : json();
    task["line"] = t.pos.line;
    tasks.push_back(std::move(task));
  }
  out["tasks"] = std::move(tasks);
  json order = json::array();
  for (uint32_t i : dag.topological_order()) order.push_back(dag.tasks()[i].id);
  out["topological_order"] = std::move(order);
  json layers = json::array();
  for (const auto& layer : dag.layers()) {
    json names = json::array();
    for (uint32_t i : layer) names.push_back(dag.tasks()[i].id);
    layers.push_back(std::move(names));
  }
  out["layers"] = std::move(layers);
  return out;
}

}  // namespace sluice
