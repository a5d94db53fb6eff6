// The `monitor` plugin: watches data and models after deployment.
//
//   monitor.drift  compares a new batch of data with the data a model was trained on:
//                  per numeric feature the population stability index (PSI) and the
//                  two-sample Kolmogorov-Smirnov test, per categorical feature Pearson's
//                  chi-squared test. Logs every figure as a metric, writes a JSON report,
//                  and publishes `drifted` (true/false), which a `when` condition can use to
//                  retrain (dags/drift_watch.toml); with on_drift = "fail" the task fails.
//
// The reference is the training profile dataprep.csv wrote: the registered model's (its
// folder keeps profile.json; param `model`) or any `profile` input.
#include <sluice/step.h>

#include <cmath>
#include <cstdio>

#include "../ml/csv.h"
#include "../ml/drift.h"
#include "../ml/model.h"
#include "../ml/preprocess.h"
#include "../ml/profile.h"

namespace {

using nlohmann::json;
using sluice::sdk::Context;
using sluice::sdk::OutputKind;
using sluice::sdk::ParamType;
using sluice::sdk::StepError;

std::string Fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

class Drift : public sluice::sdk::Step {
 public:
  void Run(Context& ctx) override {
    const json reference = Reference(ctx);
    const sluice::ml::CsvTable batch = Batch(ctx);
    const double psi_threshold = ctx.Param<double>("psi_threshold");
    const double ks_threshold = ctx.Param<double>("ks_threshold");
    const double alpha = ctx.Param<double>("alpha");
    std::vector<size_t> rows(batch.rows.size());
    for (size_t r = 0; r < rows.size(); ++r) rows[r] = r;

    json features = json::object();
    std::vector<std::string> drifted;
    for (const auto& [name, ref] : reference.at("columns").items()) {
      const int col = batch.Column(name);
      if (col < 0) {
        throw StepError("the batch has no column \"" + name +
                        "\", which the model was trained on (batch columns: " + Join(batch.header) +
                        ")");
      }
      json f = {{"type", ref.value("type", "numeric")}};
      bool is_drifted = false;
      if (f["type"] == "categorical") {
        std::map<std::string, double> expected;
        const json levels = ref.value("levels", json::object());
        for (const auto& [level, n] : levels.items()) {
          expected[level] = n.get<double>();
        }
        std::map<std::string, double> actual;
        for (size_t r : rows) {
          const std::string& cell = batch.rows[r][static_cast<size_t>(col)];
          if (!sluice::ml::IsMissing(cell)) actual[cell] += 1;
        }
        const sluice::ml::ChiSquaredResult chi = sluice::ml::ChiSquared(expected, actual);
        f["chi2"] = chi.statistic;
        f["chi2_dof"] = chi.dof;
        f["chi2_p"] = chi.p_value;
        is_drifted = chi.p_value < alpha;
        ctx.Metric("chi2_p." + name, chi.p_value);
      } else {
        const std::vector<double> expected = ref.value("sample", std::vector<double>{});
        const std::vector<double> actual = sluice::ml::NumericValues(batch, rows, col);
        if (actual.empty()) {
          throw StepError("column \"" + name + "\" of the batch has no numeric value");
        }
        const std::vector<double> quantiles = ref.value("quantiles", std::vector<double>{});
        const std::vector<double> edges(
            quantiles.size() > 2 ? quantiles.begin() + 1 : quantiles.end(),
            quantiles.size() > 2 ? quantiles.end() - 1 : quantiles.end());
        const double psi = sluice::ml::Psi(expected, actual, edges);
        const sluice::ml::KsResult ks = sluice::ml::KolmogorovSmirnov(expected, actual);
        double mean = 0;
        for (double v : actual) mean += v;
        mean /= static_cast<double>(actual.size());
        f["psi"] = psi;
        f["ks"] = ks.statistic;
        f["ks_p"] = ks.p_value;
        f["mean"] = mean;
        f["reference_mean"] = ref.value("mean", 0.0);
        is_drifted = psi > psi_threshold || (ks.statistic > ks_threshold && ks.p_value < alpha);
        ctx.Metric("psi." + name, psi);
        ctx.Metric("ks." + name, ks.statistic);
      }
      f["drifted"] = is_drifted;
      if (is_drifted) drifted.push_back(name);
      features[name] = f;
    }

    const size_t total = features.size();
    const bool dataset_drifted =
        static_cast<int64_t>(drifted.size()) >= ctx.Param<int64_t>("min_drifted_features");
    const json report = {{"rows", batch.rows.size()},
                         {"reference_rows", reference.value("rows", 0)},
                         {"thresholds",
                          {{"psi", psi_threshold},
                           {"ks", ks_threshold},
                           {"alpha", alpha},
                           {"min_drifted_features", ctx.Param<int64_t>("min_drifted_features")}}},
                         {"drifted", dataset_drifted},
                         {"drifted_features", drifted},
                         {"features", features}};
    const std::filesystem::path file = ctx.output_dir() / "drift.json";
    sluice::ml::WriteJsonFile(file, report);
    ctx.OutputFile("report", file);
    ctx.OutputValue("drifted", dataset_drifted);
    ctx.OutputValue("drifted_features", drifted);
    ctx.Metric("rows", static_cast<double>(batch.rows.size()));
    ctx.Metric("drifted_features", static_cast<double>(drifted.size()));
    ctx.Metric("drifted_share", total > 0 ? static_cast<double>(drifted.size()) / total : 0.0);

    for (const std::string& name : drifted) {
      const json& f = features[name];
      ctx.Warning("drift in " + name + ": " +
                  (f.contains("psi") ? "psi " + Fixed(f["psi"].get<double>()) + ", ks " +
                                           Fixed(f["ks"].get<double>()) + " (p " +
                                           Fixed(f["ks_p"].get<double>()) + "), mean " +
                                           Fixed(f["reference_mean"].get<double>()) + " -> " +
                                           Fixed(f["mean"].get<double>())
                                     : "chi2 " + Fixed(f["chi2"].get<double>()) + " (p " +
                                           Fixed(f["chi2_p"].get<double>()) + ")"));
    }
    const std::string summary = std::to_string(drifted.size()) + " of " + std::to_string(total) +
                                " features drifted in " + std::to_string(batch.rows.size()) +
                                " rows";
    if (dataset_drifted && ctx.Param<std::string>("on_drift") == "fail") {
      throw StepError("data drift: " + summary + " (" + Join(drifted) + ")");
    }
    ctx.Info(summary + (dataset_drifted ? ": drifted" : ": no drift"));
  }

