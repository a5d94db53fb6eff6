#include "sluice/template.h"

#include <cctype>
#include <nlohmann/json.hpp>

#include "sluice/suggest.h"

namespace sluice {

using nlohmann::json;

const std::vector<TemplateVariable>& TemplateVariables() {
  static const std::vector<TemplateVariable> kVariables = {
      {"ds", "the run's logical date, YYYY-MM-DD"},
      {"ds_nodash", "the logical date, YYYYMMDD"},
      {"ts", "the logical date and time, ISO 8601 with offset"},
      {"logical_date", "the logical date and time, ISO 8601 UTC"},
      {"data_interval_start", "start of the run's data interval, ISO 8601 UTC"},
      {"data_interval_end", "end of the run's data interval, ISO 8601 UTC"},
      {"run_id", "the run's id"},
      {"dag.id", "the DAG's id"},
      {"dag.folder", "the absolute folder of the DAG file (for data that sits beside it)"},
      {"task.id", "the task's id"},
  };
  return kVariables;
}

namespace {

bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

std::string JoinPath(const std::vector<std::string>& path) {
  std::string out;
  for (const std::string& part : path) {
    if (!out.empty()) out += '.';
    out += part;
  }
  return out;
}

// Parses the inside of "{{ ... }}"; `base` is the offset of the "{{".
bool ParseInner(std::string_view inner, size_t base, Template::Placeholder* out,
                TemplateError* error) {
  size_t b = 0, e = inner.size();
  while (b < e && std::isspace(static_cast<unsigned char>(inner[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(inner[e - 1]))) --e;
  std::string_view body = inner.substr(b, e - b);
  out->offset = base;
  if (body.empty()) {
    *error = {base, "empty placeholder \"{{}}\"", "put a variable inside, e.g. {{ ds }}"};
    return false;
  }
  if (body.front() == '\'' || body.front() == '"') {
    if (body.size() < 2 || body.back() != body.front()) {
      *error = {base, "quoted text in a placeholder is not closed", "write {{ '{{' }}"};
      return false;
    }
    out->literal = std::string(body.substr(1, body.size() - 2));
    return true;
  }
  size_t i = 0;
  while (i <= body.size()) {
    size_t start = i;
    while (i < body.size() && IsNameChar(body[i])) ++i;
    if (i == start) {
      std::string what = i < body.size() ? std::string(1, body[i]) : std::string("the end");
      *error = {base, "placeholder \"{{ " + std::string(body) + " }}\" is not a variable name",
                "templates only look values up (no filters or expressions); write e.g. "
                "{{ params.name }} or {{ ds }}"};
      return false;
    }
    out->path.emplace_back(body.substr(start, i - start));
    if (i == body.size()) break;
    if (body[i] != '.') {
      *error = {base, "placeholder \"{{ " + std::string(body) + " }}\" is not a variable name",
                "templates only look values up (no filters or expressions); write e.g. "
                "{{ params.name }} or {{ ds }}"};
      return false;
    }
    ++i;
  }
  return true;
}

const json* Lookup(const json& context, const std::vector<std::string>& path) {
  const json* node = &context;
  for (const std::string& part : path) {
    if (!node->is_object()) return nullptr;
    auto it = node->find(part);
    if (it == node->end()) return nullptr;
    node = &*it;
  }
  return node;
}

}  // namespace

std::optional<Template> Template::Parse(std::string_view text, TemplateError* error) {
  if (text.size() > kMaxTemplateBytes) {
    *error = {0,
              "the text is " + std::to_string(text.size()) + " bytes, more than the limit of " +
                  std::to_string(kMaxTemplateBytes) + " for a templated value",
              "pass large text as a file (an input) instead of a param"};
    return std::nullopt;
  }
  Template t;
  std::string piece;
  size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 2, "{{") == 0) {
      size_t close = text.find("}}", i + 2);
      if (close == std::string_view::npos) {
        *error = {i, "\"{{\" is not closed by \"}}\"",
                  "close the placeholder, or write {{ '{{' }} for a literal \"{{\""};
        return std::nullopt;
      }
      if (t.placeholders_.size() == kMaxTemplatePlaceholders) {
        *error = {
            i,
            "more than " + std::to_string(kMaxTemplatePlaceholders) + " placeholders in one value",
            "pass large text as a file (an input) instead of a param"};
        return std::nullopt;
      }
      Placeholder placeholder;
      if (!ParseInner(text.substr(i + 2, close - i - 2), i, &placeholder, error)) {
        return std::nullopt;
      }
      t.pieces_.push_back(std::move(piece));
      piece.clear();
      t.placeholders_.push_back(std::move(placeholder));
      i = close + 2;
      continue;
    }
    if (text.compare(i, 2, "}}") == 0) {
      *error = {i, "\"}}\" without a matching \"{{\"",
                "write {{ '}}' }} for a literal \"}}\", or add the missing \"{{\""};
      return std::nullopt;
    }
    piece += text[i++];
  }
  t.pieces_.push_back(std::move(piece));
  return t;
}

