// A trained model as the ML plugins store it: a directory that describes itself.
//
//   sluice-model.json   the model card: format, predictor, task, classes, features,
//                       training params and metrics (see WriteModelCard)
//   preprocess.json     the Preprocessor fitted by dataprep.csv
//   <estimator file>    model.json (XGBoost's JSON format) or logistic.json
//
// Load() reads any of them; evaluate.classifier and the serving predictors use it, so a
// model is judged and served by the same code.
#ifndef SLUICE_PLUGINS_ML_MODEL_H_
#define SLUICE_PLUGINS_ML_MODEL_H_

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "preprocess.h"

namespace sluice::ml {

inline constexpr const char* kModelCard = "sluice-model.json";

// The estimator half of a model. Thread-compatible: Predict is const and may run from one
// thread at a time per object.
class Estimator {
 public:
  virtual ~Estimator() = default;
  // Writes rows x outputs() values to `out`: class probabilities (binary: 2 columns) or
  // the predicted value (regression: 1 column). `x` is row-major rows x cols.
  virtual void Predict(const double* x, size_t rows, size_t cols, double* out) const = 0;
  virtual size_t outputs() const = 0;
};

class Model {
 public:
  // Reads a model directory. Throws std::runtime_error naming the file that is wrong.
  static Model Load(const std::filesystem::path& dir);

  const Preprocessor& preprocessor() const { return preprocessor_; }
  const nlohmann::json& card() const { return card_; }
  const Estimator& estimator() const { return *estimator_; }

  // Predicts a CSV table's rows (raw columns): rows x outputs().
  std::vector<double> PredictTable(const CsvTable& table) const;

 private:
  Preprocessor preprocessor_;
  nlohmann::json card_;
  std::shared_ptr<const Estimator> estimator_;
};

// Writes dir/sluice-model.json and dir/preprocess.json, and copies the training data's
// profile.json from `dataset` (when it has one) so that monitors can compare new data with
// what the model learnt from. `card` holds at least "format" and "predictor"; task,
// classes, target and features are filled in from `pre`.
void WriteModelCard(const std::filesystem::path& dir, nlohmann::json card, const Preprocessor& pre,
                    const std::filesystem::path& dataset);

// Estimators by format.
std::unique_ptr<Estimator> LoadLogistic(const std::filesystem::path& file);
std::unique_ptr<Estimator> LoadXgboost(const std::filesystem::path& file, const Preprocessor& pre);

// The logistic estimator's parameters: z = x * weights + bias, with `weights` row-major
// features x m where m = 1 (binary: sigmoid) or the number of classes (softmax).
struct LogisticParams {
  size_t features = 0;
  size_t m = 1;
  std::vector<double> weights;
  std::vector<double> bias;
};
void SaveLogistic(const std::filesystem::path& file, const LogisticParams& params);

// Reads a JSON file; throws naming it.
nlohmann::json ReadJsonFile(const std::filesystem::path& path);
void WriteJsonFile(const std::filesystem::path& path, const nlohmann::json& value);

}  // namespace sluice::ml

#endif  // SLUICE_PLUGINS_ML_MODEL_H_
