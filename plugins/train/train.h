// Shared by the `train` plugin's steps: the training data as matrices, and the model
// directory every trainer writes (see plugins/ml/model.h).
#ifndef SLUICE_PLUGINS_TRAIN_TRAIN_H_
#define SLUICE_PLUGINS_TRAIN_TRAIN_H_

#include <sluice/step.h>

#include <filesystem>
#include <string>
#include <vector>

#include "../ml/preprocess.h"

namespace sluice::train {

// One split, preprocessed: x is row-major rows x cols, y holds class indices or values.
struct Matrix {
  std::vector<double> x;
  std::vector<double> y;
  size_t rows = 0;
  size_t cols = 0;
};

// The `dataset` input of a try, as dataprep.csv wrote it.
struct TrainingData {
  ml::Preprocessor preprocessor;
  Matrix train;
  Matrix valid;  // may have 0 rows
};

// Reads dataset/{preprocess.json,train.csv,valid.csv} of the input named `input`. Throws
// StepError with the file and line when something is wrong.
TrainingData LoadTrainingData(const sdk::Context& ctx, const std::string& input = "dataset");

// The step's model folder (created), inside its output dir.
std::filesystem::path ModelDir(sdk::Context& ctx);

class XgboostStep : public sdk::Step {
 public:
  void Run(sdk::Context& ctx) override;
};

class LogisticStep : public sdk::Step {
 public:
  void Run(sdk::Context& ctx) override;
};

}  // namespace sluice::train

#endif  // SLUICE_PLUGINS_TRAIN_TRAIN_H_
