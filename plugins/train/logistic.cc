// train.logistic: L2-regularised logistic regression fitted by Newton's method.
//
// Objective (scikit-learn's, divided by C): the summed log loss plus ||W||^2 / (2 C) over
// the weights (the intercepts are not penalised). Binary tasks use one sigmoid output,
// multi-class ones a softmax over all classes. The problems here are small (features x
// classes parameters), so the exact Hessian is cheap and Newton converges in a few
// iterations, each logged as a point of the learning curve.
#include <Eigen/Dense>
#include <chrono>
#include <cmath>

#include "../ml/model.h"
#include "train.h"

namespace sluice::train {

namespace {

using Eigen::MatrixXd;
using Eigen::VectorXd;
using nlohmann::json;
using sdk::StepError;

// Features with a trailing 1 for the intercept.
MatrixXd WithBias(const Matrix& m) {
  MatrixXd x(static_cast<Eigen::Index>(m.rows), static_cast<Eigen::Index>(m.cols + 1));
  for (size_t r = 0; r < m.rows; ++r) {
    for (size_t c = 0; c < m.cols; ++c) {
      x(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(c)) = m.x[r * m.cols + c];
    }
    x(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(m.cols)) = 1.0;
  }
  return x;
}

// Probabilities of the modelled outputs: n x m (m = 1: P(class 1); else softmax).
MatrixXd Probabilities(const MatrixXd& x, const MatrixXd& w) {
  MatrixXd z = x * w;
  if (w.cols() == 1) return z.unaryExpr([](double v) { return 1.0 / (1.0 + std::exp(-v)); });
  for (Eigen::Index r = 0; r < z.rows(); ++r) {
    const double top = z.row(r).maxCoeff();
    z.row(r) = (z.row(r).array() - top).exp();
    z.row(r) /= z.row(r).sum();
  }
  return z;
}

// Mean log loss of labels y (class indices) under probabilities p.
double MeanLogLoss(const MatrixXd& p, const std::vector<double>& y) {
  double sum = 0;
  for (Eigen::Index r = 0; r < p.rows(); ++r) {
    const size_t label = static_cast<size_t>(y[static_cast<size_t>(r)]);
    double q = p.cols() == 1 ? (label == 1 ? p(r, 0) : 1 - p(r, 0))
                             : p(r, static_cast<Eigen::Index>(label));
    sum -= std::log(std::clamp(q, 1e-15, 1.0));
  }
  return p.rows() > 0 ? sum / static_cast<double>(p.rows()) : 0;
}

class Problem {
 public:
  Problem(MatrixXd x, const std::vector<double>& y, Eigen::Index m, double c)
      : x_(std::move(x)), labels_(y), m_(m), inv_c_(1.0 / c) {
    targets_ = MatrixXd::Zero(x_.rows(), m_);
    for (Eigen::Index r = 0; r < x_.rows(); ++r) {
      const auto label = static_cast<Eigen::Index>(y[static_cast<size_t>(r)]);
      if (m_ == 1) {
        targets_(r, 0) = label == 1 ? 1 : 0;
      } else {
        targets_(r, label) = 1;
      }
    }
  }

  // The objective at w.
  double Loss(const MatrixXd& w) const {
    const MatrixXd p = Probabilities(x_, w);
    const Eigen::Index d = x_.cols() - 1;
    return MeanLogLoss(p, labels_) * static_cast<double>(x_.rows()) +
           0.5 * inv_c_ * w.topRows(d).squaredNorm();
  }

  // Gradient (flattened column by column) and Hessian at w.
  void Derivatives(const MatrixXd& w, VectorXd* gradient, MatrixXd* hessian) const {
    const Eigen::Index n = x_.rows();
    const Eigen::Index d1 = x_.cols();
    const MatrixXd p = Probabilities(x_, w);
    const MatrixXd residual = p - targets_;
    gradient->resize(d1 * m_);
    hessian->setZero(d1 * m_, d1 * m_);
    for (Eigen::Index k = 0; k < m_; ++k) {
      VectorXd g = x_.transpose() * residual.col(k);
      g.head(d1 - 1) += inv_c_ * w.col(k).head(d1 - 1);
      gradient->segment(k * d1, d1) = g;
      for (Eigen::Index l = k; l < m_; ++l) {
        VectorXd weight(n);
        for (Eigen::Index r = 0; r < n; ++r) {
          weight(r) = m_ == 1 ? p(r, 0) * (1 - p(r, 0)) : p(r, k) * ((k == l ? 1 : 0) - p(r, l));
        }
        const MatrixXd block = x_.transpose() * weight.asDiagonal() * x_;
        hessian->block(k * d1, l * d1, d1, d1) = block;
        if (l != k) hessian->block(l * d1, k * d1, d1, d1) = block.transpose();
      }
      // The penalty; a tiny ridge on the intercept keeps the softmax Hessian (singular
      // along "add a constant to every class") invertible without moving the optimum.
      for (Eigen::Index i = 0; i < d1; ++i) {
        (*hessian)(k * d1 + i, k * d1 + i) += i < d1 - 1 ? inv_c_ : 1e-10;
      }
    }
  }

