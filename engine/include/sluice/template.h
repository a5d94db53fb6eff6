// Templates in DAG string values: "{{ params.path }}/{{ ds }}.csv".
//
// A placeholder is `{{ NAME }}` where NAME is one of the run variables below or a dotted
// path under `params.`; spaces inside the braces are optional. `{{ 'text' }}` inserts text
// as is (the way to write a literal "{{"). There are no filters, calls or code: rendering
// only looks values up. A string that is exactly one placeholder renders to the variable's
// own value and type (so `"{{ params.test_fraction }}"` stays a number); anything else
// renders to a string.
//
// Thread safety: a Template is immutable after Parse.
#ifndef SLUICE_TEMPLATE_H_
#define SLUICE_TEMPLATE_H_

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/status.h"

namespace sluice {

struct TemplateVariable {
  std::string_view name;
  std::string_view doc;
};

// The run variables, in the order the docs list them. `params.*` is not listed here.
const std::vector<TemplateVariable>& TemplateVariables();

// A template longer than this, or with more placeholders, is refused by Parse. Parsing and
// rendering are linear (no nesting: a placeholder only looks a value up).
inline constexpr size_t kMaxTemplateBytes = 1u << 20;
inline constexpr size_t kMaxTemplatePlaceholders = 10000;

struct TemplateError {
  size_t offset = 0;  // 0-based byte offset in the text
  std::string message;
  std::string hint;
};

class Template {
 public:
  struct Placeholder {
    std::vector<std::string> path;  // {"params", "x"}, {"ds"}; empty for a quoted literal
    std::string literal;            // the text of a quoted literal
    size_t offset = 0;              // offset of the "{{" in the text
  };

  // Parses `text`; returns nullopt and fills `error` when a placeholder is malformed.
  static std::optional<Template> Parse(std::string_view text, TemplateError* error);

  bool has_placeholders() const { return !placeholders_.empty(); }
  const std::vector<Placeholder>& placeholders() const { return placeholders_; }

  // Renders against `context`, a JSON object holding the run variables and `params`.
  StatusOr<nlohmann::json> Render(const nlohmann::json& context) const;

 private:
  // The text alternates literal pieces and placeholders: pieces_[i] precedes placeholders_[i].
  std::vector<std::string> pieces_;
  std::vector<Placeholder> placeholders_;
};

// Checks one placeholder's variable against the run variables and the DAG's params.
// Returns an error (message and hint) when the name is unknown; nullopt when it is fine.
// `params` is the DAG's [params] table.
std::optional<TemplateError> CheckTemplateVariable(const Template::Placeholder& placeholder,
                                                   const nlohmann::json& params);

}  // namespace sluice

#endif  // SLUICE_TEMPLATE_H_
