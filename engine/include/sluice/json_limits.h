// Bounded JSON parsing: every JSON text that comes from outside the process (API bodies,
// worker frames, request and model files) is parsed through ParseJson, so that its size and
// nesting depth are checked before nlohmann builds (and later dumps, copies and destroys) a
// tree. nlohmann's recursive dump and our own tree walks would otherwise let a 200 KB body of
// "[[[[..." decide whether the process survives.
//
// Thread safety: free functions, no state.
#ifndef SLUICE_JSON_LIMITS_H_
#define SLUICE_JSON_LIMITS_H_

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string_view>

#include "sluice/status.h"

namespace sluice {

struct JsonLimits {
  // Default: 64 levels of arrays and objects. Params, tags and model rows are a few levels
  // deep; 64 leaves room for any real document and keeps every recursive walk shallow.
  size_t max_depth = 64;
  // Default: 64 MiB, the largest worker frame. API bodies are capped lower by the server.
  size_t max_bytes = 64u << 20;
};

inline constexpr size_t kMaxJsonDepth = 64;

// A worker frame wraps a value (a step's output, a call's request) in a few levels of its own.
inline constexpr JsonLimits kFrameJsonLimits = {kMaxJsonDepth + 8, 64u << 20};

// The nesting depth of the JSON text (arrays and objects; brackets inside strings do not
// count), scanning no further than one level past `stop_at`. Malformed text is measured as
// far as its brackets go; the parser reports what else is wrong. `*offset` (optional) gets
// the byte offset of the first bracket deeper than `stop_at`.
size_t JsonDepth(std::string_view text, size_t stop_at, size_t* offset = nullptr);

// The checks ParseJson makes before parsing (size, NUL bytes, depth), for text that is passed
// on unparsed (a predict body goes to the plugin as it is).
Status CheckJsonLimits(std::string_view text, std::string_view what,
                       const JsonLimits& limits = JsonLimits());

// Parses `text`. InvalidArgument when it is larger or deeper than `limits` (the message names
// the limit and the byte offset), is not JSON (nlohmann's message, with its offset), or gives
// one key twice in an object (which nlohmann would silently resolve to the last).
// `what` names the text in messages: "the body", "frame kMetric", "the file x.json".
StatusOr<nlohmann::json> ParseJson(std::string_view text, std::string_view what,
                                   const JsonLimits& limits = JsonLimits());

}  // namespace sluice

#endif  // SLUICE_JSON_LIMITS_H_
