// The `train` plugin: model trainers over the datasets dataprep.csv makes.
//
//   train.xgboost   gradient-boosted trees (XGBoost's C API), with early stopping
//   train.logistic  L2-regularised logistic regression (binary and multinomial), Eigen
//
// Both write a self-describing model folder (sluice-model.json, preprocess.json and the
// estimator's file) as their `model` output; evaluate.classifier and model serving read it.
// See plugins/train/README.md.
#include <sluice/step.h>

#include "../ml/csv.h"
#include "predictor.h"
#include "train.h"

namespace sluice::train {

namespace {

Matrix Load(const std::filesystem::path& file, const ml::Preprocessor& pre) {
  Matrix m;
  if (!std::filesystem::exists(file)) return m;
  const ml::CsvTable table = ml::ReadCsv(file);
  try {
    m.x = pre.TransformTable(table);
    m.y = pre.Labels(table);
  } catch (const std::exception& e) {
    throw sdk::StepError(file.string() + ": " + e.what());
  }
  m.rows = table.rows.size();
  m.cols = pre.num_features();
  return m;
}

}  // namespace

TrainingData LoadTrainingData(const sdk::Context& ctx, const std::string& input) {
  const std::filesystem::path dir = ctx.InputPath(input);
  TrainingData data;
  try {
    data.preprocessor = ml::Preprocessor::Load(dir / "preprocess.json");
    data.train = Load(dir / "train.csv", data.preprocessor);
    data.valid = Load(dir / "valid.csv", data.preprocessor);
  } catch (const sdk::StepError&) {
    throw;
  } catch (const std::exception& e) {
    throw sdk::StepError(std::string(e.what()) + " (is input \"" + input +
                         "\" a dataset made by dataprep.csv?)");
  }
  if (data.train.rows == 0) throw sdk::StepError(dir.string() + ": the training split is empty");
  return data;
}

std::filesystem::path ModelDir(sdk::Context& ctx) {
  std::filesystem::path dir = ctx.output_dir() / "model";
  std::filesystem::create_directories(dir);
  return dir;
}

namespace {

using sdk::OutputKind;
using sdk::ParamType;

sdk::Plugin Describe() {
  sdk::Plugin plugin("train", "1.0.0", "Model trainers: XGBoost and logistic regression");
  plugin.Add<XgboostStep>("train.xgboost", "Gradient-boosted trees with XGBoost")
      .Input("dataset", "A dataset folder made by dataprep.csv")
      .Param("rounds", ParamType::kInteger, "Boosting rounds (at most)", 200)
      .Param("max_depth", ParamType::kInteger, "Maximum depth of a tree", 6)
      .Param("eta", ParamType::kNumber, "Learning rate", 0.3)
      .Param("subsample", ParamType::kNumber, "Share of rows sampled per tree", 1.0)
      .Param("colsample", ParamType::kNumber, "Share of features sampled per tree", 1.0)
      .Param("lambda", ParamType::kNumber, "L2 regularisation of leaf weights", 1.0)
      .Param("alpha", ParamType::kNumber, "L1 regularisation of leaf weights", 0.0)
      .Param("min_child_weight", ParamType::kNumber, "Minimum hessian sum in a leaf", 1.0)
      .Param("early_stopping_rounds", ParamType::kInteger,
             "Stop when the validation metric has not improved for this many rounds (0: never)", 20)
      .Param("eval_metric", ParamType::kString,
             "Validation metric (default: logloss, mlogloss or rmse by task)", nullptr)
      .Param("seed", ParamType::kInteger, "Seed for row and column sampling", 42)
      .Param("threads", ParamType::kInteger, "Threads (keep 1 when tasks run side by side)", 1)
      .Output("model", OutputKind::kDir, "The model folder (model.json, preprocess.json, card)");
  plugin.Add<LogisticStep>("train.logistic", "L2-regularised logistic regression")
      .Input("dataset", "A dataset folder made by dataprep.csv")
      .Param("C", ParamType::kNumber, "Inverse regularisation strength (as in scikit-learn)", 1.0)
      .Param("max_iter", ParamType::kInteger, "Newton iterations (at most)", 100)
      .Param("tol", ParamType::kNumber, "Stop when the largest gradient entry is below this", 1e-8)
      .Output("model", OutputKind::kDir, "The model folder (logistic.json, preprocess.json, card)");
  plugin.AddPredictor<ModelPredictor>("train.xgboost", "Serves train.xgboost's model folders");
  plugin.AddPredictor<ModelPredictor>("train.logistic", "Serves train.logistic's model folders");
  return plugin;
}

}  // namespace

}  // namespace sluice::train

SLUICE_PLUGIN(sluice::train::Describe)
