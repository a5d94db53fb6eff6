#include "sluice/json_limits.h"

#include <string>

namespace sluice {

size_t JsonDepth(std::string_view text, size_t stop_at, size_t* offset) {
  size_t depth = 0;
  size_t deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character, whatever it is, cannot end the string
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        break;
      case '[':
      case '{':
        if (++depth > deepest) {
          deepest = depth;
          if (deepest > stop_at) {
            if (offset != nullptr) *offset = i;
            return deepest;
          }
        }
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default:
        break;
    }
  }
  return deepest;
}

Status CheckJsonLimits(std::string_view text, std::string_view what, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return Status::InvalidArgument(std::string(what) + " is " + std::to_string(text.size()) +
                                   " bytes, more than the limit of " +
                                   std::to_string(limits.max_bytes));
  }
  // nlohmann stops at a NUL byte and accepts what came before it ("21\0{..." is 21): the
  // rest would be silently ignored. JSON has no raw NUL anywhere, so refuse it.
  if (const size_t nul = text.find('\0'); nul != std::string_view::npos) {
    return Status::InvalidArgument(std::string(what) + " is not JSON: a NUL byte at byte " +
                                   std::to_string(nul));
  }
  size_t at = 0;
  if (JsonDepth(text, limits.max_depth, &at) > limits.max_depth) {
    return Status::InvalidArgument(std::string(what) + " nests arrays and objects more than " +
                                   std::to_string(limits.max_depth) + " levels deep (at byte " +
                                   std::to_string(at) + "); flatten it");
  }
  return Status::Ok();
}

StatusOr<nlohmann::json> ParseJson(std::string_view text, std::string_view what,
                                   const JsonLimits& limits) {
  SLUICE_RETURN_IF_ERROR(CheckJsonLimits(text, what, limits));
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(std::string(what) + " is not JSON: " + e.what());
  }
}

}  // namespace sluice
