// Real plugin libraries (.so files built by this project) loaded exactly as workers load
// them. These tests load plugins into the test process itself, which the engine never does.
#include "sluice/plugin_host.h"

#include <doctest/doctest.h>

#include "sluice/plugin_abi.h"
#include "test_util.h"

namespace sluice {
namespace {

using nlohmann::json;

class RecordingHost : public StepHost {
 public:
  void Log(int level, std::string_view message) override {
    logs.emplace_back(level, std::string(message));
  }
  void Metric(const std::string& name, double value, int64_t step) override {
    metrics.push_back({{"name", name}, {"value", value}, {"step", step}});
  }
  bool Cancelled() override { return cancelled; }
  bool Output(const std::string& name, int kind, const std::string& data) override {
    outputs[name] = {{"kind", kind}, {"data", data}};
    return true;
  }
  std::vector<std::pair<int, std::string>> logs;
  json metrics = json::array();
  json outputs = json::object();
  bool cancelled = false;
};

std::string Request(json params) {
  return json{{"params", std::move(params)},
              {"inputs", json::object()},
              {"scratch_dir", "/tmp"},
              {"output_dir", "/tmp"},
              {"run", {{"dag_id", "d"}, {"run_id", "r"}, {"task_id", "t"}, {"try_number", 1}}}}
      .dump();
}

std::string CorePlugin() { return std::string(SLUICE_PLUGIN_DIR) + "/core.so"; }
std::string TestPlugins(const std::string& folder) {
  return std::string(SLUICE_TEST_PLUGIN_DIR) + "/" + folder;
}

TEST_CASE("PluginHost.Load.CoreManifest") {
  auto lib = PluginLibrary::Load(CorePlugin());
  REQUIRE_MESSAGE(lib.ok(), lib.status().ToString());
  const PluginManifest& m = (*lib)->manifest();
  CHECK(m.name == "core");
  CHECK(m.version == "1.0.0");
  CHECK(m.abi_major == SLUICE_ABI_MAJOR);
  std::vector<std::string> steps;
  for (const auto& s : m.steps) steps.push_back(s.name);
  CHECK(steps == std::vector<std::string>{"core.noop", "core.touch", "core.shell", "core.sleep",
                                          "core.fail"});
  const StepManifest& shell = m.steps[2];
  const ParamManifest* command = shell.FindParam("command");
  REQUIRE(command != nullptr);
  CHECK(command->required);
  CHECK(command->type == "string");
  const ParamManifest* env = shell.FindParam("env");
  REQUIRE(env != nullptr);
  CHECK_FALSE(env->required);
  CHECK(env->default_value == json::object());
  CHECK_FALSE(m.steps[4].cacheable);  // core.fail
}

TEST_CASE("PluginHost.Run.ResultsMessagesAndCallbacks") {
  auto lib = PluginLibrary::Load(CorePlugin());
  REQUIRE(lib.ok());
  RecordingHost host;
  StepResult ok = (*lib)->Run("core.noop", Request({{"outputs", {{"answer", 42}}}}), &host);
  CHECK(ok.code == SLUICE_RESULT_SUCCESS);
  CHECK(host.outputs["answer"]["data"] == "42");

  StepResult failed =
      (*lib)->Run("core.fail", Request({{"mode", "error"}, {"message", "nope"}}), &host);
  CHECK(failed.code == SLUICE_RESULT_FAILED);
  CHECK(failed.message == "nope");

  StepResult thrown = (*lib)->Run("core.fail", Request({{"mode", "throw_int"}}), &host);
  CHECK(thrown.code == SLUICE_RESULT_FAILED);
  CHECK(thrown.message.find("not a std::exception") != std::string::npos);

  StepResult missing = (*lib)->Run("core.shell", Request(json::object()), &host);
  CHECK(missing.code == SLUICE_RESULT_FAILED);
  CHECK(missing.message.find("param \"command\" is required") != std::string::npos);

  StepResult wrong_type = (*lib)->Run("core.sleep", Request({{"seconds", "ten"}}), &host);
  CHECK(wrong_type.code == SLUICE_RESULT_FAILED);
  CHECK(wrong_type.message.find("param \"seconds\" must be of type number") != std::string::npos);

  StepResult unknown = (*lib)->Run("core.nothing", Request(json::object()), &host);
  CHECK(unknown.code == SLUICE_RESULT_FAILED);
  CHECK(unknown.message.find("has no step \"core.nothing\"") != std::string::npos);

  host.cancelled = true;
  StepResult cancelled = (*lib)->Run("core.sleep", Request({{"seconds", 30}}), &host);
  CHECK(cancelled.code == SLUICE_RESULT_FAILED);
  CHECK(cancelled.message == "cancelled");
}

TEST_CASE("PluginHost.Run.PlainCPlugin") {
  auto lib = PluginLibrary::Load(TestPlugins("c_plugin") + "/test_hello_c.so");
  REQUIRE_MESSAGE(lib.ok(), lib.status().ToString());
  RecordingHost host;
  StepResult r = (*lib)->Run("hello_c.greet", Request(json::object()), &host);
  CHECK(r.code == SLUICE_RESULT_SUCCESS);
  REQUIRE(host.logs.size() == 1);
  CHECK(host.logs[0].second == "hello from a C plugin");
  CHECK(host.metrics[0]["value"] == 42.0);
  CHECK(host.outputs["greeting"]["data"] == "\"hello\"");
}

TEST_CASE("PluginHost.Refuses.WithFileAndReason") {
  struct Case {
    const char* folder;
    const char* message;
  };
  const std::string speaks = "built for plugin ABI 2.0, but this Sluice speaks ABI 1." +
                             std::to_string(SLUICE_ABI_MINOR) + " (the major versions differ)";
  const std::string sdk_speaks = "built for plugin ABI 2." + std::to_string(SLUICE_ABI_MINOR) +
                                 ", but this Sluice speaks ABI 1." +
                                 std::to_string(SLUICE_ABI_MINOR) + " (the major versions differ)";
  const Case cases[] = {
      {"abi_major", speaks.c_str()},
      {"sdk_abi_major", sdk_speaks.c_str()},
      {"abi_minor_newer", "built against a newer SDK (ABI 1.99)"},
      {"no_entry", "not a Sluice plugin: it does not export \"sluice_plugin_entry_v1\""},
      {"bad_manifest", "manifest is not valid JSON"},
  };
  for (const Case& c : cases) {
    const std::string folder = c.folder;
    CAPTURE(folder);
    PluginCatalog catalog = ScanPlugins({TestPlugins(c.folder)});
    CHECK(catalog.plugins.empty());
    REQUIRE(catalog.problems.size() == 1);
    CHECK(catalog.problems[0].file.find(TestPlugins(c.folder)) == 0);
    CHECK(catalog.problems[0].message.find(c.message) != std::string::npos);
    CHECK(catalog.problems[0].message.find(catalog.problems[0].file) == 0);  // names the file
  }
}

// A file named .so that is no library: the loader's own reason, once, without the stale errno
// Boost.DLL appended ("...file too short): Bad file descriptor").
TEST_CASE("PluginHost.Refuses.ATextFileNamedSoWithTheLoadersReason") {
  testing::TempDir dir;
  testing::WriteFile(dir.file("fake.so"), "not a library\n");
  StatusOr<std::unique_ptr<PluginLibrary>> lib = PluginLibrary::Load(dir.file("fake.so"));
  REQUIRE_FALSE(lib.ok());
  const std::string message = lib.status().message();
  CHECK(message == dir.file("fake.so") +
                       ": cannot load the library: file too short (is it a shared library built "
                       "for this machine?)");
}

TEST_CASE("PluginHost.Refuses.TwoPluginsWithOneName") {
  PluginCatalog catalog = ScanPlugins({TestPlugins("duplicate")});
  REQUIRE(catalog.plugins.size() == 1);
  CHECK(catalog.plugins[0].file.find("test_dup_a.so") != std::string::npos);  // the first wins
  REQUIRE(catalog.problems.size() == 1);
  CHECK(catalog.problems[0].message.find("plugin name \"dup\" is already taken by") !=
        std::string::npos);
  CHECK(catalog.problems[0].file.find("test_dup_b.so") != std::string::npos);
}

TEST_CASE("PluginHost.Catalog.JsonRoundTripAndSearchPath") {
  PluginCatalog catalog = ScanPlugins({SLUICE_PLUGIN_DIR, TestPlugins("c_plugin")});
  REQUIRE(catalog.problems.empty());
  REQUIRE(catalog.FindPluginOfStep("core.noop") != nullptr);
  REQUIRE(catalog.FindPluginOfStep("train.xgboost") != nullptr);
  auto back = PluginCatalog::FromJson(catalog.ToJson());
  REQUIRE_MESSAGE(back.ok(), back.status().ToString());
  CHECK(back->StepNames() == catalog.StepNames());
  REQUIRE(back->FindPluginOfStep("hello_c.greet") != nullptr);
  CHECK(back->FindPluginOfStep("hello_c.greet")->file ==
        catalog.FindPluginOfStep("hello_c.greet")->file);

  setenv("SLUICE_PLUGIN_PATH", "/a:/b::/a", 1);
  std::vector<std::string> path = PluginSearchPath({"/first"});
  unsetenv("SLUICE_PLUGIN_PATH");
  REQUIRE(path.size() >= 3);
  CHECK(path[0] == "/first");
  CHECK(path[1] == "/a");
  CHECK(path[2] == "/b");
}

TEST_CASE("PluginHost.Manifest.RejectsMalformedSteps") {
  CHECK_FALSE(ParsePluginManifest(R"({"name":"p","steps":[]})", "p").ok());
  CHECK_FALSE(ParsePluginManifest(R"({"name":"p","steps":[{"name":"other.x"}]})", "p").ok());
  CHECK_FALSE(ParsePluginManifest(R"({"name":"q","steps":[{"name":"q.x"}]})", "p").ok());
  auto bad_type = ParsePluginManifest(
      R"({"name":"p","steps":[{"name":"p.x","params":[{"name":"a","type":"float"}]}]})", "p");
  REQUIRE_FALSE(bad_type.ok());
  CHECK(bad_type.status().message().find("unknown type \"float\"") != std::string::npos);
  CHECK(ParsePluginManifest(R"({"name":"p","steps":[{"name":"p.x"}]})", "p").ok());
}

}  // namespace
}  // namespace sluice
