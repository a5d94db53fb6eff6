#include "terminal.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace sluice::cli {

bool UseColor(ColorMode mode, FILE* stream) {
  if (mode == ColorMode::kAlways) return true;
  if (mode == ColorMode::kNever) return false;
  if (std::getenv("NO_COLOR") != nullptr) return false;
  const char* term = std::getenv("TERM");
  if (term == nullptr || std::strcmp(term, "dumb") == 0) return false;
  return isatty(fileno(stream)) == 1;
}

size_t TerminalWidth(FILE* stream) {
  winsize size{};
  if (isatty(fileno(stream)) == 1 && ioctl(fileno(stream), TIOCGWINSZ, &size) == 0 &&
      size.ws_col > 0) {
    return size.ws_col;
  }
  const char* columns = std::getenv("COLUMNS");
  if (columns != nullptr) {
    char* end = nullptr;
    const long n = std::strtol(columns, &end, 10);
    if (end != columns && *end == '\0' && n > 0) return static_cast<size_t>(n);
  }
  return 0;
}

std::string OneLine(std::string_view text, size_t width) {
  std::string line;
  line.reserve(text.size());
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    line.push_back(u < 0x20 || u == 0x7f ? ' ' : c);
  }
  if (width == 0 || line.size() <= width) return line;
  size_t cut = width > 3 ? width - 3 : 0;
  // Not inside a UTF-8 character: back up over continuation bytes (10xxxxxx).
  while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
  line.resize(cut);
  return line + (width > 3 ? "..." : "");
}

bool ParseColorMode(const std::string& text, ColorMode* mode) {
  if (text == "auto")
    *mode = ColorMode::kAuto;
  else if (text == "always")
    *mode = ColorMode::kAlways;
  else if (text == "never")
    *mode = ColorMode::kNever;
  else
    return false;
  return true;
}

}  // namespace sluice::cli
