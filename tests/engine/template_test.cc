#include "sluice/template.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

namespace sluice {
namespace {

using nlohmann::json;

const json kContext = {{"params", {{"fraction", 0.2}, {"name", "bc"}, {"nested", {{"k", 3}}}}},
                       {"ds", "2026-01-02"},
                       {"run_id", "manual__2026-01-02T00:00:00Z"},
                       {"dag", {{"id", "train"}}}};

json RenderText(const std::string& text) {
  TemplateError error;
  auto t = Template::Parse(text, &error);
  REQUIRE_MESSAGE(t.has_value(), error.message);
  StatusOr<json> v = t->Render(kContext);
  REQUIRE_MESSAGE(v.ok(), v.status().message());
  return *v;
}

TEST_CASE("Template.Render.SinglePlaceholderKeepsItsType") {
  CHECK(RenderText("{{ params.fraction }}") == json(0.2));
  CHECK(RenderText("{{params.nested}}") == json({{"k", 3}}));
  CHECK(RenderText("{{ params.nested.k }}") == json(3));
}

TEST_CASE("Template.Render.InterpolatesIntoText") {
  CHECK(RenderText("data/{{ ds }}/{{ params.name }}.csv") == json("data/2026-01-02/bc.csv"));
  CHECK(RenderText("f={{ params.fraction }}") == json("f=0.2"));
  CHECK(RenderText("{{ dag.id }}-{{ run_id }}") == json("train-manual__2026-01-02T00:00:00Z"));
  CHECK(RenderText("no placeholders") == json("no placeholders"));
  CHECK(RenderText("{{ '{{' }} literal") == json("{{ literal"));
}

TEST_CASE("Template.Render.MissingValueIsAnError") {
  auto t = Template::Parse("{{ logical_date }}", nullptr);
  REQUIRE(t.has_value());
  StatusOr<json> v = t->Render(kContext);
  REQUIRE_FALSE(v.ok());
  CHECK(v.status().message().find("logical_date") != std::string::npos);
}

TEST_CASE("Template.Parse.RejectsMalformedPlaceholders") {
  struct Case {
    const char* text;
    size_t offset;
    const char* message;
  };
  const Case cases[] = {
      {"x {{ ds", 2, "not closed"},
      {"{{ }}", 0, "empty placeholder"},
      {"{{ ds | upper }}", 0, "not a variable name"},
      {"a }} b", 2, "without a matching"},
      {"{{ params..x }}", 0, "not a variable name"},
      {"{{ 'open }}", 0, "not closed"},
  };
  for (const Case& c : cases) {
    const std::string shown = c.text;
    CAPTURE(shown);
    TemplateError error;
    CHECK_FALSE(Template::Parse(c.text, &error).has_value());
    CHECK(error.offset == c.offset);
    CHECK(error.message.find(c.message) != std::string::npos);
  }
}

TEST_CASE("Template.CheckVariable.KnowsRunVariablesAndParams") {
  const json params = {{"threshold", 0.5}, {"cfg", {{"depth", 3}}}};
  auto check = [&](const std::string& text) {
    auto t = Template::Parse(text, nullptr);
    REQUIRE(t.has_value());
    REQUIRE(t->placeholders().size() == 1);
    return CheckTemplateVariable(t->placeholders()[0], params);
  };
  for (const TemplateVariable& v : TemplateVariables()) {
    CAPTURE(v.name);
    CHECK_FALSE(check("{{ " + std::string(v.name) + " }}").has_value());
  }
  CHECK_FALSE(check("{{ params.threshold }}").has_value());
  CHECK_FALSE(check("{{ params.cfg.depth }}").has_value());
  CHECK_FALSE(check("{{ 'literal' }}").has_value());

  auto typo = check("{{ params.treshold }}");
  REQUIRE(typo.has_value());
  CHECK(typo->hint == "did you mean \"threshold\"?");
  auto field = check("{{ params.cfg.width }}");
  REQUIRE(field.has_value());
  CHECK(field->message.find("no field \"width\"") != std::string::npos);
  auto bare = check("{{ params }}");
  REQUIRE(bare.has_value());
  auto unknown = check("{{ data_interval_begin }}");
  REQUIRE(unknown.has_value());
  CHECK(unknown->hint == "did you mean \"data_interval_end\"?");
}

}  // namespace
}  // namespace sluice
