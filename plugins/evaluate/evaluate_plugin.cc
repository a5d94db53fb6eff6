// The `evaluate` plugin: scores a model folder on a split of a dataset.
//
//   evaluate.classifier  accuracy, precision/recall/F1 (macro and per class), ROC AUC
//                        (one-vs-rest for more than 2 classes), log loss, confusion matrix
//                        and calibration table
//   evaluate.regressor   RMSE, MAE, R^2 and the largest error
//
// Each logs its figures as metrics, writes them all to a JSON report (output `report`), and
// publishes the headline figures as a value (output `metrics`) that a deploy gate reads.
// The model is run by the same code that serves it (plugins/ml/model.h).
#include <sluice/step.h>

#include <cmath>
#include <cstdio>

#include "../ml/csv.h"
#include "../ml/metrics.h"
#include "../ml/model.h"

namespace {

using nlohmann::json;
using sluice::ml::CsvTable;
using sluice::ml::Model;
using sluice::ml::TaskKind;
using sluice::sdk::Context;
using sluice::sdk::OutputKind;
using sluice::sdk::ParamType;
using sluice::sdk::StepError;

struct Scored {
  Model model;
  CsvTable table;
  std::vector<double> labels;
  std::vector<double> predictions;  // rows x model outputs
};

Scored Score(Context& ctx) {
  const std::filesystem::path model_dir = ctx.InputPath("model");
  const std::string split = ctx.Param<std::string>("split");
  const std::filesystem::path file = ctx.InputPath("dataset") / (split + ".csv");
  Scored s;
  try {
    s.model = Model::Load(model_dir);
  } catch (const std::exception& e) {
    throw StepError(std::string("cannot load the model: ") + e.what());
  }
  if (!std::filesystem::exists(file)) {
    throw StepError("the dataset has no split \"" + split + "\" (" + file.string() +
                    "); splits are train, valid and test");
  }
  try {
    s.table = sluice::ml::ReadCsv(file);
    s.labels = s.model.preprocessor().Labels(s.table);
    s.predictions = s.model.PredictTable(s.table);
  } catch (const std::exception& e) {
    throw StepError(file.string() + ": " + e.what());
  }
  if (s.table.rows.empty()) throw StepError(file.string() + " has no rows to evaluate on");
  ctx.Info("evaluating " + s.model.card().value("predictor", std::string("?")) + " model on " +
           std::to_string(s.table.rows.size()) + " " + split + " rows");
  return s;
}

void Publish(Context& ctx, const json& report, const json& headline) {
  for (const auto& [name, value] : headline.items()) {
    if (value.is_number()) ctx.Metric(name, value.get<double>());
  }
  const std::filesystem::path file = ctx.output_dir() / "report.json";
  sluice::ml::WriteJsonFile(file, report);
  ctx.OutputFile("report", file);
  ctx.OutputValue("metrics", headline);
}

std::string Fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", v);
  return buf;
}

class Classifier : public sluice::sdk::Step {
 public:
  void Run(Context& ctx) override {
    Scored s = Score(ctx);
    const sluice::ml::Preprocessor& pre = s.model.preprocessor();
    if (pre.task() == TaskKind::kRegression) {
      throw StepError("the model is a regression model; use evaluate.regressor");
    }
    const std::vector<std::string>& classes = pre.classes();
    size_t positive = classes.size() - 1;
    if (ctx.HasParam("positive_class")) {
      const std::string name = ctx.Param<std::string>("positive_class");
      const auto it = std::find(classes.begin(), classes.end(), name);
      if (it == classes.end()) {
        throw StepError("positive_class \"" + name + "\" is not one of the model's classes");
      }
      positive = static_cast<size_t>(it - classes.begin());
    }
    json report =
        sluice::ml::ClassificationReport(s.predictions, s.labels, classes, positive,
                                         static_cast<int>(ctx.Param<int64_t>("calibration_bins")));
    report["split"] = ctx.Param<std::string>("split");
    report["model"] = s.model.card();
    if (classes.size() == 2) report["positive_class"] = classes[positive];

    json headline = json::object();
    for (const char* name :
         {"accuracy", "auc", "logloss", "precision_macro", "recall_macro", "f1_macro"}) {
      if (report[name].is_number()) headline[name] = report[name];
    }
    for (const auto& [name, c] : report["per_class"].items()) {
      for (const char* m : {"precision", "recall", "f1"})
        headline[std::string(m) + "." + name] = c[m];
    }
    Publish(ctx, report, headline);

    // The confusion matrix, readable in the log.
    std::string line = "confusion (rows: true, columns: predicted):";
    ctx.Info(line);
    const json& rows = report["confusion_matrix"]["rows"];
    for (size_t i = 0; i < classes.size(); ++i) {
      line = "  " + classes[i] + ":";
      for (const json& n : rows[i]) line += " " + std::to_string(n.get<size_t>());
      ctx.Info(line);
    }
    ctx.Info("accuracy " + Fixed(report["accuracy"].get<double>()) +
             (report["auc"].is_number() ? ", auc " + Fixed(report["auc"].get<double>()) : "") +
             ", f1_macro " + Fixed(report["f1_macro"].get<double>()));
  }
};

class Regressor : public sluice::sdk::Step {
 public:
  void Run(Context& ctx) override {
    Scored s = Score(ctx);
    if (s.model.preprocessor().task() != TaskKind::kRegression) {
      throw StepError("the model is a classifier; use evaluate.classifier");
    }
    json report = sluice::ml::RegressionReport(s.predictions, s.labels);
    json headline = report;
    headline.erase("count");
    report["split"] = ctx.Param<std::string>("split");
    report["model"] = s.model.card();
    Publish(ctx, report, headline);
    ctx.Info("rmse " + Fixed(report["rmse"].get<double>()) + ", mae " +
             Fixed(report["mae"].get<double>()) + ", r2 " + Fixed(report["r2"].get<double>()));
  }
};

sluice::sdk::Plugin Describe() {
  sluice::sdk::Plugin plugin("evaluate", "1.0.0", "Model evaluation on a held-out split");
  plugin.Add<Classifier>("evaluate.classifier", "Classification metrics of a model on a split")
      .Input("model", "A model folder (train.xgboost, train.logistic)")
      .Input("dataset", "The dataset folder made by dataprep.csv")
      .Param("split", ParamType::kString, "Which split to score: test, valid or train", "test")
      .Param("positive_class", ParamType::kString,
             "Binary tasks: the class whose AUC is reported (default: the second class)", nullptr)
      .Param("calibration_bins", ParamType::kInteger, "Bins of the calibration table", 10)
      .Output("report", OutputKind::kFile, "Every figure, the confusion matrix and calibration")
      .Output("metrics", OutputKind::kValue, "The headline metrics (for deploy gates)");
  plugin.Add<Regressor>("evaluate.regressor", "Regression metrics of a model on a split")
      .Input("model", "A regression model folder (train.xgboost)")
      .Input("dataset", "The dataset folder made by dataprep.csv")
      .Param("split", ParamType::kString, "Which split to score: test, valid or train", "test")
      .Output("report", OutputKind::kFile, "RMSE, MAE, R^2, largest error")
      .Output("metrics", OutputKind::kValue, "The same figures (for deploy gates)");
  return plugin;
}

}  // namespace

SLUICE_PLUGIN(Describe)
