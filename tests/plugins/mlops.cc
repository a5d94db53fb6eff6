// A toy training and deployment pair for the MLOps tests: "training" writes a model file whose
// content depends on its params, logs a learning curve and a final AUC; "deploy" registers
// the model it was given when its AUC clears a gate and beats the current production model.
// MLOPS_VERSION is set by the build, so that two builds differ only in their version.
#include <sluice/step.h>

#include <chrono>
#include <fstream>
#include <thread>

using sluice::sdk::Context;
using sluice::sdk::OutputKind;
using sluice::sdk::ParamType;
using sluice::sdk::StepError;

class Train : public sluice::sdk::Step {
 public:
  void Run(Context& ctx) override {
    const double auc = ctx.Param<double>("auc");
    const auto path = ctx.output_dir() / "model.txt";
    std::ofstream(path) << "weights for auc " << auc << " seed " << ctx.Param<int64_t>("seed")
                        << "\n";
    for (int round = 0; round < 5; ++round) ctx.Metric("loss", 1.0 / (round + 1), round);
    ctx.Metric("auc", auc);
    ctx.Tag("framework", "toy");
    ctx.OutputFile("model", path);
    ctx.OutputValue("auc", auc);
  }
};

class Deploy : public sluice::sdk::Step {
 public:
  void Run(Context& ctx) override {
    const std::string model = ctx.Param<std::string>("model_name");
    const double auc = ctx.InputValue("auc").get<double>();
    const double min_auc = ctx.Param<double>("min_auc");
    if (auc < min_auc)
      ctx.Skip("auc " + std::to_string(auc) + " is below the gate " + std::to_string(min_auc));
    if (auto production = ctx.ModelVersion(model, "production")) {
      const double current = (*production)["metrics"].value("auc", 0.0);
      if (auc <= current) {
        ctx.Skip("auc " + std::to_string(auc) + " does not beat production v" +
                 std::to_string((*production)["version"].get<int>()) + " (" +
                 std::to_string(current) + ")");
      }
    }
    sluice::sdk::ModelOptions options;
    options.metrics = {{"auc", auc}};
    options.alias = "production";
    options.reason = "auc " + std::to_string(auc) + " passed the gate";
    nlohmann::json v = ctx.RegisterModelFromInput(model, "model", options);
    ctx.Info("registered " + model + " v" + std::to_string(v["version"].get<int>()));
    ctx.OutputValue("version", v["version"]);
    if (ctx.Param<double>("hold_seconds") > 0) {
      // Stays running after registering (the kill -9 test kills the engine here).
      for (;;) {
        ctx.CheckCancelled();
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
  }
};

sluice::sdk::Plugin Describe() {
  sluice::sdk::Plugin plugin("mlops", MLOPS_VERSION, "Toy train and deploy steps for tests");
  plugin.Add<Train>("mlops.train", "Writes a model file; logs loss per round and auc")
      .Param("auc", ParamType::kNumber, "The AUC to report")
      .Param("seed", ParamType::kInteger, "Changes the model file", 1)
      .Output("model", OutputKind::kFile, "The model")
      .Output("auc", OutputKind::kValue, "The AUC");
  plugin.Add<Deploy>("mlops.deploy", "Registers the model when it beats production")
      .Param("model_name", ParamType::kString, "Registry name")
      .Param("min_auc", ParamType::kNumber, "Gate", 0.5)
      .Param("hold_seconds", ParamType::kNumber, "Keep running after registering", 0)
      .Input("model", "The model file")
      .Input("auc", "Its AUC")
      .NotCacheable();
  return plugin;
}
SLUICE_PLUGIN(Describe)