  const MatrixXd& x() const { return x_; }

 private:
  MatrixXd x_;
  const std::vector<double>& labels_;
  MatrixXd targets_;
  Eigen::Index m_;
  double inv_c_;
};

}  // namespace

void LogisticStep::Run(sdk::Context& ctx) {
  const auto started = std::chrono::steady_clock::now();
  const TrainingData data = LoadTrainingData(ctx);
  const ml::Preprocessor& pre = data.preprocessor;
  if (pre.task() == ml::TaskKind::kRegression) {
    throw StepError("train.logistic classifies; the dataset's target \"" + pre.target() +
                    "\" is a regression target (use train.xgboost)");
  }
  const double c = ctx.Param<double>("C");
  if (!(c > 0)) throw StepError("param \"C\" must be > 0");
  const int64_t max_iter = ctx.Param<int64_t>("max_iter");
  const double tol = ctx.Param<double>("tol");
  const Eigen::Index m =
      pre.task() == ml::TaskKind::kBinary ? 1 : static_cast<Eigen::Index>(pre.classes().size());
  const Problem problem(WithBias(data.train), data.train.y, m, c);
  const MatrixXd valid_x = data.valid.rows > 0 ? WithBias(data.valid) : MatrixXd();
  const Eigen::Index d1 = problem.x().cols();

  MatrixXd w = MatrixXd::Zero(d1, m);
  double loss = problem.Loss(w);
  int64_t iteration = 0;
  double gradient_max = 0;
  for (; iteration < max_iter; ++iteration) {
    ctx.CheckCancelled();
    VectorXd g;
    MatrixXd h;
    problem.Derivatives(w, &g, &h);
    gradient_max = g.cwiseAbs().maxCoeff();
    if (gradient_max < tol) break;
    const VectorXd step = h.ldlt().solve(-g);
    // Backtracking (Armijo) line search: Newton's full step is right near the optimum but
    // may overshoot far from it.
    double t = 1.0;
    MatrixXd next;
    double next_loss = loss;
    for (int tries = 0; tries < 50; ++tries, t *= 0.5) {
      next = w + t * Eigen::Map<const MatrixXd>(step.data(), d1, m);
      next_loss = problem.Loss(next);
      if (next_loss <= loss + 1e-4 * t * g.dot(step)) break;
    }
    const double improvement = loss - next_loss;
    w = next;
    loss = next_loss;
    ctx.Metric("train.logloss", MeanLogLoss(Probabilities(problem.x(), w), data.train.y),
               iteration);
    if (data.valid.rows > 0) {
      ctx.Metric("valid.logloss", MeanLogLoss(Probabilities(valid_x, w), data.valid.y), iteration);
    }
    if (improvement <= 1e-14 * std::max(1.0, std::abs(loss))) {
      ++iteration;
      break;
    }
  }
  if (iteration >= max_iter && gradient_max >= tol) {
    ctx.Warning("did not converge in " + std::to_string(max_iter) +
                " iterations (largest gradient entry " + std::to_string(gradient_max) +
                "); raise max_iter or C");
  }

  ml::LogisticParams params;
  params.features = static_cast<size_t>(d1 - 1);
  params.m = static_cast<size_t>(m);
  for (Eigen::Index f = 0; f < d1 - 1; ++f) {
    for (Eigen::Index k = 0; k < m; ++k) params.weights.push_back(w(f, k));
  }
  for (Eigen::Index k = 0; k < m; ++k) params.bias.push_back(w(d1 - 1, k));
  const std::filesystem::path dir = ModelDir(ctx);
  ml::SaveLogistic(dir / "logistic.json", params);
  json card = {{"format", "sluice.logistic/1"},
               {"predictor", "train.logistic"},
               {"plugin", "train"},
               {"params", {{"C", c}, {"max_iter", max_iter}, {"tol", tol}}},
               {"iterations", iteration},
               {"rows", data.train.rows}};
  ml::WriteModelCard(dir, card, pre, ctx.InputPath("dataset"));
  ctx.OutputDir("model", dir);

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ctx.Metric("iterations", static_cast<double>(iteration));
  if (data.valid.rows > 0) {
    ctx.Metric("valid_logloss", MeanLogLoss(Probabilities(valid_x, w), data.valid.y));
  }
  ctx.Metric("train_seconds", seconds);
  ctx.Info("fitted " + std::to_string(static_cast<long>(d1 * m)) + " coefficients on " +
           std::to_string(data.train.rows) + " rows in " + std::to_string(iteration) +
           " Newton iterations");
}

}  // namespace sluice::train
