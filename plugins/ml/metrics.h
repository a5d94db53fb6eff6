// Evaluation metrics, computed the way the common libraries define them (so that the
// figures can be checked against an independent implementation on the same split).
#ifndef SLUICE_PLUGINS_ML_METRICS_H_
#define SLUICE_PLUGINS_ML_METRICS_H_

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace sluice::ml {

// ROC AUC of scores for a binary labelling (1 = positive), with ties counted half
// (the Mann-Whitney statistic). NaN when one class is absent.
double RocAuc(const std::vector<double>& scores, const std::vector<int>& positive);

// Mean negative log-likelihood; probabilities are clipped to [1e-15, 1 - 1e-15].
double LogLoss(const std::vector<double>& proba, size_t k, const std::vector<double>& labels);

// Everything evaluate.classifier reports, as JSON:
//   {"accuracy", "precision_macro", "recall_macro", "f1_macro", "auc", "logloss",
//    "per_class": {class: {"precision", "recall", "f1", "support", "auc"}},
//    "confusion_matrix": {"labels": [...], "rows": [[...]]} (rows: true, columns: predicted),
//    "calibration": [{"bin", "lower", "upper", "count", "mean_predicted", "fraction_positive"}]}
// `proba` is rows x classes.size(); labels are class indices. For binary tasks "auc" is
// the positive class's (classes[positive]); for more classes it is the macro average of
// one-vs-rest AUCs. The calibration table bins the positive class's probability (binary)
// or the top class's probability (multi-class, "positive" = the top class was right).
nlohmann::json ClassificationReport(const std::vector<double>& proba,
                                    const std::vector<double>& labels,
                                    const std::vector<std::string>& classes, size_t positive,
                                    int calibration_bins);

// {"rmse", "mae", "r2", "max_error", "count"}.
nlohmann::json RegressionReport(const std::vector<double>& predicted,
                                const std::vector<double>& actual);

}  // namespace sluice::ml

#endif  // SLUICE_PLUGINS_ML_METRICS_H_
