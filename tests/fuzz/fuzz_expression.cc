// Fuzz target: `when` expressions, parsed and then evaluated against values derived from
// each path, so that evaluation (types, division, short-circuits) is exercised too.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "sluice/expression.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  sluice::ExpressionError error;
  std::unique_ptr<sluice::Expression> expr = sluice::Expression::Parse(text, &error);
  if (!expr) {
    if (error.offset > text.size()) __builtin_trap();  // the offset points into the text
    return 0;
  }
  auto resolve = [](const std::vector<std::string>& path) -> sluice::StatusOr<nlohmann::json> {
    switch (path.back().size() % 5) {
      case 0:
        return nlohmann::json(static_cast<double>(path.size()));
      case 1:
        return nlohmann::json(path.back());
      case 2:
        return nlohmann::json(path.size() % 2 == 0);
      case 3:
        return nlohmann::json(nullptr);
      default:
        return sluice::Status::NotFound("no value for " + path.back());
    }
  };
  (void)expr->Evaluate(resolve);
  (void)expr->EvaluateCondition(resolve);
  return 0;
}
