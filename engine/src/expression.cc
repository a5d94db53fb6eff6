#include "sluice/expression.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <variant>

namespace sluice {

using nlohmann::json;

enum class Op { kOr, kAnd, kNot, kEq, kNe, kLt, kLe, kGt, kGe, kAdd, kSub, kMul, kDiv, kNeg };

struct Expression::Node {
  // A literal, a path (index into references_), or an operator with one or two operands.
  struct Literal {
    json value;
  };
  struct Path {
    size_t reference;
  };
  struct Operator {
    Op op;
    std::unique_ptr<Node> lhs;
    std::unique_ptr<Node> rhs;  // null for unary operators
  };
  std::variant<Literal, Path, Operator> kind;
  size_t offset = 0;
  size_t height = 1;  // 1 for a leaf; an operator is one more than its deepest operand
};

namespace {

enum class Tok { kEnd, kNumber, kString, kName, kLParen, kRParen, kOp };

struct Token {
  Tok kind = Tok::kEnd;
  std::string text;  // name, string contents, or operator spelling
  double number = 0;
  size_t offset = 0;
};

bool IsNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

class Parser {
 public:
  Parser(std::string_view text, std::vector<Expression::Reference>* refs)
      : text_(text), refs_(refs) {}

  std::unique_ptr<Expression::Node> ParseAll(ExpressionError* error) {
    if (!Advance()) return Fail(error);
    auto node = ParseOr();
    if (!node) return Fail(error);
    if (tok_.kind != Tok::kEnd) {
      SetError(tok_.offset, "unexpected \"" + tok_.text + "\" after the end of the expression");
      return Fail(error);
    }
    return node;
  }

 private:
  using NodePtr = std::unique_ptr<Expression::Node>;

  NodePtr Fail(ExpressionError* error) {
    if (error) *error = error_;
    return nullptr;
  }
  void SetError(size_t offset, std::string message) {
    if (failed_) return;
    failed_ = true;
    error_ = {offset, std::move(message)};
  }

  bool Advance() {
    while (pos_ < text_.size() && std::isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
    tok_ = Token{};
    tok_.offset = pos_;
    if (pos_ >= text_.size()) return true;
    char c = text_[pos_];
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        (c == '.' && pos_ + 1 < text_.size() &&
         std::isdigit(static_cast<unsigned char>(text_[pos_ + 1])))) {
      const char* begin = text_.data() + pos_;
      char* end = nullptr;
      // strtod needs a terminated buffer; copy the longest plausible numeric run.
      size_t n = 0;
      while (pos_ + n < text_.size() &&
             (std::isalnum(static_cast<unsigned char>(text_[pos_ + n])) || text_[pos_ + n] == '.' ||
              ((text_[pos_ + n] == '+' || text_[pos_ + n] == '-') && n > 0 &&
               (text_[pos_ + n - 1] == 'e' || text_[pos_ + n - 1] == 'E')))) {
        ++n;
      }
      std::string digits(begin, n);
      tok_.number = std::strtod(digits.c_str(), &end);
      if (end != digits.c_str() + digits.size()) {
        SetError(pos_, "\"" + digits + "\" is not a number");
        return false;
      }
      tok_.kind = Tok::kNumber;
      tok_.text = digits;
      pos_ += n;
      return true;
    }
    if (c == '\'' || c == '"') {
      size_t close = text_.find(c, pos_ + 1);
      if (close == std::string_view::npos) {
        SetError(pos_, "string is not closed (add a matching " + std::string(1, c) + ")");
        return false;
      }
      tok_.kind = Tok::kString;
      tok_.text = std::string(text_.substr(pos_ + 1, close - pos_ - 1));
      pos_ = close + 1;
      return true;
    }
    if (IsNameStart(c)) {
      size_t start = pos_;
      while (pos_ < text_.size() && IsNameChar(text_[pos_])) ++pos_;
      // A trailing '-' belongs to an operator, not the name ("a- b").
      while (pos_ > start && text_[pos_ - 1] == '-') --pos_;
      tok_.kind = Tok::kName;
      tok_.text = std::string(text_.substr(start, pos_ - start));
      return true;
    }
    if (c == '(' || c == ')') {
      tok_.kind = c == '(' ? Tok::kLParen : Tok::kRParen;
      tok_.text = std::string(1, c);
      ++pos_;
      return true;
    }
    static constexpr std::string_view kTwo[] = {"==", "!=", "<=", ">="};
    for (std::string_view op : kTwo) {
      if (text_.substr(pos_, 2) == op) {
        tok_.kind = Tok::kOp;
        tok_.text = std::string(op);
        pos_ += 2;
        return true;
      }
    }
    if (std::string_view("<>+-*/.").find(c) != std::string_view::npos) {
      tok_.kind = Tok::kOp;
      tok_.text = std::string(1, c);
      ++pos_;
      return true;
    }
    if (c == '=') {
      SetError(pos_, "\"=\" is not an operator (use \"==\" to compare)");
      return false;
    }
    if (c == '&' || c == '|' || c == '!') {
      SetError(pos_,
               std::string("\"") + c + "\" is not an operator (use \"and\", \"or\", \"not\")");
      return false;
    }
    SetError(pos_, std::string("unexpected character \"") + c + "\"");
    return false;
  }

