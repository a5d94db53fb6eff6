// A plugin whose predictor misbehaves on request, for the model server's tests: it answers
// {"echo": request}, or sleeps ({"sleep_ms": N}), crashes the process ({"crash": true}),
// rejects the request ({"bad": true}) or fails ({"fail": true}).
#include <sluice/step.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <thread>

namespace {

class Echo : public sluice::sdk::Predictor {
 public:
  explicit Echo(const std::filesystem::path& dir) {
    if (std::filesystem::exists(dir / "fail_load")) throw std::runtime_error("fail_load is set");
    std::ifstream card(dir / "sluice-model.json");
    if (!card) throw std::runtime_error("no sluice-model.json in " + dir.string());
  }
  nlohmann::json Predict(const nlohmann::json& request) override {
    if (request.value("crash", false)) std::abort();
    if (request.value("bad", false)) throw sluice::sdk::BadRequest("bad is set");
    if (request.value("fail", false)) throw std::runtime_error("fail is set");
    if (request.contains("sleep_ms")) {
      std::this_thread::sleep_for(std::chrono::milliseconds(request["sleep_ms"].get<int>()));
    }
    return {{"echo", request}};
  }
};

class Noop : public sluice::sdk::Step {
 public:
  void Run(sluice::sdk::Context& /*ctx*/) override {}
};

sluice::sdk::Plugin Describe() {
  sluice::sdk::Plugin plugin("servetest", "1.0.0", "A predictor that misbehaves on request");
  plugin.Add<Noop>("servetest.noop", "Does nothing");
  plugin.AddPredictor<Echo>("servetest.echo", "Echoes, sleeps, crashes or fails on request");
  return plugin;
}

}  // namespace

SLUICE_PLUGIN(Describe)
