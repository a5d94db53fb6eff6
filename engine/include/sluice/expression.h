// Expressions: the small, side-effect-free language of `when` conditions (and, later,
// deployment gates). It has no loops, no calls and no access to anything but the values the
// caller resolves, so evaluating a user's expression cannot execute code.
//
//   evaluate.auc >= 0.9 and not prepare.empty
//   prepare.rows > 1000 or params_check.force == true
//   (a.x + b.x) / 2 < 0.5 and split.kind != 'holdout'
//
// Grammar, lowest precedence first:
//   or  ->  and ("or" and)*          and -> not ("and" not)*       not -> "not" not | cmp
//   cmp ->  sum (("=="|"!="|"<"|"<="|">"|">=") sum)?
//   sum ->  prod (("+"|"-") prod)*   prod -> unary (("*"|"/") unary)*    unary -> "-" unary | atom
//   atom -> number | 'string' | "string" | true | false | null | path | "(" or ")"
//   path -> name ("." name)*         name -> letter or "_", then letters, digits, "_" or "-"
// A "-" between two names needs spaces ("a - b"); "a-b" is the name "a-b".
//
// Semantics: numbers compare numerically, strings lexicographically; "==" between different
// types is false; "<" between different types is an error. "and"/"or" short-circuit and
// yield booleans; truthiness: null, false, 0 and "" are false, everything else is true.
//
// Limits: the text is at most kMaxExpressionBytes; parentheses, "not" and unary "-" nest at most
// kMaxExpressionNesting levels; and no chain of operators is more than kMaxExpressionHeight
// levels deep ("1 + 1 + ... + 1" with 1,000 "+"). Past a limit Parse fails with the offset
// where it was crossed, so that no input decides how deep parsing, evaluation or destruction
// recurse.
//
// Thread safety: an Expression is immutable after Parse; Evaluate may run concurrently.
#ifndef SLUICE_EXPRESSION_H_
#define SLUICE_EXPRESSION_H_

#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/status.h"

namespace sluice {

inline constexpr size_t kMaxExpressionBytes = size_t{64} * 1024;
inline constexpr size_t kMaxExpressionNesting = 128;
inline constexpr size_t kMaxExpressionHeight = 1000;

struct ExpressionError {
  size_t offset = 0;  // 0-based byte offset into the expression text
  std::string message;
};

class Expression {
 public:
  struct Reference {
    std::vector<std::string> path;  // e.g. {"evaluate", "auc"}
    size_t offset = 0;              // where it starts in the text
  };
  // Returns the value a path names, or a non-OK Status that says why it has none.
  using Resolver = std::function<StatusOr<nlohmann::json>(const std::vector<std::string>& path)>;

  Expression(Expression&&) noexcept;
  Expression& operator=(Expression&&) noexcept;
  ~Expression();

  // Parses `text`. On failure, `error` (if given) gets the offset and message.
  static std::unique_ptr<Expression> Parse(std::string_view text, ExpressionError* error);

  const std::string& text() const { return text_; }
  // Every path the expression reads, in order of appearance.
  const std::vector<Reference>& references() const { return references_; }

  // The expression's value (a JSON number, string, boolean or null).
  StatusOr<nlohmann::json> Evaluate(const Resolver& resolve) const;
  // The expression's truthiness.
  StatusOr<bool> EvaluateCondition(const Resolver& resolve) const;

  struct Node;

 private:
  Expression();

  std::string text_;
  std::vector<Reference> references_;
  std::unique_ptr<Node> root_;
};

}  // namespace sluice

#endif  // SLUICE_EXPRESSION_H_
