// Terminal capabilities for the CLI's output: whether to color, how wide.
#ifndef SLUICE_CLI_TERMINAL_H_
#define SLUICE_CLI_TERMINAL_H_

#include <cstdio>
#include <string>
#include <string_view>

namespace sluice::cli {

enum class ColorMode { kAuto, kAlways, kNever };

// Whether output to `stream` should carry ANSI colors: kAuto means a terminal that is not
// "dumb", with NO_COLOR unset (https://no-color.org).
bool UseColor(ColorMode mode, FILE* stream);

// The width of the terminal `stream` writes to; $COLUMNS when it is no terminal and that is
// set; 0 when unknown (no limit).
size_t TerminalWidth(FILE* stream);

// `text` made fit for one line of a terminal: control characters (escape sequences, tabs,
// carriage returns) become spaces, and it is cut to `width` bytes (0: not cut) with "..."
// at a UTF-8 character boundary.
std::string OneLine(std::string_view text, size_t width);

// Parses "auto" | "always" | "never".
bool ParseColorMode(const std::string& text, ColorMode* mode);

}  // namespace sluice::cli

#endif  // SLUICE_CLI_TERMINAL_H_
