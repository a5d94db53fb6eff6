#include "terminal.h"

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
