// Fuzz target: param templates ("{{ params.x }}"), parsed and rendered against a context
// that holds objects, arrays, numbers and strings.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "sluice/template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  sluice::TemplateError error;
  std::optional<sluice::Template> parsed = sluice::Template::Parse(text, &error);
  if (!parsed) {
    if (error.offset > text.size()) __builtin_trap();
    return 0;
  }
  static const nlohmann::json context = {
      {"ds", "2026-01-01"},
      {"run_id", "manual__x"},
      {"dag", {{"id", "d"}, {"folder", "/tmp"}}},
      {"task", {{"id", "t"}}},
      {"params", {{"n", 3}, {"x", 1.5}, {"s", "text"}, {"list", {1, 2}}, {"obj", {{"a", true}}}}}};
  (void)parsed->Render(context);
  return 0;
}
