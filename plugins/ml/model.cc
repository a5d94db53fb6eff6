#include "model.h"

#include <xgboost/c_api.h>

#include <cmath>
#include <fstream>
#include <stdexcept>

namespace sluice::ml {

using nlohmann::json;

json ReadJsonFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw std::runtime_error(path.string() + ": not valid JSON: " + e.what());
  }
}

void WriteJsonFile(const std::filesystem::path& path, const json& value) {
  std::ofstream out(path, std::ios::trunc);
  out << value.dump(2) << '\n';
  if (!out.flush()) throw std::runtime_error("cannot write " + path.string());
}

void WriteModelCard(const std::filesystem::path& dir, json card, const Preprocessor& pre,
                    const std::filesystem::path& dataset) {
  std::error_code ec;
  if (std::filesystem::exists(dataset / "profile.json", ec)) {
    std::filesystem::copy_file(dataset / "profile.json", dir / "profile.json",
                               std::filesystem::copy_options::overwrite_existing);
  }
  card["task"] = TaskKindName(pre.task());
  card["target"] = pre.target();
  card["classes"] = pre.classes();
  json columns = json::array();
  for (const ColumnTransform& c : pre.columns()) {
    columns.push_back({{"name", c.name}, {"type", c.categorical ? "categorical" : "numeric"}});
  }
  card["columns"] = columns;
  WriteJsonFile(dir / kModelCard, card);
  WriteJsonFile(dir / "preprocess.json", pre.ToJson());
}

namespace {

class Logistic : public Estimator {
 public:
  explicit Logistic(LogisticParams p) : p_(std::move(p)) {}
  size_t outputs() const override { return p_.m == 1 ? 2 : p_.m; }
  void Predict(const double* x, size_t rows, size_t cols, double* out) const override {
    if (cols != p_.features) throw std::runtime_error("logistic model: wrong feature count");
    std::vector<double> z(p_.m);
    for (size_t r = 0; r < rows; ++r) {
      const double* row = x + r * cols;
      for (size_t k = 0; k < p_.m; ++k) {
        double s = p_.bias[k];
        for (size_t f = 0; f < cols; ++f) s += row[f] * p_.weights[f * p_.m + k];
        z[k] = s;
      }
      double* o = out + r * outputs();
      if (p_.m == 1) {
        const double p1 = 1.0 / (1.0 + std::exp(-z[0]));
        o[0] = 1.0 - p1;
        o[1] = p1;
        continue;
      }
      double top = z[0];
      for (double v : z) top = std::max(top, v);
      double sum = 0;
      for (size_t k = 0; k < p_.m; ++k) sum += (o[k] = std::exp(z[k] - top));
      for (size_t k = 0; k < p_.m; ++k) o[k] /= sum;
    }
  }

 private:
  LogisticParams p_;
};

void CheckXgb(int code, const char* what) {
  if (code != 0) throw std::runtime_error(std::string(what) + ": " + XGBGetLastError());
}

class Xgboost : public Estimator {
 public:
  Xgboost(const std::filesystem::path& file, TaskKind task, size_t classes)
      : task_(task), classes_(classes) {
    CheckXgb(XGBoosterCreate(nullptr, 0, &booster_), "XGBoosterCreate");
    CheckXgb(XGBoosterLoadModel(booster_, file.c_str()), ("loading " + file.string()).c_str());
    // One thread: serving predicts small batches, where threads only add latency.
    CheckXgb(XGBoosterSetParam(booster_, "nthread", "1"), "XGBoosterSetParam");
  }
  ~Xgboost() override { XGBoosterFree(booster_); }
  Xgboost(const Xgboost&) = delete;
  Xgboost& operator=(const Xgboost&) = delete;

  size_t outputs() const override {
    return task_ == TaskKind::kRegression ? 1 : task_ == TaskKind::kBinary ? 2 : classes_;
  }
  void Predict(const double* x, size_t rows, size_t cols, double* out) const override {
    std::vector<float> data(x, x + rows * cols);
    DMatrixHandle dmat = nullptr;
    CheckXgb(XGDMatrixCreateFromMat(data.data(), rows, cols, NAN, &dmat), "XGDMatrixCreateFromMat");
    bst_ulong len = 0;
    const float* result = nullptr;
    const int code = XGBoosterPredict(booster_, dmat, 0, 0, 0, &len, &result);
    if (code != 0) {
      XGDMatrixFree(dmat);
      CheckXgb(code, "XGBoosterPredict");
    }
    const size_t k = outputs();
    if (task_ == TaskKind::kBinary) {
      for (size_t r = 0; r < rows; ++r) {
        out[r * 2] = 1.0 - result[r];
        out[r * 2 + 1] = result[r];
      }
    } else {
      for (size_t i = 0; i < rows * k && i < len; ++i) out[i] = result[i];
    }
    XGDMatrixFree(dmat);
  }

 private:
  BoosterHandle booster_ = nullptr;
  TaskKind task_;
  size_t classes_;
};

}  // namespace

void SaveLogistic(const std::filesystem::path& file, const LogisticParams& p) {
  WriteJsonFile(file, {{"format", "sluice.logistic/1"},
                       {"features", p.features},
                       {"m", p.m},
                       {"weights", p.weights},
                       {"bias", p.bias}});
}

std::unique_ptr<Estimator> LoadLogistic(const std::filesystem::path& file) {
  const json j = ReadJsonFile(file);
  try {
    LogisticParams p;
    p.features = j.at("features").get<size_t>();
    p.m = j.at("m").get<size_t>();
    p.weights = j.at("weights").get<std::vector<double>>();
    p.bias = j.at("bias").get<std::vector<double>>();
    if (p.weights.size() != p.features * p.m || p.bias.size() != p.m || p.m == 0) {
      throw std::runtime_error("weights and bias do not match features x m");
    }
    return std::make_unique<Logistic>(std::move(p));
  } catch (const std::exception& e) {
    throw std::runtime_error(file.string() + ": " + e.what());
  }
}

std::unique_ptr<Estimator> LoadXgboost(const std::filesystem::path& file, const Preprocessor& pre) {
  return std::make_unique<Xgboost>(file, pre.task(), pre.classes().size());
}

Model Model::Load(const std::filesystem::path& dir) {
  Model model;
  model.card_ = ReadJsonFile(dir / kModelCard);
  model.preprocessor_ = Preprocessor::Load(dir / "preprocess.json");
  const std::string format = model.card_.value("format", "");
  if (format == "sluice.logistic/1") {
    model.estimator_ = LoadLogistic(dir / "logistic.json");
  } else if (format == "xgboost") {
    model.estimator_ = LoadXgboost(dir / "model.json", model.preprocessor_);
  } else {
    throw std::runtime_error((dir / kModelCard).string() + ": unknown model format \"" + format +
                             "\" (this build reads xgboost and sluice.logistic/1)");
  }
  return model;
}

std::vector<double> Model::PredictTable(const CsvTable& table) const {
  const std::vector<double> x = preprocessor_.TransformTable(table);
  std::vector<double> out(table.rows.size() * estimator_->outputs());
  estimator_->Predict(x.data(), table.rows.size(), preprocessor_.num_features(), out.data());
  return out;
}

}  // namespace sluice::ml
