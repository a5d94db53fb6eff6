// train.xgboost: boosting rounds one at a time through XGBoost's C API, so that each round's
// training and validation metric become a learning curve, and early stopping keeps the best
// round's trees.
#include <xgboost/c_api.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <sstream>

#include "../ml/model.h"
#include "train.h"

namespace sluice::train {

namespace {

using nlohmann::json;
using sdk::StepError;

void Check(int code, const std::string& what) {
  if (code != 0) throw StepError("XGBoost: " + what + ": " + XGBGetLastError());
}

// Owns a DMatrix.
class DMatrix {
 public:
  explicit DMatrix(const Matrix& m) {
    std::vector<float> x(m.x.begin(), m.x.end());
    std::vector<float> y(m.y.begin(), m.y.end());
    Check(XGDMatrixCreateFromMat(x.data(), m.rows, m.cols, NAN, &handle_), "creating a DMatrix");
    Check(XGDMatrixSetFloatInfo(handle_, "label", y.data(), m.rows), "setting labels");
  }
  ~DMatrix() { XGDMatrixFree(handle_); }
  DMatrix(const DMatrix&) = delete;
  DMatrix& operator=(const DMatrix&) = delete;
  DMatrixHandle get() const { return handle_; }

 private:
  DMatrixHandle handle_ = nullptr;
};

class Booster {
 public:
  explicit Booster(const std::vector<DMatrixHandle>& cache) {
    Check(XGBoosterCreate(cache.data(), cache.size(), &handle_), "creating a booster");
  }
  explicit Booster(BoosterHandle handle) : handle_(handle) {}
  ~Booster() { XGBoosterFree(handle_); }
  Booster(const Booster&) = delete;
  Booster& operator=(const Booster&) = delete;
  BoosterHandle get() const { return handle_; }
  void Set(const std::string& name, const std::string& value) {
    Check(XGBoosterSetParam(handle_, name.c_str(), value.c_str()), "param " + name + "=" + value);
  }

