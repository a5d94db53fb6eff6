// The `deploy` plugin: puts a model into the registry, and into production when it earns it.
//
//   deploy.promote  picks the best of one or more candidate models by a metric, registers
//                   it as the next version of a registered model, and moves an alias
//                   ("production") to it when every gate holds. A gate that does not hold
//                   is not an error: the task ends as skipped, saying which gate and why.
//
// Candidates are inputs: `model` with `metrics` (one candidate), or `model_NAME` with
// `metrics_NAME` for each candidate NAME. A metrics input is a JSON object of numbers, such
// as evaluate.classifier's `metrics` output. Gates are expressions of the `when` language
// over the candidate's metrics, with the current holder of the alias as `production`:
//
//   gates = ["auc >= 0.98", "accuracy >= 0.95", "auc >= production.auc - 0.002"]
//
// Until a version holds the alias, comparisons with `production.*` are not checked.
#include <sluice/step.h>

#include <cstdio>
#include <map>

namespace {

using nlohmann::json;
using sluice::sdk::Context;
using sluice::sdk::OutputKind;
using sluice::sdk::ParamType;
using sluice::sdk::StepError;

struct Candidate {
  std::string name;         // "" for the single `model` input
  std::string model_input;  // the input holding the model folder
  json metrics;             // name -> number
};

// {"f1.benign": 0.9} -> {"f1": {"benign": 0.9}}, so that gates can name "f1.benign".
json Nest(const json& flat) {
  json out = json::object();
  for (const auto& [name, value] : flat.items()) {
    json* at = &out;
    size_t start = 0;
    for (size_t dot; (dot = name.find('.', start)) != std::string::npos; start = dot + 1) {
      json& next = (*at)[name.substr(start, dot - start)];
      if (!next.is_object()) next = json::object();
      at = &next;
    }
    (*at)[name.substr(start)] = value;
  }
  return out;
}

std::string Show(const json& v) {
  if (!v.is_number()) return v.dump();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v.get<double>());
  return buf;
}

// The value at a dotted name in nested `values`, or null.
json Lookup(const json& values, const std::string& name) {
  const json* at = &values;
  size_t start = 0;
  for (;;) {
    const size_t dot = name.find('.', start);
    const std::string part = name.substr(start, dot == std::string::npos ? dot : dot - start);
    if (!at->is_object() || !at->contains(part)) return nullptr;
    at = &(*at)[part];
    if (dot == std::string::npos) return *at;
    start = dot + 1;
  }
}

bool Truthy(const json& v) {
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0;
  if (v.is_string()) return !v.get<std::string>().empty();
  return !v.is_null();
}

class Promote : public sluice::sdk::Step {
 public:
  void Run(Context& ctx) override {
    const std::string model = ctx.Param<std::string>("model");
    const std::string alias = ctx.Param<std::string>("alias");
    std::vector<Candidate> candidates = Candidates(ctx);
    const Candidate chosen = Choose(ctx, candidates);

    const std::optional<json> current = ctx.ModelVersion(model, alias);
    json values = Nest(chosen.metrics);
    if (current) values["production"] = Nest(current->value("metrics", json::object()));

    std::vector<std::string> failed;
    for (const json& gate : ctx.params()["gates"]) {
      if (!gate.is_string()) throw StepError("param \"gates\" must list expressions (strings)");
      const std::string text = gate.get<std::string>();
      const json result = ctx.EvaluateExpression(text, values);
      const json& missing = result["missing"];
      std::string shown;
      for (const json& ref : result["references"]) {
        const json v = Lookup(values, ref.get<std::string>());
        if (!v.is_null())
          shown += (shown.empty() ? "" : ", ") + ref.get<std::string>() + " = " + Show(v);
      }
      if (!missing.empty()) {
        bool only_production = !current;
        for (const json& m : missing) {
          only_production = only_production && m.get<std::string>().rfind("production.", 0) == 0;
        }
        if (!only_production) {
          throw StepError("gate \"" + text + "\" names " + missing[0].get<std::string>() +
                          ", which " +
                          (current ? "neither the candidate nor production has"
                                   : "the candidate's metrics do not have") +
                          " (metrics: " + Names(chosen.metrics) + ")");
        }
        ctx.Info("gate \"" + text + "\": not checked, no version of " + model + " holds " + alias +
                 " yet");
        continue;
      }
      const bool held = Truthy(result["value"]);
      ctx.Info("gate \"" + text + "\": " + (held ? "holds" : "FAILS") + " (" + shown + ")");
      if (!held) failed.push_back("\"" + text + "\" (" + shown + ")");
    }

    const std::string artifact = ctx.inputs()[chosen.model_input].value("artifact", "");
    if (current && !artifact.empty() && current->value("artifact", "") == artifact) {
      // A rerun that rebuilt the same model (say, every step came from the cache): a second
      // version of the same bytes would only blur the registry's history.
      const int number = current->value("version", 0);
      ctx.OutputValue("version", number);
      ctx.Info(model + " v" + std::to_string(number) + " already holds " + alias +
               " and is this very model (artifact " + artifact.substr(0, 12) +
               "); nothing to register");
      return;
    }

    sluice::sdk::ModelOptions options;
    options.metrics = chosen.metrics;
    options.description = ctx.Param<std::string>("description");
    if (!chosen.name.empty()) options.tags["candidate"] = chosen.name;
    options.tags["source_run"] = ctx.run().run_id;
    if (failed.empty()) {
      options.alias = alias;
      options.reason = "gates passed in " + ctx.run().dag_id + "/" + ctx.run().run_id;
    }
    const json version = ctx.RegisterModelFromInput(model, chosen.model_input, options);
    const int number = version.value("version", 0);
    const std::string was =
        current ? " (was v" + std::to_string(current->value("version", 0)) + ")" : " (the first)";
    ctx.OutputValue("version", number);
    if (!failed.empty()) {
      std::string reason = "registered " + model + " v" + std::to_string(number) + " but kept " +
                           alias +
                           (current ? " at v" + std::to_string(current->value("version", 0))
                                    : std::string(" unset")) +
                           ": gate " + failed[0] + " failed";
      if (failed.size() > 1) reason += " (and " + std::to_string(failed.size() - 1) + " more)";
      ctx.Skip(reason);
    }
    ctx.Info(model + " v" + std::to_string(number) + " is now " + alias + was);
  }

