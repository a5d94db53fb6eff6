#include "sluice/dag_loader.h"

#include <date/date.h>
#include <date/tz.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "sluice/json_limits.h"
#include "sluice/suggest.h"
#include "sluice/template.h"

namespace sluice {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Small helpers over toml++.

SourcePos PosOf(const toml::source_region& region) {
  return {static_cast<uint32_t>(region.begin.line), static_cast<uint32_t>(region.begin.column)};
}
SourcePos PosOf(const toml::node& node) { return PosOf(node.source()); }
SourcePos PosOf(const toml::key& key) { return PosOf(key.source()); }

// Position of byte `offset` inside a single-line string value (after its opening quote).
SourcePos PosInString(const toml::node& node, size_t offset) {
  SourcePos pos = PosOf(node);
  if (pos.known()) pos.column += static_cast<uint32_t>(1 + offset);
  return pos;
}

std::string TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a datetime";
    case toml::node_type::none:
      return "nothing";
  }
  return "a value";
}

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string JoinQuoted(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) out += (i ? ", " : "") + Quote(names[i]);
  return out;
}

bool IsIdentifier(std::string_view s) {
  if (s.empty() || s.size() > 200) return false;
  if (!(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

bool IsPluginName(std::string_view s) {
  if (s.empty() || s.size() > 200 || s.front() == '.' || s.back() == '.') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

std::string FormatTomlTime(const toml::time& t) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%02d:%02d:%02d", t.hour, t.minute, t.second);
  std::string out = buf;
  if (t.nanosecond != 0) {
    std::snprintf(buf, sizeof buf, ".%09u", t.nanosecond);
    out += buf;
  }
  return out;
}

std::string FormatTomlDate(const toml::date& d) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", d.year, d.month, d.day);
  return buf;
}

// The first array or table inside `node` that lies more than `limit` levels deep, or null.
// toml++ itself stops at 256 levels, so this recursion is bounded.
const toml::node* TooDeep(const toml::node& node, size_t limit, size_t depth = 0) {
  if (!node.is_array() && !node.is_table()) return nullptr;
  if (depth >= limit) return &node;
  if (const toml::table* table = node.as_table()) {
    for (const auto& [k, v] : *table) {
      if (const toml::node* deep = TooDeep(v, limit, depth + 1)) return deep;
    }
  } else {
    for (const toml::node& el : *node.as_array()) {
      if (const toml::node* deep = TooDeep(el, limit, depth + 1)) return deep;
    }
  }
  return nullptr;
}

// TOML value -> JSON. Dates and times become ISO 8601 strings.
json ToJson(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return json(*node.value<std::string>());
    case toml::node_type::integer:
      return json(*node.value<int64_t>());
    case toml::node_type::floating_point:
      return json(*node.value<double>());
    case toml::node_type::boolean:
      return json(*node.value<bool>());
    case toml::node_type::date:
      return json(FormatTomlDate(*node.value<toml::date>()));
    case toml::node_type::time:
      return json(FormatTomlTime(*node.value<toml::time>()));
    case toml::node_type::date_time: {
      std::ostringstream out;
      out << *node.value<toml::date_time>();
      return json(out.str());
    }
    case toml::node_type::array: {
      json arr = json::array();
      for (const toml::node& el : *node.as_array()) arr.push_back(ToJson(el));
      return arr;
    }
    case toml::node_type::table: {
      json obj = json::object();
      for (const auto& [k, v] : *node.as_table()) obj[std::string(k.str())] = ToJson(v);
      return obj;
    }
    case toml::node_type::none:
      break;
  }
  return json();
}

// ---------------------------------------------------------------------------------------------
// Keys each table accepts. Kept next to the parser so that the two cannot drift; the docs
// list the same names.

const std::vector<std::string> kRootKeys = {"dag", "defaults", "params", "task"};
const std::vector<std::string> kDagKeys = {
    "id",       "description",     "owner",          "tags",
    "schedule", "timezone",        "start_date",     "end_date",
    "catchup",  "max_active_runs", "dagrun_timeout", "paused"};
// Settings a task may inherit from [defaults].
const std::vector<std::string> kDefaultsKeys = {
    "retries",      "retry_delay", "retry_backoff", "timeout", "timeout_grace",
    "trigger_rule", "pool",        "priority",      "cache",   "limits"};
const std::vector<std::string> kLimitKeys = {"memory", "cpu_time", "open_files"};
const std::vector<std::string> kTaskOnlyKeys = {"id",     "plugin", "description", "depends_on",
                                                "params", "inputs", "when"};
const std::vector<std::string> kBackoffKeys = {"multiplier", "max_delay", "jitter"};

// Common misnamings whose fix is not a near spelling.
std::string KnownAlias(std::string_view key) {
  static const std::unordered_map<std::string_view, std::string_view> kAliases = {
      {"dependencies", "depends_on"},
      {"deps", "depends_on"},
      {"upstream", "depends_on"},
      {"after", "depends_on"},
      {"needs", "depends_on"},
      {"arguments", "params"},
      {"args", "params"},
      {"parameters", "params"},
      {"type", "plugin"},
      {"operator", "plugin"},
      {"uses", "plugin"},
      {"name", "id"},
      {"task_id", "id"},
      {"dag_id", "id"},
      {"condition", "when"},
      {"if", "when"},
      {"execution_timeout", "timeout"},
      {"priority_weight", "priority"},
      {"cron", "schedule"},
      {"schedule_interval", "schedule"},
      {"tz", "timezone"},
      {"max_retries", "retries"},
      {"retry_delay_seconds", "retry_delay"},
  };
  auto it = kAliases.find(key);
  return it == kAliases.end() ? std::string() : std::string(it->second);
}

// ---------------------------------------------------------------------------------------------

// Settings from [defaults] or a task, each remembered only if written.
struct TaskSettings {
  std::optional<int> retries;
  std::optional<Duration> retry_delay;
  std::optional<RetryBackoff> retry_backoff;
  std::optional<Duration> timeout;
  std::optional<Duration> timeout_grace;
  std::optional<TriggerRule> trigger_rule;
  std::optional<std::string> pool;
  std::optional<int> priority;
  std::optional<bool> cache;
  ResourceLimits limits;  // each limit set only if written
};

class Loader {
 public:
  Loader(std::string path, Diagnostics* diags) : path_(std::move(path)), diags_(diags) {}

  std::unique_ptr<const Dag> Load(const toml::table& root);

 private:
  void Error(SourcePos pos, std::string message, std::string hint = {}) {
    diags_->Error(path_, pos, std::move(message), std::move(hint));
  }
  void Warning(SourcePos pos, std::string message, std::string hint = {}) {
    diags_->Warning(path_, pos, std::move(message), std::move(hint));
  }

  void CheckKeys(const toml::table& table, const std::vector<std::string>& allowed,
                 std::string_view where, const std::vector<std::string>& also_allowed = {});

  // Typed getters: return nullopt when absent or of the wrong type (and report the latter).
  std::optional<std::string> GetString(const toml::table& t, std::string_view key,
                                       std::string_view where);
  std::optional<int64_t> GetInt(const toml::table& t, std::string_view key, std::string_view where,
                                int64_t min, int64_t max);
  std::optional<bool> GetBool(const toml::table& t, std::string_view key, std::string_view where);
  std::optional<Duration> GetDuration(const toml::table& t, std::string_view key,
                                      std::string_view where, bool allow_zero);
  std::optional<std::vector<std::string>> GetStringArray(const toml::table& t, std::string_view key,
                                                         std::string_view where);
  std::optional<TimePoint> GetTime(const toml::table& t, std::string_view key,
                                   std::string_view where, const std::string& timezone);
  std::optional<RetryBackoff> GetBackoff(const toml::table& t, std::string_view where);
  ResourceLimits GetLimits(const toml::table& t, std::string_view where);

  void WrongType(const toml::node& node, std::string_view key, std::string_view where,
                 std::string_view expected, std::string hint = {}) {
    Error(PosOf(node),
          std::string(where) + ": " + Quote(key) + " must be " + std::string(expected) + ", not " +
              TypeName(node),
          std::move(hint));
  }

  void ParseDagTable(const toml::table& root, DagSpec* spec);
  TaskSettings ParseSettings(const toml::table& t, std::string_view where);
  void ParseTask(const toml::table& t, size_t index, const TaskSettings& defaults, TaskSpec* task);

  // Checks every string inside `node` (recursively) as a template.
  void CheckTemplates(const toml::node& node, std::string_view where);

  // Graph checks over the parsed tasks.
  void CheckDependencies(std::vector<TaskSpec>* tasks);
  bool CheckCycles(const std::vector<TaskSpec>& tasks);
  void CheckUpstreamReferences(const std::vector<TaskSpec>& tasks);
  bool IsAncestor(size_t task, size_t candidate);

  std::string path_;
  Diagnostics* diags_;
  json params_ = json::object();
  std::string timezone_ = "UTC";

  // Per-task data the graph checks need; indices match DagSpec::tasks.
  struct TaskSource {
    const toml::table* table = nullptr;
    std::vector<SourcePos> dep_pos;  // position of each depends_on entry
    // Per depends_on entry: the input that implies it, or "" for a written one.
    std::vector<std::string> dep_input;
    std::vector<std::pair<const toml::node*, std::string>> input_refs;  // value node, name
    const toml::node* when_node = nullptr;
  };
  std::vector<TaskSource> sources_;
  std::unordered_map<std::string, size_t> index_;
  std::vector<std::vector<size_t>> upstream_;  // known, deduplicated
};

void Loader::CheckKeys(const toml::table& table, const std::vector<std::string>& allowed,
                       std::string_view where, const std::vector<std::string>& also_allowed) {
  for (const auto& [key, node] : table) {
    std::string name(key.str());
    if (std::find(allowed.begin(), allowed.end(), name) != allowed.end()) continue;
    if (std::find(also_allowed.begin(), also_allowed.end(), name) != also_allowed.end()) continue;
    std::vector<std::string> candidates = allowed;
    candidates.insert(candidates.end(), also_allowed.begin(), also_allowed.end());
    std::string hint;
    if (std::string alias = KnownAlias(name);
        !alias.empty() &&
        std::find(candidates.begin(), candidates.end(), alias) != candidates.end()) {
      hint = "did you mean " + Quote(alias) + "?";
    } else {
      hint = DidYouMean(name, candidates);
    }
    if (hint.empty()) hint = "allowed keys: " + JoinQuoted(candidates);
    Error(PosOf(key), "unknown key " + Quote(name) + " in " + std::string(where), hint);
  }
}

std::optional<std::string> Loader::GetString(const toml::table& t, std::string_view key,
                                             std::string_view where) {
  const toml::node* node = t.get(key);
  if (node == nullptr) return std::nullopt;
  if (!node->is_string()) {
    WrongType(*node, key, where, "a string", "put the value in quotes");
    return std::nullopt;
  }
  return *node->value<std::string>();
}

std::optional<int64_t> Loader::GetInt(const toml::table& t, std::string_view key,
                                      std::string_view where, int64_t min, int64_t max) {
  const toml::node* node = t.get(key);
  if (node == nullptr) return std::nullopt;
  if (!node->is_integer()) {
    std::string hint;
    if (node->is_string()) hint = "remove the quotes";
    if (node->is_floating_point()) hint = "write a whole number";
    WrongType(*node, key, where, "an integer", hint);
    return std::nullopt;
  }
  int64_t v = *node->value<int64_t>();
  if (v < min || v > max) {
    Error(PosOf(*node),
          std::string(where) + ": " + Quote(key) + " is " + std::to_string(v) +
              ", outside the allowed range",
          "use a value from " + std::to_string(min) + " to " + std::to_string(max));
    return std::nullopt;
  }
  return v;
}

std::optional<bool> Loader::GetBool(const toml::table& t, std::string_view key,
                                    std::string_view where) {
  const toml::node* node = t.get(key);
  if (node == nullptr) return std::nullopt;
  if (!node->is_boolean()) {
    WrongType(*node, key, where, "true or false",
              node->is_string() ? "remove the quotes" : std::string());
    return std::nullopt;
  }
  return *node->value<bool>();
}

std::optional<Duration> Loader::GetDuration(const toml::table& t, std::string_view key,
                                            std::string_view where, bool allow_zero) {
  const toml::node* node = t.get(key);
  if (node == nullptr) return std::nullopt;
  if (!node->is_string()) {
    std::string hint = "write a duration string such as \"30s\", \"5m\" or \"1h30m\"";
    if (node->is_integer()) {
      hint = "write the unit too, e.g. \"" + std::to_string(*node->value<int64_t>()) + "s\"";
    }
    WrongType(*node, key, where, "a duration string", hint);
    return std::nullopt;
  }
  std::string text = *node->value<std::string>();
  StatusOr<Duration> d = ParseDuration(text);
  if (!d.ok()) {
    Error(PosOf(*node), std::string(where) + ": " + Quote(key) + ": " + d.status().message(),
          std::string(kDurationHint));
    return std::nullopt;
  }
  if (!allow_zero && d->count() == 0) {
    Error(PosOf(*node), std::string(where) + ": " + Quote(key) + " must be longer than zero",
          "leave it out for no limit");
    return std::nullopt;
  }
  return *d;
}

std::optional<std::vector<std::string>> Loader::GetStringArray(const toml::table& t,
                                                               std::string_view key,
                                                               std::string_view where) {
  const toml::node* node = t.get(key);
  if (node == nullptr) return std::nullopt;
  if (!node->is_array()) {
    std::string hint;
    if (node->is_string())
      hint =
          "write a list: " + std::string(key) + " = [" + Quote(*node->value<std::string>()) + "]";
    WrongType(*node, key, where, "an array of strings", hint);
    return std::nullopt;
  }
  std::vector<std::string> out;
  bool ok = true;
  for (const toml::node& el : *node->as_array()) {
    if (!el.is_string()) {
      Error(PosOf(el),
            std::string(where) + ": every entry of " + Quote(key) + " must be a string, not " +
                TypeName(el),
            "put it in quotes");
      ok = false;
      continue;
    }
    out.push_back(*el.value<std::string>());
  }
  if (!ok) return std::nullopt;
  return out;
}

std::optional<TimePoint> Loader::GetTime(const toml::table& t, std::string_view key,
                                         std::string_view where, const std::string& timezone) {
  const toml::node* node = t.get(key);
  if (node == nullptr) return std::nullopt;
  date::local_seconds local;
  std::optional<int> offset_minutes;
  if (node->is_date()) {
    toml::date d = *node->value<toml::date>();
    local = date::local_days(date::year(d.year) / d.month / d.day);
  } else if (node->is_date_time()) {
    toml::date_time dt = *node->value<toml::date_time>();
    local = date::local_days(date::year(dt.date.year) / dt.date.month / dt.date.day) +
            std::chrono::hours(dt.time.hour) + std::chrono::minutes(dt.time.minute) +
            std::chrono::seconds(dt.time.second);
    if (dt.offset) offset_minutes = dt.offset->minutes;
  } else {
    std::string hint = "write a TOML datetime without quotes, e.g. " + std::string(key) +
                       " = 2026-01-01T00:00:00Z";
    WrongType(*node, key, where, "a date or datetime", hint);
    return std::nullopt;
  }
  if (offset_minutes) {
    return TimePoint(local.time_since_epoch() - std::chrono::minutes(*offset_minutes));
  }
  if (timezone == "UTC") return TimePoint(local.time_since_epoch());
  try {
    const date::time_zone* zone = date::locate_zone(timezone);
    // A local time that does not exist (DST gap) or exists twice resolves to the earlier
    // instant; write an offset to pick the other one.
    return date::floor<std::chrono::seconds>(zone->to_sys(local, date::choose::earliest));
  } catch (const std::exception&) {
    return std::nullopt;  // the timezone itself is reported where it is parsed
  }
}

std::optional<RetryBackoff> Loader::GetBackoff(const toml::table& t, std::string_view where) {
  const toml::node* node = t.get("retry_backoff");
  if (node == nullptr) return std::nullopt;
  RetryBackoff backoff;
  if (node->is_boolean()) {
    backoff.exponential = *node->value<bool>();
    if (backoff.exponential) backoff.jitter = 0.1;
    return backoff;
  }
  if (!node->is_table()) {
    WrongType(*node, "retry_backoff", where, "true, false or a table",
              "write retry_backoff = true, or { multiplier = 2.0, max_delay = \"1h\", "
              "jitter = 0.1 }");
    return std::nullopt;
  }
  const toml::table& table = *node->as_table();
  std::string inner = std::string(where) + " retry_backoff";
  CheckKeys(table, kBackoffKeys, inner);
  backoff.exponential = true;
  backoff.jitter = 0.1;
  bool ok = true;
  if (const toml::node* m = table.get("multiplier")) {
    if (!m->is_number()) {
      WrongType(*m, "multiplier", inner, "a number");
      ok = false;
    } else {
      double v = m->is_integer() ? static_cast<double>(*m->value<int64_t>()) : *m->value<double>();
      if (!(v >= 1.0 && v <= 100.0)) {
        Error(PosOf(*m), inner + ": \"multiplier\" must be from 1 to 100",
              "2 doubles the delay after each failed try");
        ok = false;
      } else {
        backoff.multiplier = v;
      }
    }
  }
  if (const toml::node* j = table.get("jitter")) {
    if (!j->is_number()) {
      WrongType(*j, "jitter", inner, "a number");
      ok = false;
    } else {
      double v = j->is_integer() ? static_cast<double>(*j->value<int64_t>()) : *j->value<double>();
      if (!(v >= 0.0 && v <= 1.0)) {
        Error(PosOf(*j), inner + ": \"jitter\" must be from 0 to 1",
              "it is the largest fraction of the delay cut at random; 0.1 is typical");
        ok = false;
      } else {
        backoff.jitter = v;
      }
    }
  }
  if (auto d = GetDuration(table, "max_delay", inner, false))
    backoff.max_delay = *d;
  else if (table.contains("max_delay"))
    ok = false;
  if (!ok) return std::nullopt;
  return backoff;
}

ResourceLimits Loader::GetLimits(const toml::table& t, std::string_view where) {
  ResourceLimits limits;
  const toml::node* node = t.get("limits");
  if (node == nullptr) return limits;
  if (!node->is_table()) {
    WrongType(*node, "limits", where, "a table",
              "write limits = { memory = \"2GiB\", cpu_time = \"10m\", open_files = 1024 }");
    return limits;
  }
  const toml::table& table = *node->as_table();
  const std::string inner = std::string(where) + " limits";
  CheckKeys(table, kLimitKeys, inner);
  if (const toml::node* memory = table.get("memory")) {
    if (!memory->is_string()) {
      WrongType(*memory, "memory", inner, "a size string", "e.g. memory = \"2GiB\"");
    } else {
      StatusOr<uint64_t> bytes = ParseSize(*memory->value<std::string>());
      if (!bytes.ok()) {
        Error(PosOf(*memory), inner + ": " + bytes.status().message());
      } else if (*bytes < (64ull << 20)) {
        Error(PosOf(*memory), inner + ": \"memory\" is below 64MiB",
              "the limit covers the whole worker process, which needs tens of MiB itself");
      } else {
        limits.memory_bytes = *bytes;
      }
    }
  }
  limits.cpu_time = GetDuration(table, "cpu_time", inner, false);
  if (auto files = GetInt(table, "open_files", inner, 16, 1 << 20)) limits.open_files = *files;
  return limits;
}

TaskSettings Loader::ParseSettings(const toml::table& t, std::string_view where) {
  TaskSettings s;
  if (auto v = GetInt(t, "retries", where, 0, 1000)) s.retries = static_cast<int>(*v);
  s.retry_delay = GetDuration(t, "retry_delay", where, true);
  s.retry_backoff = GetBackoff(t, where);
  s.timeout = GetDuration(t, "timeout", where, false);
  s.timeout_grace = GetDuration(t, "timeout_grace", where, true);
  if (auto rule = GetString(t, "trigger_rule", where)) {
    if (auto parsed = ParseTriggerRule(*rule)) {
      s.trigger_rule = *parsed;
    } else {
      std::string hint = DidYouMean(*rule, TriggerRuleNames());
      if (hint.empty()) hint = "use one of " + JoinQuoted(TriggerRuleNames());
      Error(PosOf(*t.get("trigger_rule")),
            std::string(where) + ": unknown trigger_rule " + Quote(*rule), hint);
    }
  }
  if (auto pool = GetString(t, "pool", where)) {
    if (!IsIdentifier(*pool)) {
      Error(PosOf(*t.get("pool")),
            std::string(where) + ": pool name " + Quote(*pool) + " is not valid",
            "use letters, digits, '_' and '-', starting with a letter");
    } else {
      s.pool = *pool;
    }
  }
  if (auto v = GetInt(t, "priority", where, -1'000'000, 1'000'000)) {
    s.priority = static_cast<int>(*v);
  }
  s.cache = GetBool(t, "cache", where);
  s.limits = GetLimits(t, where);
  return s;
}

void Loader::ParseDagTable(const toml::table& root, DagSpec* spec) {
  const toml::node* dag_node = root.get("dag");
  if (dag_node == nullptr) {
    Error({1, 1}, "missing [dag] table",
          "start the file with [dag] and an id, e.g.\n    [dag]\n    id = \"my_pipeline\"");
    return;
  }
  if (!dag_node->is_table()) {
    WrongType(*dag_node, "dag", "file", "a table", "write a [dag] section header");
    return;
  }
  const toml::table& dag = *dag_node->as_table();
  const std::string where = "[dag]";
  std::vector<std::string> misplaced;
  for (const auto& [key, node] : dag) {
    if (key.str() == "params" || key.str() == "task" || key.str() == "defaults") {
      Error(PosOf(key), "[dag] cannot hold " + Quote(key.str()),
            "write it as its own top-level [" + std::string(key.str()) + "] table");
      misplaced.emplace_back(key.str());
    }
  }
  CheckKeys(dag, kDagKeys, where, misplaced);

  if (auto id = GetString(dag, "id", where)) {
    if (!IsIdentifier(*id)) {
      Error(PosOf(*dag.get("id")), "DAG id " + Quote(*id) + " is not valid",
            "use letters, digits, '_' and '-', starting with a letter (at most 200)");
    }
    spec->id = *id;
    spec->id_pos = PosOf(*dag.get("id"));
  } else if (!dag.contains("id")) {
    Error(PosOf(*dag_node), "[dag] has no id",
          "add id = \"...\"; it names the DAG in the CLI, the API and the state store");
  }
  if (auto s = GetString(dag, "description", where)) spec->description = *s;
  if (auto s = GetString(dag, "owner", where)) spec->owner = *s;
  if (auto tags = GetStringArray(dag, "tags", where)) spec->tags = *tags;
  if (auto tz = GetString(dag, "timezone", where)) {
    try {
      date::locate_zone(*tz);
      spec->timezone = *tz;
      timezone_ = *tz;
    } catch (const std::exception&) {
      std::vector<std::string> zones;
      for (const auto& zone : date::get_tzdb().zones) zones.emplace_back(zone.name());
      std::string hint = DidYouMean(*tz, zones);
      if (hint.empty()) hint = "use an IANA time zone name such as \"UTC\" or \"Europe/Berlin\"";
      Error(PosOf(*dag.get("timezone")), "unknown timezone " + Quote(*tz), hint);
      timezone_ = "UTC";
    }
  }
  if (auto sched = GetString(dag, "schedule", where)) {
    spec->schedule_pos = PosOf(*dag.get("schedule"));
    if (sched->find_first_not_of(" \t") == std::string::npos) {
      Error(spec->schedule_pos, "[dag]: \"schedule\" is empty",
            "write a cron expression such as \"0 3 * * *\" or \"@daily\", or leave it out for "
            "a DAG that only runs when triggered");
    } else {
      CronError error;
      std::optional<CronSchedule> cron = CronSchedule::Parse(*sched, &error);
      if (!cron) {
        Error(PosInString(*dag.get("schedule"), error.offset), "[dag]: schedule: " + error.message,
              error.hint);
      } else {
        spec->schedule = *sched;
        spec->cron = std::make_shared<const CronSchedule>(std::move(*cron));
      }
    }
  }
  spec->start_date = GetTime(dag, "start_date", where, timezone_);
  spec->end_date = GetTime(dag, "end_date", where, timezone_);
  if (spec->start_date && spec->end_date && *spec->end_date < *spec->start_date) {
    Error(PosOf(*dag.get("end_date")),
          "[dag]: end_date " + FormatTimeUtc(*spec->end_date) + " is before start_date " +
              FormatTimeUtc(*spec->start_date),
          "swap them, or remove end_date");
  }
  if (spec->schedule && !dag.contains("start_date")) {
    Error(spec->schedule_pos, "DAG " + Quote(spec->id) + " has a schedule but no start_date",
          "add start_date = 2026-01-01T00:00:00Z (the first interval starts there)");
  }
  if (const toml::node* catchup = dag.get("catchup")) {
    if (catchup->is_boolean()) {
      spec->catchup = *catchup->value<bool>() ? CatchupPolicy::kAll : CatchupPolicy::kLatest;
    } else if (catchup->is_string()) {
      std::string v = *catchup->value<std::string>();
      if (v == "all")
        spec->catchup = CatchupPolicy::kAll;
      else if (v == "latest")
        spec->catchup = CatchupPolicy::kLatest;
      else if (v == "none")
        spec->catchup = CatchupPolicy::kNone;
      else {
        std::string hint = DidYouMean(v, {"all", "latest", "none"});
        if (hint.empty()) hint = "use \"all\", \"latest\" or \"none\" (or true / false)";
        Error(PosOf(*catchup), "[dag]: unknown catchup policy " + Quote(v), hint);
      }
    } else {
      WrongType(*catchup, "catchup", where, "true, false, \"all\", \"latest\" or \"none\"");
    }
  }
  if (auto v = GetInt(dag, "max_active_runs", where, 1, 10'000)) {
    spec->max_active_runs = static_cast<int>(*v);
  }
  spec->dagrun_timeout = GetDuration(dag, "dagrun_timeout", where, false);
  if (auto v = GetBool(dag, "paused", where)) spec->paused = *v;
}

void Loader::CheckTemplates(const toml::node& node, std::string_view where) {
  if (const toml::table* table = node.as_table()) {
    for (const auto& [k, v] : *table) CheckTemplates(v, where);
    return;
  }
  if (const toml::array* array = node.as_array()) {
    for (const toml::node& el : *array) CheckTemplates(el, where);
    return;
  }
  if (!node.is_string()) return;
  const std::string& text = node.as_string()->get();
  if (text.find("{{") == std::string::npos && text.find("}}") == std::string::npos) return;
  TemplateError error;
  std::optional<Template> parsed = Template::Parse(text, &error);
  if (!parsed) {
    Error(PosInString(node, error.offset), std::string(where) + ": " + error.message, error.hint);
    return;
  }
  for (const Template::Placeholder& p : parsed->placeholders()) {
    if (auto problem = CheckTemplateVariable(p, params_)) {
      Error(PosInString(node, problem->offset), std::string(where) + ": " + problem->message,
            problem->hint);
    }
  }
}

void Loader::ParseTask(const toml::table& t, size_t index, const TaskSettings& defaults,
                       TaskSpec* task) {
  task->pos = PosOf(t);
  std::string where = "task #" + std::to_string(index + 1);
  if (auto id = GetString(t, "id", where)) {
    task->id = *id;
    if (!IsIdentifier(*id)) {
      Error(PosOf(*t.get("id")), "task id " + Quote(*id) + " is not valid",
            "use letters, digits, '_' and '-', starting with a letter (at most 200)");
    }
    where = "task " + Quote(*id);
  } else if (!t.contains("id")) {
    Error(task->pos, where + " has no id", "add id = \"...\", unique within the DAG");
  }
  std::vector<std::string> allowed = kTaskOnlyKeys;
  allowed.insert(allowed.end(), kDefaultsKeys.begin(), kDefaultsKeys.end());
  CheckKeys(t, allowed, where);

  if (auto plugin = GetString(t, "plugin", where)) {
    task->plugin = *plugin;
    task->plugin_pos = PosOf(*t.get("plugin"));
    if (!IsPluginName(*plugin)) {
      Error(PosOf(*t.get("plugin")), where + ": plugin name " + Quote(*plugin) + " is not valid",
            "plugin names look like \"core.shell\" or \"train.xgboost\"");
    }
  } else if (!t.contains("plugin")) {
    Error(task->pos, where + " has no plugin",
          "add plugin = \"...\", e.g. plugin = \"core.shell\"; `sluice plugins list` shows "
          "what is installed");
  }
  if (auto s = GetString(t, "description", where)) task->description = *s;

  TaskSource& source = sources_[index];
  source.table = &t;
  if (const toml::node* deps = t.get("depends_on")) {
    if (auto names = GetStringArray(t, "depends_on", where)) {
      task->depends_on = *names;
      for (const toml::node& el : *deps->as_array()) source.dep_pos.push_back(PosOf(el));
    }
  }

  if (const toml::node* params = t.get("params")) {
    if (!params->is_table()) {
      WrongType(*params, "params", where, "a table",
                "write params = { key = value } or a [task.params] section");
    } else if (const toml::node* deep = TooDeep(*params, kMaxJsonDepth)) {
      Error(PosOf(*deep),
            where + " params nest arrays and tables more than " + std::to_string(kMaxJsonDepth) +
                " levels deep",
            "flatten the value; params reach steps as JSON, which is limited to " +
                std::to_string(kMaxJsonDepth) + " levels");
    } else {
      task->params = ToJson(*params);
      for (const auto& [k, v] : *params->as_table()) {
        task->param_pos.emplace(std::string(k.str()), PosOf(k));
        task->param_value_pos.emplace(std::string(k.str()), PosOf(v));
      }
      CheckTemplates(*params, where + " params");
    }
  }

  if (const toml::node* inputs = t.get("inputs")) {
    if (!inputs->is_table()) {
      WrongType(*inputs, "inputs", where, "a table", "write inputs = { name = \"task.output\" }");
    } else {
      for (const auto& [k, v] : *inputs->as_table()) {
        std::string name(k.str());
        if (!IsIdentifier(name)) {
          Error(PosOf(k), where + ": input name " + Quote(name) + " is not valid",
                "use letters, digits, '_' and '-', starting with a letter");
          continue;
        }
        if (!v.is_string()) {
          WrongType(v, name, where + " inputs", "a string \"task.output\"");
          continue;
        }
        std::string ref = *v.value<std::string>();
        size_t dot = ref.find('.');
        if (dot == std::string::npos || dot == 0 || dot + 1 == ref.size() ||
            ref.find('.', dot + 1) != std::string::npos) {
          Error(PosOf(v),
                where + ": input " + Quote(name) + " = " + Quote(ref) +
                    " is not a reference to an upstream output",
                "write \"TASK.OUTPUT\", e.g. \"prepare.train\"");
          continue;
        }
        task->inputs.push_back(
            {name, ref.substr(0, dot), ref.substr(dot + 1), PosInString(v, dot + 1)});
        source.input_refs.emplace_back(&v, name);
      }
    }
  }

  if (const toml::node* when = t.get("when")) {
    if (!when->is_string()) {
      WrongType(*when, "when", where, "a string holding a condition",
                "e.g. when = \"evaluate.auc >= 0.9\"");
    } else {
      ExpressionError error;
      std::string text = *when->value<std::string>();
      std::unique_ptr<Expression> expr = Expression::Parse(text, &error);
      if (!expr) {
        Error(PosInString(*when, error.offset), where + ": bad `when` condition: " + error.message,
              "conditions look like \"prepare.rows > 1000 and not check.skip\"");
      } else {
        for (const Expression::Reference& ref : expr->references()) {
          task->when_ref_pos.push_back(PosInString(*when, ref.offset));
        }
        task->when = std::move(expr);
        source.when_node = when;
      }
    }
  }

  TaskSettings own = ParseSettings(t, where);
  task->retries = own.retries.value_or(defaults.retries.value_or(0));
  task->retry_delay =
      own.retry_delay.value_or(defaults.retry_delay.value_or(std::chrono::seconds(30)));
  task->retry_backoff = own.retry_backoff.value_or(defaults.retry_backoff.value_or(RetryBackoff{}));
  task->timeout = own.timeout ? own.timeout : defaults.timeout;
  task->timeout_grace = own.timeout_grace ? own.timeout_grace : defaults.timeout_grace;
  task->trigger_rule =
      own.trigger_rule.value_or(defaults.trigger_rule.value_or(TriggerRule::kAllSuccess));
  task->pool = own.pool.value_or(defaults.pool.value_or("default"));
  task->priority = own.priority.value_or(defaults.priority.value_or(1));
  task->cache = own.cache.value_or(defaults.cache.value_or(false));
  task->limits.memory_bytes =
      own.limits.memory_bytes ? own.limits.memory_bytes : defaults.limits.memory_bytes;
  task->limits.cpu_time = own.limits.cpu_time ? own.limits.cpu_time : defaults.limits.cpu_time;
  task->limits.open_files =
      own.limits.open_files ? own.limits.open_files : defaults.limits.open_files;
}

void Loader::CheckDependencies(std::vector<TaskSpec>* tasks) {
  std::vector<std::string> ids;
  ids.reserve(tasks->size());
  for (size_t i = 0; i < tasks->size(); ++i) {
    const TaskSpec& task = (*tasks)[i];
    if (task.id.empty()) continue;
    auto [it, inserted] = index_.emplace(task.id, i);
    if (!inserted) {
      const TaskSpec& first = (*tasks)[it->second];
      Error(PosOf(*sources_[i].table->get("id")), "duplicate task id " + Quote(task.id),
            "the first task with this id is at line " + std::to_string(first.pos.line) +
                "; task ids must be unique within a DAG");
      continue;
    }
    ids.push_back(task.id);
  }
  upstream_.assign(tasks->size(), {});
  for (size_t i = 0; i < tasks->size(); ++i) {
    const TaskSpec& task = (*tasks)[i];
    std::set<std::string> seen;
    for (size_t d = 0; d < task.depends_on.size(); ++d) {
      const std::string& dep = task.depends_on[d];
      SourcePos pos = d < sources_[i].dep_pos.size() ? sources_[i].dep_pos[d] : task.pos;
      if (!seen.insert(dep).second) {
        Warning(pos, "task " + Quote(task.id) + " lists " + Quote(dep) + " twice in depends_on",
                "remove the repeated entry");
        continue;
      }
      if (dep == task.id) {
        Error(pos, "task " + Quote(task.id) + " depends on itself",
              "remove " + Quote(dep) + " from its depends_on");
        continue;
      }
      auto it = index_.find(dep);
      if (it == index_.end()) {
        std::string hint = DidYouMean(dep, ids);
        if (hint.empty())
          hint = "depends_on names task ids of this DAG; known: " +
                 (ids.size() <= 12 ? JoinQuoted(ids) : std::string("see the file"));
        Error(pos, "task " + Quote(task.id) + " depends on unknown task " + Quote(dep), hint);
        continue;
      }
      upstream_[i].push_back(it->second);
    }
    // Reading another task's output depends on it: the edge need not be written twice.
    TaskSource& source = sources_[i];
    source.dep_pos.resize(task.depends_on.size(), task.pos);
    source.dep_input.resize(task.depends_on.size());
    for (size_t k = 0; k < task.inputs.size(); ++k) {
      const TaskSpec::Input& input = task.inputs[k];
      auto it = index_.find(input.task);
      if (it == index_.end() || it->second == i || seen.count(input.task)) continue;
      seen.insert(input.task);
      (*tasks)[i].depends_on.push_back(input.task);
      source.dep_pos.push_back(k < source.input_refs.size() ? PosOf(*source.input_refs[k].first)
                                                            : task.pos);
      source.dep_input.push_back(input.name);
      upstream_[i].push_back(it->second);
    }
  }
}

bool Loader::CheckCycles(const std::vector<TaskSpec>& tasks) {
  const size_t n = tasks.size();
  std::vector<std::vector<size_t>> downstream(n);
  std::vector<size_t> pending(n);
  for (size_t i = 0; i < n; ++i) {
    pending[i] = upstream_[i].size();
    for (size_t u : upstream_[i]) downstream[u].push_back(i);
  }
  std::vector<size_t> queue;
  for (size_t i = 0; i < n; ++i) {
    if (pending[i] == 0) queue.push_back(i);
  }
  for (size_t head = 0; head < queue.size(); ++head) {
    for (size_t d : downstream[queue[head]]) {
      if (--pending[d] == 0) queue.push_back(d);
    }
  }
  if (queue.size() == n) return true;

  // The tasks left all sit on or behind a cycle. Walk upstream from one of them through
  // remaining tasks until a task repeats; that loop is a cycle. Report it, take its tasks
  // out, and look again, so that separate cycles are each reported once.
  std::vector<char> remaining(n, 0);
  for (size_t i = 0; i < n; ++i) remaining[i] = pending[i] > 0 ? 1 : 0;
  for (size_t start = 0; start < n; ++start) {
    if (!remaining[start]) continue;
    std::vector<size_t> path;
    std::unordered_map<size_t, size_t> at;
    size_t cur = start;
    bool dead_end = false;
    while (!at.count(cur)) {
      at[cur] = path.size();
      path.push_back(cur);
      auto next = std::find_if(upstream_[cur].begin(), upstream_[cur].end(),
                               [&](size_t u) { return remaining[u] != 0; });
      if (next == upstream_[cur].end()) {
        dead_end = true;
        break;
      }
      cur = *next;
    }
    if (dead_end) {
      remaining[start] = 0;
      continue;
    }
    // path[at[cur]..] is the cycle, walking upstream; print it in flow direction.
    std::vector<size_t> cycle(path.begin() + static_cast<ptrdiff_t>(at[cur]), path.end());
    std::reverse(cycle.begin(), cycle.end());
    std::string text;
    for (size_t t : cycle) text += tasks[t].id + " -> ";
    text += tasks[cycle.front()].id;
    // Point at the dependency entry that closes the loop: the first task's depends_on entry
    // naming the last task.
    size_t first = cycle.front();
    size_t last = cycle.back();
    SourcePos pos = tasks[first].pos;
    std::string example =
        Quote(tasks[last].id) + " from the depends_on of " + Quote(tasks[first].id);
    for (size_t d = 0; d < tasks[first].depends_on.size(); ++d) {
      if (tasks[first].depends_on[d] == tasks[last].id && d < sources_[first].dep_pos.size()) {
        pos = sources_[first].dep_pos[d];
        if (d < sources_[first].dep_input.size() && !sources_[first].dep_input[d].empty()) {
          example = "input " + Quote(sources_[first].dep_input[d]) + " of " +
                    Quote(tasks[first].id) + ", which reads from " + Quote(tasks[last].id);
        }
      }
    }
    Error(pos, "dependency cycle: " + text,
          "a DAG cannot loop; remove one of these dependencies (e.g. " + example + ")");
    for (size_t t : cycle) remaining[t] = 0;
  }
  return false;
}

bool Loader::IsAncestor(size_t task, size_t candidate) {
  for (size_t u : upstream_[task]) {
    if (u == candidate) return true;
  }
  std::vector<char> seen(upstream_.size(), 0);
  std::vector<size_t> stack(upstream_[task].begin(), upstream_[task].end());
  while (!stack.empty()) {
    size_t t = stack.back();
    stack.pop_back();
    if (t == candidate) return true;
    if (seen[t]) continue;
    seen[t] = 1;
    stack.insert(stack.end(), upstream_[t].begin(), upstream_[t].end());
  }
  return false;
}

void Loader::CheckUpstreamReferences(const std::vector<TaskSpec>& tasks) {
  std::vector<std::string> ids;
  for (const auto& [id, i] : index_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());

  // Reports a read of `from`'s outputs by task `i`; returns false when it is not allowed.
  auto check_source = [&](size_t i, const std::string& from, SourcePos pos,
                          const std::string& what) {
    const TaskSpec& task = tasks[i];
    auto it = index_.find(from);
    if (it == index_.end()) {
      std::string hint = DidYouMean(from, ids);
      if (hint.empty()) hint = "name a task of this DAG that " + Quote(task.id) + " depends on";
      Error(pos, what + " reads from unknown task " + Quote(from), hint);
      return;
    }
    if (it->second == i) {
      Error(pos, what + " reads task " + Quote(from) + "'s own outputs",
            "a task can only read outputs of tasks upstream of it");
      return;
    }
    if (!IsAncestor(i, it->second)) {
      Error(pos,
            what + " reads from " + Quote(from) + ", which is not upstream of " + Quote(task.id),
            "add " + Quote(from) + " to the depends_on of " + Quote(task.id));
    }
  };

  for (size_t i = 0; i < tasks.size(); ++i) {
    const TaskSpec& task = tasks[i];
    const TaskSource& source = sources_[i];
    for (size_t k = 0; k < task.inputs.size(); ++k) {
      const TaskSpec::Input& input = task.inputs[k];
      check_source(i, input.task, PosOf(*source.input_refs[k].first),
                   "task " + Quote(task.id) + " input " + Quote(input.name));
    }
    if (task.when && source.when_node != nullptr) {
      for (const Expression::Reference& ref : task.when->references()) {
        SourcePos pos = PosInString(*source.when_node, ref.offset);
        const std::string what = "task " + Quote(task.id) + " `when`";
        if (ref.path[0] == "params") {
          if (ref.path.size() < 2 || !params_.contains(ref.path[1])) {
            std::vector<std::string> names;
            for (const auto& item : params_.items()) names.push_back(item.key());
            std::string name = ref.path.size() < 2 ? std::string() : ref.path[1];
            std::string hint = DidYouMean(name, names);
            if (hint.empty()) hint = "declare it under [params]";
            Error(pos, what + " reads unknown parameter " + Quote(name), hint);
          }
          continue;
        }
        if (ref.path.size() < 2) {
          Error(pos, what + " names " + Quote(ref.path[0]) + " without an output",
                "write TASK.OUTPUT, e.g. \"check.ok\", or params.NAME");
          continue;
        }
        check_source(i, ref.path[0], pos, what);
      }
    }
  }
}

std::unique_ptr<const Dag> Loader::Load(const toml::table& root) {
  CheckKeys(root, kRootKeys, "the file");
  DagSpec spec;
  spec.source_path = path_;
  ParseDagTable(root, &spec);

  if (const toml::node* params = root.get("params")) {
    if (!params->is_table()) {
      WrongType(*params, "params", "the file", "a table", "write a [params] section");
    } else if (const toml::node* deep = TooDeep(*params, kMaxJsonDepth)) {
      Error(PosOf(*deep),
            "[params] nest arrays and tables more than " + std::to_string(kMaxJsonDepth) +
                " levels deep",
            "flatten the value; params reach steps as JSON, which is limited to " +
                std::to_string(kMaxJsonDepth) + " levels");
    } else {
      params_ = ToJson(*params);
      spec.params = params_;
      for (const auto& [k, v] : *params->as_table()) {
        if (!IsIdentifier(k.str())) {
          Error(PosOf(k), "parameter name " + Quote(k.str()) + " is not valid",
                "use letters, digits, '_' and '-', starting with a letter");
        }
      }
    }
  }

  TaskSettings defaults;
  if (const toml::node* node = root.get("defaults")) {
    if (!node->is_table()) {
      WrongType(*node, "defaults", "the file", "a table", "write a [defaults] section");
    } else {
      const toml::table& table = *node->as_table();
      std::vector<std::string> task_only;
      for (const auto& [key, value] : table) {
        if (std::find(kTaskOnlyKeys.begin(), kTaskOnlyKeys.end(), key.str()) !=
            kTaskOnlyKeys.end()) {
          Error(PosOf(key), "[defaults] cannot set " + Quote(key.str()),
                "it is set per task; [defaults] takes " + JoinQuoted(kDefaultsKeys));
          task_only.emplace_back(key.str());
        }
      }
      CheckKeys(table, kDefaultsKeys, "[defaults]", task_only);
      defaults = ParseSettings(table, "[defaults]");
    }
  }

  const toml::node* task_node = root.get("task");
  if (task_node == nullptr) {
    Error({1, 1}, "DAG " + Quote(spec.id) + " has no tasks",
          "add at least one task:\n    [[task]]\n    id = \"hello\"\n    plugin = \"core.noop\"");
  } else if (!task_node->is_array_of_tables()) {
    std::string hint = "write each task as a [[task]] section (double brackets)";
    Error(PosOf(*task_node), "\"task\" must be an array of tables, not " + TypeName(*task_node),
          hint);
  } else {
    const toml::array& array = *task_node->as_array();
    if (array.empty()) {
      Error(PosOf(*task_node), "DAG " + Quote(spec.id) + " has no tasks",
            "add at least one [[task]] section");
    }
    spec.tasks.resize(array.size());
    sources_.resize(array.size());
    for (size_t i = 0; i < array.size(); ++i) {
      ParseTask(*array[i].as_table(), i, defaults, &spec.tasks[i]);
    }
    CheckDependencies(&spec.tasks);
    if (CheckCycles(spec.tasks)) CheckUpstreamReferences(spec.tasks);
  }

  if (diags_->has_errors()) return nullptr;
  return std::make_unique<const Dag>(std::move(spec));
}

}  // namespace

DagLoadResult LoadDagText(std::string_view text, const std::string& path) {
  DagLoadResult result;
  result.path = path;
  if (text.size() > kMaxDagFileBytes) {
    result.diagnostics.Error(path, {},
                             "DAG file is " + std::to_string(text.size()) +
                                 " bytes, more than the limit of " +
                                 std::to_string(kMaxDagFileBytes),
                             "split it into several DAGs");
    return result;
  }
  result.source = std::string(text);
  toml::table root;
  try {
    root = toml::parse(result.source, path);
  } catch (const toml::parse_error& e) {
    std::string message = "TOML syntax error: " + std::string(e.description());
    std::string hint;
    if (message.find("redefine") != std::string::npos) {
      hint = "each key may appear once per table; tasks are [[task]] sections (double brackets)";
    } else if (message.find("control characters") != std::string::npos ||
               message.find("encountered end-of-file") != std::string::npos) {
      hint = "a string is probably not closed: add its closing quote on the same line";
    }
    result.diagnostics.Error(path, PosOf(e.source()), message, hint);
    return result;
  }
  Loader loader(path, &result.diagnostics);
  result.dag = loader.Load(root);
  result.diagnostics.Sort();
  return result;
}

DagLoadResult LoadDagFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    DagLoadResult result;
    result.path = path;
    std::error_code ec;
    std::string why = std::filesystem::exists(path, ec) ? "cannot be read" : "does not exist";
    result.diagnostics.Error(path, {}, "DAG file " + why,
                             "check the path; `sluice dag validate DIR` checks a whole folder");
    return result;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return LoadDagText(text.str(), path);
}

