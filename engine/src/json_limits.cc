#include "sluice/json_limits.h"

#include <algorithm>
#include <functional>
#include <set>
#include <string>
#include <vector>

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

namespace {

// nlohmann's own tree builder, plus a check that no object repeats a key. It keeps a hash
// per key of each open object and compares them when the object ends: about 5% on top of a
// plain parse, where nlohmann's callback parser costs 50%. A hash match is confirmed by
// RepeatedKey, which names the key.
class KeyCheckingParser {
 public:
  using json = nlohmann::json;
  explicit KeyCheckingParser(json* root) : dom_(*root, /*allow_exceptions=*/true) {}

  bool repeated() const { return repeated_; }

  bool null() { return dom_.null(); }
  bool boolean(bool v) { return dom_.boolean(v); }
  bool number_integer(json::number_integer_t v) { return dom_.number_integer(v); }
  bool number_unsigned(json::number_unsigned_t v) { return dom_.number_unsigned(v); }
  bool number_float(json::number_float_t v, const json::string_t& s) {
    return dom_.number_float(v, s);
  }
  bool string(json::string_t& v) { return dom_.string(v); }
  bool binary(json::binary_t& v) { return dom_.binary(v); }
  bool start_array(size_t n) { return dom_.start_array(n); }
  bool end_array() { return dom_.end_array(); }
  bool start_object(size_t n) {
    starts_.push_back(hashes_.size());
    return dom_.start_object(n);
  }
  bool key(json::string_t& k) {
    hashes_.push_back(std::hash<std::string_view>()(k));
    return dom_.key(k);
  }
  bool end_object() {
    const auto first = hashes_.begin() + static_cast<std::ptrdiff_t>(starts_.back());
    std::sort(first, hashes_.end());
    if (std::adjacent_find(first, hashes_.end()) != hashes_.end()) repeated_ = true;
    hashes_.erase(first, hashes_.end());
    starts_.pop_back();
    return dom_.end_object();
  }
  template <class Exception>
  bool parse_error(size_t at, const std::string& token, const Exception& e) {
    return dom_.parse_error(at, token, e);
  }

 private:
  nlohmann::detail::json_sax_dom_parser<json> dom_;
  std::vector<size_t> hashes_;  // of the keys of the open objects, innermost last
  std::vector<size_t> starts_;  // where each open object's hashes begin
  bool repeated_ = false;
};

// The first key `text` gives twice in one object, quoted; "" if none does (a hash collision).
std::string RepeatedKey(std::string_view text) {
  using Event = nlohmann::json::parse_event_t;
  std::vector<std::set<std::string, std::less<>>> keys;  // one set per open object
  std::string repeated;
  const nlohmann::json ignored =
      nlohmann::json::parse(text, [&](int /*depth*/, Event event, nlohmann::json& parsed) {
        if (event == Event::object_start) {
          keys.emplace_back();
        } else if (event == Event::object_end) {
          if (!keys.empty()) keys.pop_back();
        } else if (event == Event::key && !keys.empty() && repeated.empty()) {
          const auto& key = parsed.get_ref<const std::string&>();
          if (!keys.back().insert(key).second) repeated = key;
        }
        return true;
      });
  if (repeated.empty()) return "";
  return nlohmann::json(repeated).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

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
  // A key given twice in one object is refused, not resolved: nlohmann keeps the last one,
  // so {"tags": {...}, "tags": "x"} would silently drop what the sender meant first.
  try {
    nlohmann::json parsed;
    KeyCheckingParser sax(&parsed);
    nlohmann::json::sax_parse(text, &sax);
    if (sax.repeated()) {
      if (std::string key = RepeatedKey(text); !key.empty()) {
        return Status::InvalidArgument(std::string(what) + " gives the key " + key +
                                       " twice in one object; give each key once");
      }
    }
    return parsed;
  } catch (const nlohmann::json::exception& e) {
    return Status::InvalidArgument(std::string(what) + " is not JSON: " + e.what());
  }
}

}  // namespace sluice
