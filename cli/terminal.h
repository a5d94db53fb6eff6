// Terminal capabilities for the CLI's output: whether to color, how wide.
#ifndef SLUICE_CLI_TERMINAL_H_
#define SLUICE_CLI_TERMINAL_H_

#include <cstdio>
#include <string>

namespace sluice::cli {

enum class ColorMode { kAuto, kAlways, kNever };

// Whether output to `stream` should carry ANSI colors: kAuto means a terminal that is not
// "dumb", with NO_COLOR unset (https://no-color.org).
bool UseColor(ColorMode mode, FILE* stream);

// Parses "auto" | "always" | "never".
bool ParseColorMode(const std::string& text, ColorMode* mode);

}  // namespace sluice::cli

#endif  // SLUICE_CLI_TERMINAL_H_