 private:
  static std::string Names(const json& metrics) {
    std::string out;
    for (const auto& [name, value] : metrics.items()) out += (out.empty() ? "" : ", ") + name;
    return out;
  }

  static std::vector<Candidate> Candidates(const Context& ctx) {
    std::map<std::string, Candidate> found;
    for (const auto& [input, spec] : ctx.inputs().items()) {
      const bool is_model = input == "model" || input.rfind("model_", 0) == 0;
      const bool is_metrics = input == "metrics" || input.rfind("metrics_", 0) == 0;
      if (!is_model && !is_metrics) {
        throw StepError("input \"" + input +
                        "\" is neither a model (model, model_NAME) nor metrics (metrics, "
                        "metrics_NAME)");
      }
      const size_t cut = input.find('_');
      const std::string name = cut == std::string::npos ? "" : input.substr(cut + 1);
      Candidate& c = found[name];
      c.name = name;
      if (is_model) {
        if (!spec.contains("path"))
          throw StepError("input \"" + input + "\" must be a model folder");
        c.model_input = input;
      } else {
        c.metrics = ctx.InputValue(input);
        if (!c.metrics.is_object()) {
          throw StepError("input \"" + input + "\" must be a JSON object of metrics, got " +
                          c.metrics.dump());
        }
      }
    }
    std::vector<Candidate> out;
    for (auto& [name, c] : found) {
      const std::string suffix = name.empty() ? "" : "_" + name;
      if (c.model_input.empty())
        throw StepError("metrics" + suffix + " has no input model" + suffix);
      if (c.metrics.is_null()) throw StepError("model" + suffix + " has no input metrics" + suffix);
      out.push_back(std::move(c));
    }
    if (out.empty()) throw StepError("no candidate: give inputs model and metrics");
    return out;
  }

  static Candidate Choose(Context& ctx, const std::vector<Candidate>& candidates) {
    if (candidates.size() == 1) return candidates[0];
    const std::string by = ctx.Param<std::string>("select_by");
    const bool higher = ctx.Param<bool>("higher_is_better");
    const Candidate* best = nullptr;
    for (const Candidate& c : candidates) {
      const json v = c.metrics.value(by, json());
      if (!v.is_number()) {
        throw StepError("candidate \"" + c.name + "\" has no metric \"" + by +
                        "\" to be compared by (metrics: " + Names(c.metrics) + ")");
      }
      ctx.Info("candidate " + c.name + ": " + by + " = " + Show(v));
      // Ties keep the earlier candidate in name order, so the choice is deterministic.
      const double score = v.get<double>();
      const double best_score = best ? best->metrics[by].get<double>() : 0;
      if (!best || (higher ? score > best_score : score < best_score)) best = &c;
    }
    ctx.Info("chose " + best->name + " (" + (higher ? "highest " : "lowest ") + by + ")");
    ctx.Tag("candidate", best->name);
    return *best;
  }
};

sluice::sdk::Plugin Describe() {
  sluice::sdk::Plugin plugin("deploy", "1.0.0", "Model registration and gated promotion");
  plugin.Add<Promote>("deploy.promote", "Register the best candidate; promote it if its gates hold")
      .AnyInputs()
      .NotCacheable()
      .Param("model", ParamType::kString, "The registered model's name")
      .Param("alias", ParamType::kString, "The alias to move when the gates hold", "production")
      .Param("gates", ParamType::kArray,
             "Expressions over the candidate's metrics (and production.*) that must all hold",
             json::array())
      .Param("select_by", ParamType::kString, "With several candidates: the metric to pick by",
             "auc")
      .Param("higher_is_better", ParamType::kBoolean, "Whether select_by is better higher", true)
      .Param("description", ParamType::kString, "Kept with the registered version", "")
      .Output("version", OutputKind::kValue, "The registered version's number");
  return plugin;
}

}  // namespace

SLUICE_PLUGIN(Describe)
