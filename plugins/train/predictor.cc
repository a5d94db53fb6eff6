// The `train` plugin's predictors: serve the model folders train.xgboost and
// train.logistic write. One class serves both, through plugins/ml/model.h, so that a model
// is served by the very code that evaluated it.
//
// Request:  {"rows": [{"column": value, ...}, ...]}  or  {"columns": {"column": [v, ...]}}
//           (raw values as in the training CSV; null for a missing value)
// Answer:   classification: {"classes": [...], "predictions": [label, ...],
//                             "probabilities": [[p_class0, p_class1, ...], ...]}
//           regression:     {"predictions": [value, ...]}
#include "predictor.h"

#include <algorithm>

#include "../ml/model.h"

namespace sluice::train {

namespace {

using nlohmann::json;

// Turns the "columns" form into rows.
json ColumnsToRows(const json& columns) {
  if (!columns.is_object() || columns.empty()) {
    throw sdk::BadRequest("\"columns\" must be an object of column -> array of values");
  }
  size_t n = 0;
  bool first = true;
  for (const auto& [name, values] : columns.items()) {
    if (!values.is_array()) throw sdk::BadRequest("column \"" + name + "\" must be an array");
    if (!first && values.size() != n) {
      throw sdk::BadRequest("column \"" + name + "\" has " + std::to_string(values.size()) +
                            " values; the others have " + std::to_string(n));
    }
    n = values.size();
    first = false;
  }
  json rows = json::array();
  for (size_t i = 0; i < n; ++i) {
    json row = json::object();
    for (const auto& [name, values] : columns.items()) row[name] = values[i];
    rows.push_back(std::move(row));
  }
  return rows;
}

}  // namespace

class ModelPredictor::Impl {
 public:
  explicit Impl(const std::filesystem::path& dir) : model(ml::Model::Load(dir)) {}
  ml::Model model;
};

ModelPredictor::ModelPredictor(const std::filesystem::path& dir)
    : impl_(std::make_unique<Impl>(dir)) {
  // Warm up with one row of the training medians and modes: the first real request must not
  // pay for lazy initialisation inside the estimator.
  json row = json::object();
  for (const ml::ColumnTransform& c : impl_->model.preprocessor().columns()) row[c.name] = nullptr;
  Predict({{"rows", json::array({row})}});
}

ModelPredictor::~ModelPredictor() = default;

json ModelPredictor::Predict(const json& request) {
  if (!request.is_object()) throw sdk::BadRequest("the request must be a JSON object");
  for (const auto& [key, value] : request.items()) {
    if (key != "rows" && key != "columns") {
      throw sdk::BadRequest("unknown field \"" + key + "\" (send \"rows\" or \"columns\")");
    }
  }
  if (request.contains("rows") == request.contains("columns")) {
    throw sdk::BadRequest("send either \"rows\" (a list of objects) or \"columns\"");
  }
  const json rows = request.contains("rows") ? request["rows"] : ColumnsToRows(request["columns"]);
  if (!rows.is_array() || rows.empty()) {
    throw sdk::BadRequest("\"rows\" must be a non-empty list of objects (column -> value)");
  }
  if (rows.size() > kMaxRows) {
    throw sdk::BadRequest("too many rows: " + std::to_string(rows.size()) + " (at most " +
                          std::to_string(kMaxRows) + " per request)");
  }
  const ml::Preprocessor& pre = impl_->model.preprocessor();
  std::vector<double> x;
  x.reserve(rows.size() * pre.num_features());
  for (size_t r = 0; r < rows.size(); ++r) {
    const std::string problem = pre.TransformJson(rows[r], &x);
    if (!problem.empty()) throw sdk::BadRequest("row " + std::to_string(r) + ": " + problem);
  }
  const ml::Estimator& estimator = impl_->model.estimator();
  const size_t k = estimator.outputs();
  std::vector<double> out(rows.size() * k);
  estimator.Predict(x.data(), rows.size(), pre.num_features(), out.data());

  json predictions = json::array();
  if (pre.task() == ml::TaskKind::kRegression) {
    for (double v : out) predictions.push_back(v);
    return {{"predictions", predictions}};
  }
  json probabilities = json::array();
  for (size_t r = 0; r < rows.size(); ++r) {
    const double* p = out.data() + r * k;
    predictions.push_back(pre.classes()[static_cast<size_t>(std::max_element(p, p + k) - p)]);
    probabilities.push_back(std::vector<double>(p, p + k));
  }
  return {
      {"classes", pre.classes()}, {"predictions", predictions}, {"probabilities", probabilities}};
}

}  // namespace sluice::train
