// Fuzz target: the DAG loader (TOML, validation, `when`, templates, cron, durations) over
// arbitrary file text. Every input must end in a Dag or in diagnostics, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "sluice/dag_loader.h"
#include "sluice/diagnostics.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  sluice::DagLoadResult result = sluice::LoadDagText(text, "fuzz.toml");
  for (const sluice::Diagnostic& d : result.diagnostics.items()) {
    // Rendering quotes the source line under a caret: positions must lie inside the text.
    (void)sluice::Render(d);
  }
  if (result.ok() && result.dag->size() == 0) __builtin_trap();  // a Dag always has tasks
  return 0;
}
