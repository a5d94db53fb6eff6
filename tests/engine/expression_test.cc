#include "sluice/expression.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

namespace sluice {
namespace {

using nlohmann::json;

// Resolves paths against a fixed JSON document: {"a": {"x": 1}} makes a.x = 1.
Expression::Resolver From(const json& doc) {
  return [doc](const std::vector<std::string>& path) -> StatusOr<json> {
    const json* node = &doc;
    for (const std::string& part : path) {
      if (!node->is_object() || !node->contains(part)) {
        return Status::NotFound("no value for " + part);
      }
      node = &(*node)[part];
    }
    return *node;
  };
}

TEST_CASE("Expression.Evaluate.Table") {
  const json doc = {{"evaluate", {{"auc", 0.93}, {"name", "xgb"}}},
                    {"prepare", {{"rows", 1200}, {"empty", false}}},
                    {"prod", {{"auc", 0.95}}},
                    {"my-task", {{"ok", true}}}};
  struct Case {
    const char* text;
    json want;
  };
  const Case cases[] = {
      {"evaluate.auc >= 0.9", true},
      {"evaluate.auc >= 0.95", false},
      {"prepare.rows > 1000 and not prepare.empty", true},
      {"prepare.rows > 5000 or evaluate.name == 'xgb'", true},
      {"evaluate.auc >= prod.auc - 0.02", true},
      {"evaluate.auc >= prod.auc - 0.01", false},
      {"(1 + 2) * 3", 9.0},
      {"1 + 2 * 3", 7.0},
      {"-2 * -3", 6.0},
      {"10 / 4", 2.5},
      {"'a' + \"b\"", "ab"},
      {"evaluate.name != 'lr'", true},
      {"'abc' < 'abd'", true},
      {"1 == '1'", false},
      {"null == null", true},
      {"not 0", true},
      {"my-task.ok", true},
      {"1e3 == 1000", true},
      {".5 == 0.5", true},
  };
  for (const Case& c : cases) {
    const std::string shown = c.text;
    CAPTURE(shown);
    ExpressionError error;
    auto expr = Expression::Parse(c.text, &error);
    REQUIRE_MESSAGE(expr != nullptr, error.message);
    StatusOr<json> got = expr->Evaluate(From(doc));
    REQUIRE_MESSAGE(got.ok(), got.status().message());
    CHECK(*got == c.want);
  }
}

TEST_CASE("Expression.Evaluate.ShortCircuitsAndReportsTypeErrors") {
  auto expr = Expression::Parse("false and missing.value", nullptr);
  REQUIRE(expr != nullptr);
  StatusOr<bool> v = expr->EvaluateCondition(From(json::object()));
  REQUIRE(v.ok());
  CHECK_FALSE(*v);

  auto unresolved = Expression::Parse("missing.value > 1", nullptr);
  REQUIRE(unresolved != nullptr);
  CHECK_FALSE(unresolved->Evaluate(From(json::object())).ok());

  auto mixed = Expression::Parse("'a' < 1", nullptr);
  REQUIRE(mixed != nullptr);
  StatusOr<json> r = mixed->Evaluate(From(json::object()));
  REQUIRE_FALSE(r.ok());
  CHECK(r.status().message().find("cannot compare string < number") != std::string::npos);

  auto div = Expression::Parse("1 / 0", nullptr);
  REQUIRE(div != nullptr);
  CHECK_FALSE(div->Evaluate(From(json::object())).ok());
}

TEST_CASE("Expression.Parse.ListsReferencesWithOffsets") {
  auto expr = Expression::Parse("a.x > 1 and b.y.z == 'q'", nullptr);
  REQUIRE(expr != nullptr);
  REQUIRE(expr->references().size() == 2);
  CHECK(expr->references()[0].path == std::vector<std::string>{"a", "x"});
  CHECK(expr->references()[0].offset == 0);
  CHECK(expr->references()[1].path == std::vector<std::string>{"b", "y", "z"});
  CHECK(expr->references()[1].offset == 12);
}

TEST_CASE("Expression.Parse.ErrorsSayWhereAndWhat") {
  struct Case {
    const char* text;
    size_t offset;
    const char* message;
  };
  const Case cases[] = {
      {"", 0, "empty"},
      {"a.x = 1", 4, "use \"==\""},
      {"a.x && b.y", 4, "use \"and\""},
      {"(a.x > 1", 0, "not closed"},
      {"a.x > ", 6, "ends where a value was expected"},
      {"a.x > 1 2", 8, "unexpected \"2\""},
      {"'open", 0, "string is not closed"},
      {"1 < 2 < 3", 6, "do not chain"},
      {"a. > 1", 3, "expected a name after \".\""},
      {"and a.x", 0, "expected a value before \"and\""},
      {"a.x $ 1", 4, "unexpected character"},
  };
  for (const Case& c : cases) {
    const std::string shown = c.text;
    CAPTURE(shown);
    ExpressionError error;
    CHECK(Expression::Parse(c.text, &error) == nullptr);
    CHECK(error.offset == c.offset);
    CHECK(error.message.find(c.message) != std::string::npos);
  }
}

// Issue 15: a `when` of 10,000 nested parentheses, or 100,000 "not"s, crashed the loader (and
// the daemon that rescanned it) with SIGSEGV. Nesting is now refused at a fixed depth, with
// the offset where it goes too deep, and no recursion depth follows from the input.
TEST_CASE("Expression.Parse.RefusesNestingPastTheLimit") {
  std::string parens = std::string(10000, '(') + "1" + std::string(10000, ')');
  std::string nots;
  for (int i = 0; i < 10000; ++i) nots += "not ";
  nots += "true";
  std::string negations = std::string(50000, '-') + "1";
  std::string chain = "1";
  for (int i = 0; i < 10000; ++i) chain += " + 1";
  std::string ands = "true";
  for (int i = 0; i < 5000; ++i) ands += " and true";
  for (const std::string* text : {&parens, &nots, &negations, &chain, &ands}) {
    const std::string head = text->substr(0, 20);
    CAPTURE(head);
    ExpressionError error;
    CHECK(Expression::Parse(*text, &error) == nullptr);
    CHECK(error.message.find("levels") != std::string::npos);
    CHECK(error.offset > 0);
    CHECK(error.offset < text->size());
  }
  // The 100,000 "not"s are past the size limit as well: refused before parsing.
  std::string many_nots;
  for (int i = 0; i < 100000; ++i) many_nots += "not ";
  ExpressionError size_error;
  CHECK(Expression::Parse(many_nots + "true", &size_error) == nullptr);
  CHECK(size_error.message.find("bytes") != std::string::npos);
  // Within the limits, deep is fine and evaluates.
  std::string ok = std::string(kMaxExpressionNesting - 1, '(') + "2" +
                   std::string(kMaxExpressionNesting - 1, ')') + " > 1";
  ExpressionError error;
  auto expr = Expression::Parse(ok, &error);
  REQUIRE_MESSAGE(expr != nullptr, error.message);
  CHECK(*expr->EvaluateCondition(From(json::object())));
  std::string sum = "0";
  for (int i = 0; i < 500; ++i) sum += " + 1";
  expr = Expression::Parse(sum, &error);
  REQUIRE_MESSAGE(expr != nullptr, error.message);
  CHECK(expr->Evaluate(From(json::object()))->get<double>() == 500.0);
}

TEST_CASE("Expression.Parse.RefusesTextPastTheSizeLimit") {
  std::string big = "a.x == '" + std::string(kMaxExpressionBytes, 'x') + "'";
  ExpressionError error;
  CHECK(Expression::Parse(big, &error) == nullptr);
  CHECK(error.message.find("bytes") != std::string::npos);
}

}  // namespace
}  // namespace sluice
