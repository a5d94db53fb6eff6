// A plugin built with the C++ layer (<sluice/step.h>) for another ABI major: SLUICE_PLUGIN
// answers the host with a version-only table, so that the host says which ABI it wants
// (it said only "the plugin declined to load").
#include <sluice/plugin_abi.h>
#undef SLUICE_ABI_MAJOR
#define SLUICE_ABI_MAJOR 2
#include <sluice/step.h>

namespace {

class Nothing : public sluice::sdk::Step {
 public:
  void Run(sluice::sdk::Context& /*ctx*/) override {}
};

sluice::sdk::Plugin Describe() {
  sluice::sdk::Plugin plugin("sdk_future", "1.0.0", "Built for ABI 2");
  plugin.Add<Nothing>("sdk_future.nothing", "Does nothing");
  return plugin;
}

}  // namespace

SLUICE_PLUGIN(Describe)