StatusOr<json> Template::Render(const json& context) const {
  auto value_of = [&](const Placeholder& p) -> StatusOr<json> {
    if (p.path.empty()) return json(p.literal);
    const json* v = Lookup(context, p.path);
    if (v == nullptr) {
      return Status::InvalidArgument("template variable \"" + JoinPath(p.path) +
                                     "\" has no value in this run");
    }
    return *v;
  };
  // Exactly one placeholder and no text around it: keep the value's type.
  if (placeholders_.size() == 1 && pieces_[0].empty() && pieces_[1].empty()) {
    return value_of(placeholders_[0]);
  }
  std::string out = pieces_[0];
  for (size_t i = 0; i < placeholders_.size(); ++i) {
    StatusOr<json> v = value_of(placeholders_[i]);
    if (!v.ok()) return v.status();
    out += v->is_string() ? v->get<std::string>()
                          : v->dump(-1, ' ', false, json::error_handler_t::replace);
    out += pieces_[i + 1];
  }
  return json(out);
}

std::optional<TemplateError> CheckTemplateVariable(const Template::Placeholder& placeholder,
                                                   const json& params) {
  if (placeholder.path.empty()) return std::nullopt;  // a quoted literal
  const std::string name = JoinPath(placeholder.path);
  if (placeholder.path[0] == "params") {
    if (placeholder.path.size() == 1) {
      return TemplateError{placeholder.offset, "\"{{ params }}\" needs a parameter name",
                           "write {{ params.NAME }} for a NAME declared under [params]"};
    }
    const std::string& param = placeholder.path[1];
    if (!params.contains(param)) {
      std::vector<std::string> names;
      for (const auto& item : params.items()) names.push_back(item.key());
      std::string hint = DidYouMean(param, names);
      if (hint.empty()) {
        hint = params.empty() ? "declare it under [params] in the DAG file"
                              : "declare it under [params]; declared: ";
        if (!params.empty()) {
          for (size_t i = 0; i < names.size(); ++i) hint += (i ? ", " : "") + names[i];
        }
      }
      return TemplateError{
          placeholder.offset,
          "unknown template variable \"" + name + "\": no parameter \"" + param + "\" in [params]",
          hint};
    }
    // Deeper paths must exist in the default value's structure.
    const json* node = &params[param];
    for (size_t i = 2; i < placeholder.path.size(); ++i) {
      if (!node->is_object() || !node->contains(placeholder.path[i])) {
        std::string message = "unknown template variable \"" + name + "\": parameter \"";
        message += param + "\" has no field \"" + placeholder.path[i] + "\"";
        return TemplateError{placeholder.offset, std::move(message), ""};
      }
      node = &(*node)[placeholder.path[i]];
    }
    return std::nullopt;
  }
  std::vector<std::string> known;
  for (const TemplateVariable& v : TemplateVariables()) {
    if (v.name == name) return std::nullopt;
    known.emplace_back(v.name);
  }
  std::string hint = DidYouMean(name, known);
  if (hint.empty()) {
    hint = "known variables: params.NAME";
    for (const std::string& k : known) hint += ", " + k;
  }
  return TemplateError{placeholder.offset, "unknown template variable \"" + name + "\"", hint};
}

}  // namespace sluice
