// The predictor that serves the train plugin's model folders (see predictor.cc).
#ifndef SLUICE_PLUGINS_TRAIN_PREDICTOR_H_
#define SLUICE_PLUGINS_TRAIN_PREDICTOR_H_

#include <sluice/step.h>

#include <filesystem>
#include <memory>

namespace sluice::train {

class ModelPredictor : public sdk::Predictor {
 public:
  // Online serving answers small batches; score large ones with a DAG step.
  static constexpr size_t kMaxRows = 1000;

  // Loads and warms up a model folder; throws std::exception naming what is wrong.
  explicit ModelPredictor(const std::filesystem::path& dir);
  ~ModelPredictor() override;
  nlohmann::json Predict(const nlohmann::json& request) override;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::train

#endif  // SLUICE_PLUGINS_TRAIN_PREDICTOR_H_