 private:
  BoosterHandle handle_ = nullptr;
};

std::string Text(double v) {
  std::ostringstream out;
  out.precision(17);
  out << v;
  return out.str();
}

// Parses "[3]\ttrain-logloss:0.25\tvalid-logloss:0.31" into {"train": 0.25, "valid": 0.31}.
std::map<std::string, double> ParseEval(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  std::string field;
  while (std::getline(in, field, '\t')) {
    const size_t dash = field.find('-');
    const size_t colon = field.rfind(':');
    if (dash == std::string::npos || colon == std::string::npos || colon < dash) continue;
    out[field.substr(0, dash)] = std::stod(field.substr(colon + 1));
  }
  return out;
}

bool HigherIsBetter(const std::string& metric) {
  return metric == "auc" || metric == "aucpr" || metric.rfind("ndcg", 0) == 0 ||
         metric.rfind("map", 0) == 0;
}

}  // namespace

void XgboostStep::Run(sdk::Context& ctx) {
  const auto started = std::chrono::steady_clock::now();
  TrainingData data = LoadTrainingData(ctx);
  const ml::Preprocessor& pre = data.preprocessor;
  const DMatrix train(data.train);
  std::unique_ptr<DMatrix> valid;
  if (data.valid.rows > 0) valid = std::make_unique<DMatrix>(data.valid);

  std::vector<DMatrixHandle> cache = {train.get()};
  if (valid) cache.push_back(valid->get());
  Booster booster(cache);

  std::string objective;
  std::string metric;
  switch (pre.task()) {
    case ml::TaskKind::kBinary:
      objective = "binary:logistic";
      metric = "logloss";
      break;
    case ml::TaskKind::kMulticlass:
      objective = "multi:softprob";
      metric = "mlogloss";
      booster.Set("num_class", std::to_string(pre.classes().size()));
      break;
    case ml::TaskKind::kRegression:
      objective = "reg:squarederror";
      metric = "rmse";
      break;
  }
  metric = ctx.Param<std::string>("eval_metric", metric);
  const json params = {{"objective", objective},
                       {"eval_metric", metric},
                       {"max_depth", ctx.Param<int64_t>("max_depth")},
                       {"eta", ctx.Param<double>("eta")},
                       {"subsample", ctx.Param<double>("subsample")},
                       {"colsample_bytree", ctx.Param<double>("colsample")},
                       {"lambda", ctx.Param<double>("lambda")},
                       {"alpha", ctx.Param<double>("alpha")},
                       {"min_child_weight", ctx.Param<double>("min_child_weight")},
                       {"seed", ctx.Param<int64_t>("seed")},
                       {"nthread", ctx.Param<int64_t>("threads")},
                       {"verbosity", 0}};
  for (const auto& [name, value] : params.items()) {
    booster.Set(name, value.is_string() ? value.get<std::string>() : value.dump());
  }

  const int64_t rounds = ctx.Param<int64_t>("rounds");
  const int64_t patience = ctx.Param<int64_t>("early_stopping_rounds");
  if (rounds < 1) throw StepError("param \"rounds\" must be at least 1");
  const bool higher_better = HigherIsBetter(metric);
  double best = higher_better ? -std::numeric_limits<double>::infinity()
                              : std::numeric_limits<double>::infinity();
  int64_t best_round = 0;
  std::vector<DMatrixHandle> evals = cache;
  std::vector<const char*> names = {"train", "valid"};
  int64_t round = 0;
  for (; round < rounds; ++round) {
    ctx.CheckCancelled();
    Check(XGBoosterUpdateOneIter(booster.get(), static_cast<int>(round), train.get()),
          "round " + std::to_string(round));
    const char* eval = nullptr;
    Check(XGBoosterEvalOneIter(booster.get(), static_cast<int>(round), evals.data(), names.data(),
                               evals.size(), &eval),
          "evaluating round " + std::to_string(round));
    const std::map<std::string, double> scores = ParseEval(eval);
    for (const auto& [set, value] : scores) ctx.Metric(set + "." + metric, value, round);
    if (!valid) continue;
    const double v = scores.count("valid") ? scores.at("valid") : std::nan("");
    if (higher_better ? v > best : v < best) {
      best = v;
      best_round = round;
    } else if (patience > 0 && round - best_round >= patience) {
      ctx.Info("early stop after round " + std::to_string(round) + ": valid " + metric +
               " has not improved on round " + std::to_string(best_round) + "'s " + Text(best) +
               " for " + std::to_string(patience) + " rounds");
      ++round;
      break;
    }
  }
  if (!valid) best_round = round - 1;

  // Keep the trees up to the best round.
  BoosterHandle sliced_handle = nullptr;
  Check(XGBoosterSlice(booster.get(), 0, static_cast<int>(best_round + 1), 1, &sliced_handle),
        "keeping rounds 0.." + std::to_string(best_round));
  const Booster sliced(sliced_handle);
  const std::filesystem::path dir = ModelDir(ctx);
  Check(XGBoosterSaveModel(sliced.get(), (dir / "model.json").c_str()), "saving the model");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  json card = {{"format", "xgboost"}, {"predictor", "train.xgboost"}, {"plugin", "train"},
               {"params", params},    {"rounds", best_round + 1},     {"rows", data.train.rows}};
  if (valid) card["valid"] = {{metric, best}};
  ml::WriteModelCard(dir, card, pre, ctx.InputPath("dataset"));
  ctx.OutputDir("model", dir);

  ctx.Metric("rounds", static_cast<double>(best_round + 1));
  if (valid) ctx.Metric("valid_" + metric, best);
  ctx.Metric("train_seconds", seconds);
  ctx.Info("trained " + std::to_string(best_round + 1) + " rounds on " +
           std::to_string(data.train.rows) + " rows" +
           (valid ? ", valid " + metric + " " + Text(best) : std::string()));
}

}  // namespace sluice::train
