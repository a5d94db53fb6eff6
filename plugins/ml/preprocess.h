// The preprocessing half of a model: how raw columns become the feature vector a trainer
// saw. dataprep.csv fits it on the training split and saves it (preprocess.json); trainers
// copy it into the model directory, and evaluation and serving apply it, so that a model is
// always fed exactly what it was trained on.
//
// Numeric columns: a missing value is imputed with the training median, then scaled
// ("standard": (x - mean) / std, "minmax": (x - min) / (max - min), "none").
// Categorical columns: one-hot over the levels seen in training (an unseen level is all
// zeros); a missing value counts as the most frequent level.
#ifndef SLUICE_PLUGINS_ML_PREPROCESS_H_
#define SLUICE_PLUGINS_ML_PREPROCESS_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "csv.h"

namespace sluice::ml {

enum class TaskKind { kBinary, kMulticlass, kRegression };
const char* TaskKindName(TaskKind kind);

// Cell texts that mean "missing" in every data set: "", "NA", "N/A", "NaN", "null", "?".
bool IsMissing(const std::string& cell);

struct ColumnTransform {
  std::string name;
  bool categorical = false;
  // Numeric.
  double impute = 0;
  double center = 0;
  double scale = 1;
  // Categorical.
  std::vector<std::string> levels;
  std::string impute_level;
};

class Preprocessor {
 public:
  Preprocessor() = default;

  // Fits on `rows` (raw cells, in `table`'s column order). `features` are the columns to
  // use, `categorical` the subset that is categorical; `scaling` is standard|minmax|none.
  static Preprocessor Fit(const CsvTable& table, const std::vector<size_t>& rows,
                          const std::vector<std::string>& features,
                          const std::vector<std::string>& categorical, const std::string& target,
                          TaskKind task, std::vector<std::string> classes,
                          const std::string& scaling);

  static Preprocessor FromJson(const nlohmann::json& j);  // throws std::runtime_error
  static Preprocessor Load(const std::filesystem::path& path);
  nlohmann::json ToJson() const;

  // Names of the model's features (one per numeric column, one per categorical level).
  std::vector<std::string> FeatureNames() const;
  size_t num_features() const { return num_features_; }
  const std::vector<ColumnTransform>& columns() const { return columns_; }
  const std::string& target() const { return target_; }
  TaskKind task() const { return task_; }
  const std::vector<std::string>& classes() const { return classes_; }

  // Transforms the rows of a CSV table (any column order; extra columns are ignored) into a
  // row-major matrix of rows x num_features(). Throws std::runtime_error naming the row's
  // line and the column when a required column is absent or a numeric cell is not a number.
  std::vector<double> TransformTable(const CsvTable& table) const;
  // Labels of a CSV table's rows: class indices for classification, values for regression.
  // Throws naming the line for a missing or unknown label.
  std::vector<double> Labels(const CsvTable& table) const;

  // Transforms one JSON row (an object column -> value, where a value is a number, a string,
  // or null for missing) and appends its features to `out`. Returns "" or what is wrong; then
  // `out` may hold part of the row, and the caller drops the request.
  std::string TransformJson(const nlohmann::json& row, std::vector<double>* out) const;

 private:
  void AppendFeatures(const ColumnTransform& c, const std::string* text, double number,
                      bool is_number, std::vector<double>* out) const;
  void Index();

  std::string target_;
  TaskKind task_ = TaskKind::kBinary;
  std::vector<std::string> classes_;
  std::string scaling_ = "standard";
  std::vector<ColumnTransform> columns_;
  size_t num_features_ = 0;
};

}  // namespace sluice::ml

#endif  // SLUICE_PLUGINS_ML_PREPROCESS_H_