  bool IsKeyword(std::string_view word) const {
    return tok_.kind == Tok::kName && tok_.text == word;
  }
  bool IsOp(std::string_view op) const { return tok_.kind == Tok::kOp && tok_.text == op; }

  NodePtr MakeOp(Op op, size_t offset, NodePtr lhs, NodePtr rhs) {
    const size_t height = 1 + std::max(lhs->height, rhs ? rhs->height : 0);
    if (height > kMaxExpressionHeight) {
      SetError(offset, "the expression is more than " + std::to_string(kMaxExpressionHeight) +
                           " levels of operators deep; split it into simpler conditions");
      return nullptr;
    }
    auto node = std::make_unique<Expression::Node>();
    node->height = height;
    node->kind = Expression::Node::Operator{op, std::move(lhs), std::move(rhs)};
    node->offset = offset;
    return node;
  }

  NodePtr ParseOr() {
    NodePtr lhs = ParseAnd();
    while (lhs && IsKeyword("or")) {
      size_t at = tok_.offset;
      if (!Advance()) return nullptr;
      NodePtr rhs = ParseAnd();
      if (!rhs) return nullptr;
      lhs = MakeOp(Op::kOr, at, std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  NodePtr ParseAnd() {
    NodePtr lhs = ParseNot();
    while (lhs && IsKeyword("and")) {
      size_t at = tok_.offset;
      if (!Advance()) return nullptr;
      NodePtr rhs = ParseNot();
      if (!rhs) return nullptr;
      lhs = MakeOp(Op::kAnd, at, std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  // Counts one level of nesting for as long as it lives; false past the limit (with the error
  // set at `offset`).
  class Nesting {
   public:
    Nesting(Parser* parser, size_t offset) : parser_(parser) {
      if (++parser_->nesting_ > kMaxExpressionNesting) {
        parser_->SetError(offset, "the expression nests parentheses, \"not\" and \"-\" more than " +
                                      std::to_string(kMaxExpressionNesting) +
                                      " levels deep; simplify it");
      }
    }
    ~Nesting() { --parser_->nesting_; }
    bool ok() const { return parser_->nesting_ <= kMaxExpressionNesting; }

   private:
    Parser* parser_;
  };

  NodePtr ParseNot() {
    if (IsKeyword("not")) {
      size_t at = tok_.offset;
      Nesting nesting(this, at);
      if (!nesting.ok()) return nullptr;
      if (!Advance()) return nullptr;
      NodePtr operand = ParseNot();
      if (!operand) return nullptr;
      return MakeOp(Op::kNot, at, std::move(operand), nullptr);
    }
    return ParseComparison();
  }

  NodePtr ParseComparison() {
    NodePtr lhs = ParseSum();
    if (!lhs) return nullptr;
    static constexpr std::pair<std::string_view, Op> kOps[] = {{"==", Op::kEq}, {"!=", Op::kNe},
                                                               {"<", Op::kLt},  {"<=", Op::kLe},
                                                               {">", Op::kGt},  {">=", Op::kGe}};
    for (auto [spelling, op] : kOps) {
      if (IsOp(spelling)) {
        size_t at = tok_.offset;
        if (!Advance()) return nullptr;
        NodePtr rhs = ParseSum();
        if (!rhs) return nullptr;
        for (auto [again, unused] : kOps) {
          if (IsOp(again)) {
            SetError(tok_.offset, "comparisons do not chain; join them with \"and\"");
            return nullptr;
          }
        }
        return MakeOp(op, at, std::move(lhs), std::move(rhs));
      }
    }
    return lhs;
  }

  NodePtr ParseSum() {
    NodePtr lhs = ParseProduct();
    while (lhs && (IsOp("+") || IsOp("-"))) {
      Op op = IsOp("+") ? Op::kAdd : Op::kSub;
      size_t at = tok_.offset;
      if (!Advance()) return nullptr;
      NodePtr rhs = ParseProduct();
      if (!rhs) return nullptr;
      lhs = MakeOp(op, at, std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  NodePtr ParseProduct() {
    NodePtr lhs = ParseUnary();
    while (lhs && (IsOp("*") || IsOp("/"))) {
      Op op = IsOp("*") ? Op::kMul : Op::kDiv;
      size_t at = tok_.offset;
      if (!Advance()) return nullptr;
      NodePtr rhs = ParseUnary();
      if (!rhs) return nullptr;
      lhs = MakeOp(op, at, std::move(lhs), std::move(rhs));
    }
    return lhs;
  }

  NodePtr ParseUnary() {
    if (IsOp("-")) {
      size_t at = tok_.offset;
      Nesting nesting(this, at);
      if (!nesting.ok()) return nullptr;
      if (!Advance()) return nullptr;
      NodePtr operand = ParseUnary();
      if (!operand) return nullptr;
      return MakeOp(Op::kNeg, at, std::move(operand), nullptr);
    }
    return ParseAtom();
  }

  NodePtr ParseAtom() {
    auto node = std::make_unique<Expression::Node>();
    node->offset = tok_.offset;
    switch (tok_.kind) {
      case Tok::kEnd:
        SetError(tok_.offset, tok_.offset == 0 ? "the expression is empty"
                                               : "the expression ends where a value was expected");
        return nullptr;
      case Tok::kNumber:
        node->kind = Expression::Node::Literal{json(tok_.number)};
        break;
      case Tok::kString:
        node->kind = Expression::Node::Literal{json(tok_.text)};
        break;
      case Tok::kLParen: {
        size_t open = tok_.offset;
        Nesting nesting(this, open);
        if (!nesting.ok()) return nullptr;
        if (!Advance()) return nullptr;
        NodePtr inner = ParseOr();
        if (!inner) return nullptr;
        if (tok_.kind != Tok::kRParen) {
          SetError(open, "\"(\" is not closed (add a \")\")");
          return nullptr;
        }
        if (!Advance()) return nullptr;
        return inner;
      }
      case Tok::kName: {
        if (tok_.text == "true" || tok_.text == "false") {
          node->kind = Expression::Node::Literal{json(tok_.text == "true")};
          break;
        }
        if (tok_.text == "null") {
          node->kind = Expression::Node::Literal{json(nullptr)};
          break;
        }
        if (tok_.text == "and" || tok_.text == "or" || tok_.text == "not") {
          SetError(tok_.offset, "expected a value before \"" + tok_.text + "\"");
          return nullptr;
        }
        Expression::Reference ref;
        ref.offset = tok_.offset;
        ref.path.push_back(tok_.text);
        if (!Advance()) return nullptr;
        while (IsOp(".")) {
          if (!Advance()) return nullptr;
          if (tok_.kind != Tok::kName) {
            SetError(tok_.offset, "expected a name after \".\"");
            return nullptr;
          }
          ref.path.push_back(tok_.text);
          if (!Advance()) return nullptr;
        }
        node->kind = Expression::Node::Path{refs_->size()};
        refs_->push_back(std::move(ref));
        return node;
      }
      case Tok::kRParen:
      case Tok::kOp:
        SetError(tok_.offset, "expected a value, found \"" + tok_.text + "\"");
        return nullptr;
    }
    if (!Advance()) return nullptr;
    return node;
  }

  std::string_view text_;
  std::vector<Expression::Reference>* refs_;
  size_t pos_ = 0;
  size_t nesting_ = 0;  // parentheses, "not" and unary "-" open around the current token
  Token tok_;
  bool failed_ = false;
  ExpressionError error_;
};

bool Truthy(const json& v) {
  if (v.is_null()) return false;
  if (v.is_boolean()) return v.get<bool>();
  if (v.is_number()) return v.get<double>() != 0.0;
  if (v.is_string()) return !v.get_ref<const std::string&>().empty();
  if (v.is_array() || v.is_object()) return !v.empty();
  return true;
}

std::string TypeName(const json& v) {
  if (v.is_number()) return "number";
  return v.type_name();
}

std::string_view OpName(Op op) {
  switch (op) {
    case Op::kOr:
      return "or";
    case Op::kAnd:
      return "and";
    case Op::kNot:
      return "not";
    case Op::kEq:
      return "==";
    case Op::kNe:
      return "!=";
    case Op::kLt:
      return "<";
    case Op::kLe:
      return "<=";
    case Op::kGt:
      return ">";
    case Op::kGe:
      return ">=";
    case Op::kAdd:
      return "+";
    case Op::kSub:
      return "-";
    case Op::kMul:
      return "*";
    case Op::kDiv:
      return "/";
    case Op::kNeg:
      return "-";
  }
  return "?";
}

class Evaluator {
 public:
  Evaluator(const std::vector<Expression::Reference>& refs, const Expression::Resolver& resolve)
      : refs_(refs), resolve_(resolve) {}

  StatusOr<json> Eval(const Expression::Node& node) {
    if (auto* lit = std::get_if<Expression::Node::Literal>(&node.kind)) return lit->value;
    if (auto* path = std::get_if<Expression::Node::Path>(&node.kind)) {
      return resolve_(refs_[path->reference].path);
    }
    const auto& op = std::get<Expression::Node::Operator>(node.kind);
    StatusOr<json> lhs = Eval(*op.lhs);
    if (!lhs.ok()) return lhs.status();
    switch (op.op) {
      case Op::kNot:
        return json(!Truthy(*lhs));
      case Op::kNeg:
        if (!lhs->is_number()) return TypeError(op.op, *lhs);
        return json(-lhs->get<double>());
      case Op::kAnd:
        if (!Truthy(*lhs)) return json(false);
        return Boolean(*op.rhs);
      case Op::kOr:
        if (Truthy(*lhs)) return json(true);
        return Boolean(*op.rhs);
      default:
        break;
    }
    StatusOr<json> rhs = Eval(*op.rhs);
    if (!rhs.ok()) return rhs.status();
    const json& a = *lhs;
    const json& b = *rhs;
    switch (op.op) {
      case Op::kEq:
        return json(Equal(a, b));
      case Op::kNe:
        return json(!Equal(a, b));
      case Op::kLt:
      case Op::kLe:
      case Op::kGt:
      case Op::kGe: {
        int cmp;
        if (a.is_number() && b.is_number()) {
          double x = a.get<double>(), y = b.get<double>();
          cmp = x < y ? -1 : (x > y ? 1 : 0);
        } else if (a.is_string() && b.is_string()) {
          cmp = a.get_ref<const std::string&>().compare(b.get_ref<const std::string&>());
        } else {
          return Status::InvalidArgument("cannot compare " + TypeName(a) + " " +
                                         std::string(OpName(op.op)) + " " + TypeName(b));
        }
        bool result = op.op == Op::kLt   ? cmp < 0
                      : op.op == Op::kLe ? cmp <= 0
                      : op.op == Op::kGt ? cmp > 0
                                         : cmp >= 0;
        return json(result);
      }
      case Op::kAdd:
        if (a.is_string() && b.is_string()) {
          return json(a.get<std::string>() + b.get<std::string>());
        }
        [[fallthrough]];
      case Op::kSub:
      case Op::kMul:
      case Op::kDiv: {
        if (!a.is_number()) return TypeError(op.op, a);
        if (!b.is_number()) return TypeError(op.op, b);
        double x = a.get<double>(), y = b.get<double>();
        if (op.op == Op::kDiv && y == 0.0) return Status::InvalidArgument("division by zero");
        double r = op.op == Op::kAdd   ? x + y
                   : op.op == Op::kSub ? x - y
                   : op.op == Op::kMul ? x * y
                                       : x / y;
        return json(r);
      }
      default:
        break;
    }
    return Status::Internal("unhandled operator");
  }

 private:
  StatusOr<json> Boolean(const Expression::Node& node) {
    StatusOr<json> v = Eval(node);
    if (!v.ok()) return v.status();
    return json(Truthy(*v));
  }
  static bool Equal(const json& a, const json& b) {
    if (a.is_number() && b.is_number()) return a.get<double>() == b.get<double>();
    return a == b;
  }
  static Status TypeError(Op op, const json& v) {
    return Status::InvalidArgument("operator \"" + std::string(OpName(op)) +
                                   "\" needs numbers, got " + TypeName(v) + " " +
                                   v.dump(-1, ' ', false, json::error_handler_t::replace));
  }

  const std::vector<Expression::Reference>& refs_;
  const Expression::Resolver& resolve_;
};

}  // namespace

Expression::Expression() = default;
Expression::Expression(Expression&&) noexcept = default;
Expression& Expression::operator=(Expression&&) noexcept = default;
Expression::~Expression() = default;

std::unique_ptr<Expression> Expression::Parse(std::string_view text, ExpressionError* error) {
  if (text.size() > kMaxExpressionBytes) {
    if (error) {
      *error = {0, "the expression is " + std::to_string(text.size()) +
                       " bytes, more than the limit of " + std::to_string(kMaxExpressionBytes)};
    }
    return nullptr;
  }
  std::unique_ptr<Expression> expr(new Expression());
  expr->text_ = std::string(text);
  Parser parser(expr->text_, &expr->references_);
  expr->root_ = parser.ParseAll(error);
  if (!expr->root_) return nullptr;
  return expr;
}

StatusOr<json> Expression::Evaluate(const Resolver& resolve) const {
  Evaluator evaluator(references_, resolve);
  return evaluator.Eval(*root_);
}

StatusOr<bool> Expression::EvaluateCondition(const Resolver& resolve) const {
  StatusOr<json> v = Evaluate(resolve);
  if (!v.ok()) return v.status();
  return Truthy(*v);
}

}  // namespace sluice
