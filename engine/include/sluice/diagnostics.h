// Diagnostics: what the engine says about a user's file, compiler-style.
//
// A Diagnostic names the file, the line and column (1-based), what is wrong, and, where we
// can tell, what to do about it:
//
//   dags/train.toml:14:15: error: task "train" depends on unknown task "prepar"
//      14 | depends_on = ["prepar"]
//         |               ^
//     hint: did you mean "prepare"?
//
// Thread safety: values; a Diagnostics list is not synchronized.
#ifndef SLUICE_DIAGNOSTICS_H_
#define SLUICE_DIAGNOSTICS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

// A position in a source file. line == 0 means "the file as a whole".
struct SourcePos {
  uint32_t line = 0;    // 1-based
  uint32_t column = 0;  // 1-based, in bytes

  bool known() const { return line != 0; }
  friend bool operator==(const SourcePos&, const SourcePos&) = default;
};

enum class Severity { kError, kWarning };

struct Diagnostic {
  Severity severity = Severity::kError;
  std::string file;
  SourcePos pos;
  std::string message;  // what is wrong, one line, no trailing period
  std::string hint;     // what to do; empty when we have nothing useful to say
};

// An ordered list of diagnostics about one or more files.
class Diagnostics {
 public:
  void Error(std::string file, SourcePos pos, std::string message, std::string hint = {});
  void Warning(std::string file, SourcePos pos, std::string message, std::string hint = {});

  bool has_errors() const { return error_count_ > 0; }
  size_t error_count() const { return error_count_; }
  bool empty() const { return items_.empty(); }
  const std::vector<Diagnostic>& items() const { return items_; }

  // Orders by file, then position, keeping insertion order among equals.
  void Sort();
  void Append(const Diagnostics& other);

 private:
  std::vector<Diagnostic> items_;
  size_t error_count_ = 0;
};

struct RenderOptions {
  bool color = false;
  // When non-empty, the offending source line is quoted with a caret under the column.
  std::string_view source;
};

// "file:line:col: error: message\n" plus the quoted line and the hint when available.
std::string Render(const Diagnostic& diagnostic, const RenderOptions& options = {});

// Returns the text of line `line` (1-based) of `source`, without its newline; empty if absent.
std::string_view SourceLine(std::string_view source, uint32_t line);

}  // namespace sluice

#endif  // SLUICE_DIAGNOSTICS_H_