std::vector<DagLoadResult> LoadDagDirectory(const std::string& dir) {
  namespace fs = std::filesystem;
  std::vector<DagLoadResult> results;
  std::vector<std::string> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_regular_file(ec) && it->path().extension() == ".toml") {
      files.push_back(it->path().string());
    }
  }
  if (ec) {
    DagLoadResult result;
    result.path = dir;
    result.diagnostics.Error(dir, {}, "cannot read DAG folder: " + ec.message(),
                             "check that the folder exists and is readable");
    results.push_back(std::move(result));
    return results;
  }
  std::sort(files.begin(), files.end());
  for (const std::string& file : files) results.push_back(LoadDagFile(file));
  RejectDuplicateDagIds(&results);
  return results;
}

void RejectDuplicateDagIds(std::vector<DagLoadResult>* results) {
  std::unordered_map<std::string, std::string> owner;  // DAG id -> first file
  for (DagLoadResult& result : *results) {
    if (!result.dag) continue;
    auto [it, inserted] = owner.emplace(result.dag->id(), result.path);
    if (inserted) continue;
    result.diagnostics.Error(
        result.path, result.dag->spec().id_pos,
        "DAG id " + Quote(result.dag->id()) + " is already used by " + it->second,
        "DAG ids must be unique among the DAG files; rename one");
    result.dag.reset();
  }
}

}  // namespace sluice