 private:
  static std::string Join(const std::vector<std::string>& v) {
    std::string out;
    for (const std::string& s : v) out += (out.empty() ? "" : ", ") + s;
    return out;
  }

  // The training profile: input `profile`, or the registered model's.
  static json Reference(Context& ctx) {
    const std::string on_drift = ctx.Param<std::string>("on_drift");
    if (on_drift != "warn" && on_drift != "fail") {
      throw StepError("param \"on_drift\" must be warn or fail, not \"" + on_drift + "\"");
    }
    std::filesystem::path file;
    if (ctx.HasInput("profile")) {
      file = ctx.InputPath("profile");
    } else if (ctx.HasParam("model")) {
      const std::string model = ctx.Param<std::string>("model");
      const std::string alias = ctx.Param<std::string>("alias");
      const std::optional<json> version = ctx.ModelVersion(model, alias);
      if (!version) {
        throw StepError("no version of model \"" + model + "\" holds \"" + alias +
                        "\": nothing to compare with yet (train and deploy one first)");
      }
      file = std::filesystem::path(version->value("path", "")) / "profile.json";
      ctx.Info("reference: the training data of " + model + " v" +
               std::to_string(version->value("version", 0)) + " (" + alias + ")");
    } else {
      throw StepError(
          "give the reference: param \"model\" (a registered model) or input \"profile\"");
    }
    json profile;
    try {
      profile = sluice::ml::ReadJsonFile(file);
    } catch (const std::exception& e) {
      throw StepError(std::string(e.what()) +
                      " (the model folder keeps the profile of its "
                      "training data when dataprep.csv made it)");
    }
    if (profile.value("format", "") != "sluice.profile/1" || !profile.contains("columns")) {
      throw StepError(file.string() + " is not a profile written by dataprep.csv");
    }
    return profile;
  }

  static sluice::ml::CsvTable Batch(const Context& ctx) {
    std::vector<std::filesystem::path> paths;
    if (ctx.HasInput("batch")) paths.push_back(ctx.InputPath("batch"));
    const json& given = ctx.params()["path"];
    if (!given.is_null()) {
      for (const json& p : given.is_array() ? given : json::array({given})) {
        if (!p.is_string()) throw StepError("param \"path\" must be a file path or a list of them");
        paths.push_back(ctx.DagPath(p.get<std::string>()));
      }
    }
    if (paths.empty()) throw StepError("give the new data: param \"path\" or input \"batch\"");
    try {
      sluice::ml::CsvTable t = sluice::ml::ReadCsvFiles(paths);
      if (t.rows.empty()) throw StepError(paths[0].string() + " has no rows");
      return t;
    } catch (const StepError&) {
      throw;
    } catch (const std::exception& e) {
      throw StepError(e.what());
    }
  }
};

sluice::sdk::Plugin Describe() {
  sluice::sdk::Plugin plugin("monitor", "1.0.0", "Monitoring of data after deployment");
  plugin.Add<Drift>("monitor.drift", "Data drift of a new batch against the training data")
      .Input("profile", "A training profile (dataprep.csv's profile output)", false)
      .Input("batch", "The new data, a CSV file (or use param path)", false)
      .Param("model", ParamType::kString,
             "A registered model: compare with the data its `alias` version was trained on",
             nullptr)
      .Param("alias", ParamType::kString, "Which version of `model`", "production")
      .Param("path", ParamType::kAny,
             "The new data: a CSV file or a list of them (relative: to the DAG file's folder)",
             nullptr)
      .Param("psi_threshold", ParamType::kNumber, "A numeric feature drifts above this PSI", 0.25)
      .Param("ks_threshold", ParamType::kNumber,
             "... or above this Kolmogorov-Smirnov statistic when its p-value is below alpha", 0.2)
      .Param("alpha", ParamType::kNumber,
             "Significance level of the KS and chi-squared (categorical) tests", 0.01)
      .Param("min_drifted_features", ParamType::kInteger,
             "The batch has drifted when at least this many features have", 1)
      .Param("on_drift", ParamType::kString, "warn (succeed, drifted = true) or fail", "warn")
      .Output("report", OutputKind::kFile, "Every feature's figures and verdict (JSON)")
      .Output("drifted", OutputKind::kValue, "Whether the batch has drifted")
      .Output("drifted_features", OutputKind::kValue, "The names of the drifted features");
  return plugin;
}

}  // namespace

SLUICE_PLUGIN(Describe)
