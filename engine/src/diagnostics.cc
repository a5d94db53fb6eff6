#include "sluice/diagnostics.h"

#include <algorithm>

namespace sluice {
namespace {

constexpr std::string_view kBold = "\033[1m";
constexpr std::string_view kRed = "\033[1;31m";
constexpr std::string_view kMagenta = "\033[1;35m";
constexpr std::string_view kGreen = "\033[1;32m";
constexpr std::string_view kCyan = "\033[1;36m";
constexpr std::string_view kReset = "\033[0m";

}  // namespace

void Diagnostics::Error(std::string file, SourcePos pos, std::string message, std::string hint) {
  items_.push_back({Severity::kError, std::move(file), pos, std::move(message), std::move(hint)});
  ++error_count_;
}

void Diagnostics::Warning(std::string file, SourcePos pos, std::string message, std::string hint) {
  items_.push_back({Severity::kWarning, std::move(file), pos, std::move(message), std::move(hint)});
}

void Diagnostics::Sort() {
  std::stable_sort(items_.begin(), items_.end(), [](const Diagnostic& a, const Diagnostic& b) {
    if (a.file != b.file) return a.file < b.file;
    if (a.pos.line != b.pos.line) return a.pos.line < b.pos.line;
    return a.pos.column < b.pos.column;
  });
}

void Diagnostics::Append(const Diagnostics& other) {
  items_.insert(items_.end(), other.items_.begin(), other.items_.end());
  error_count_ += other.error_count_;
}

std::string_view SourceLine(std::string_view source, uint32_t line) {
  if (line == 0) return {};
  size_t start = 0;
  for (uint32_t i = 1; i < line; ++i) {
    size_t nl = source.find('\n', start);
    if (nl == std::string_view::npos) return {};
    start = nl + 1;
  }
  size_t end = source.find('\n', start);
  std::string_view text = source.substr(start, end == std::string_view::npos ? end : end - start);
  if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
  return text;
}

std::string Render(const Diagnostic& d, const RenderOptions& options) {
  auto paint = [&](std::string_view code, std::string_view text) {
    std::string s;
    if (options.color) s += code;
    s += text;
    if (options.color) s += kReset;
    return s;
  };

  std::string location = d.file;
  if (d.pos.known()) {
    location += ":" + std::to_string(d.pos.line);
    if (d.pos.column != 0) location += ":" + std::to_string(d.pos.column);
  }
  std::string out = paint(kBold, location + ":") + " ";
  out += d.severity == Severity::kError ? paint(kRed, "error:") : paint(kMagenta, "warning:");
  out += " " + paint(kBold, d.message) + "\n";

  std::string_view line =
      options.source.empty() ? std::string_view{} : SourceLine(options.source, d.pos.line);
  if (!line.empty()) {
    std::string number = std::to_string(d.pos.line);
    std::string gutter(std::max<size_t>(number.size(), 4), ' ');
    out += gutter.substr(number.size()) + number + " | " + std::string(line) + "\n";
    if (d.pos.column != 0) {
      // Keep tabs so that the caret lines up with the quoted text.
      std::string pad;
      for (size_t i = 0; i + 1 < d.pos.column && i < line.size(); ++i) {
        pad += line[i] == '\t' ? '\t' : ' ';
      }
      out += gutter + " | " + pad + paint(kGreen, "^") + "\n";
    }
  }
  if (!d.hint.empty()) out += "  " + paint(kCyan, "hint:") + " " + d.hint + "\n";
  return out;
}

}  // namespace sluice
