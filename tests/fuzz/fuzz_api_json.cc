// Fuzz target: what the API does with a JSON body before it acts on it: the bounded parse,
// then the checks a trigger body's params and tags go through, and the record decoders the
// state store applies to stored values. JsonDepth must bound the parsed tree's depth.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "sluice/dag_loader.h"
#include "sluice/json_limits.h"
#include "sluice/runner.h"
#include "sluice/state_store.h"

namespace {

size_t TreeDepth(const nlohmann::json& j) {  // bounded: the parse refused deeper input
  if (!j.is_structured()) return 0;
  size_t deepest = 0;
  for (const auto& el : j) deepest = std::max(deepest, TreeDepth(el));
  return deepest + 1;
}

const sluice::DagSpec& Spec() {
  static const sluice::DagLoadResult loaded = sluice::LoadDagText(
      "[dag]\nid = \"f\"\n[params]\nname = \"x\"\ncount = 2\nrate = 0.5\nflag = true\n"
      "list = [1, 2]\n[[task]]\nid = \"a\"\nplugin = \"core.noop\"\n",
      "f.toml");
  return loaded.dag->spec();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  sluice::StatusOr<nlohmann::json> body = sluice::ParseJson(text, "the body");
  if (!body.ok()) return 0;
  if (TreeDepth(*body) > sluice::kMaxJsonDepth) __builtin_trap();
  // The text's depth bounds the tree's: what the pre-parse check measured is never less than
  // what the walks below meet.
  if (TreeDepth(*body) > sluice::JsonDepth(text, sluice::kMaxJsonDepth)) __builtin_trap();
  const nlohmann::json& j = *body;
  if (j.is_object()) {
    if (j.contains("params") && j["params"].is_object()) {
      (void)sluice::ResolveRunParamsJson(Spec(), j["params"]);
    }
    if (j.contains("tags")) (void)sluice::CheckTags(j["tags"]);
    if (j.contains("run_id") && j["run_id"].is_string()) {
      (void)sluice::CheckRunId(j["run_id"].get<std::string>());
    }
    (void)sluice::RunRecord::FromJson(j);
    (void)sluice::TryRecord::FromJson(j);
    (void)sluice::Event::FromJson(j);
  }
  (void)j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return 0;
}
