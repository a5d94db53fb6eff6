// Pieces several commands share: where state lives, loading the plugin catalog, tables.
#ifndef SLUICE_CLI_COMMON_H_
#define SLUICE_CLI_COMMON_H_

#include <memory>
#include <string>
#include <vector>

#include "sluice/plugin_host.h"
#include "sluice/status.h"

namespace sluice {
class StateStore;
}  // namespace sluice

namespace sluice::cli {

// $SLUICE_STATE_DIR, else ./.sluice
std::string DefaultStateDir();

// Prints "sluice COMMAND: message" and returns the exit code for it: usage (2) when the
// thing named was not found or the argument was wrong, failed (1) otherwise.
int FailCommand(const std::string& command, const Status& status);

// Who acts, for the event log: "cli:alice@host (sluice run, pid 123)".
std::string CliActor(const std::string& command);

// StateStore::Open and OpenReadOnly, printing to stderr (under `sluice serve`, the daemon's
// log) what opening had to give up, one "sluice: warning: ..." line per damaged log
// (StateStore::open_warnings).
StatusOr<std::unique_ptr<StateStore>> OpenStateStore(const std::string& dir);
StatusOr<std::unique_ptr<StateStore>> OpenStateStoreReadOnly(const std::string& dir);

// A task's note (its reason) for a table cell: whole when it fits `width`, else cut with
// "... (whole below)" and kept in `whole` as "TASK (try N): NOTE", for PrintWholeNotes
// after the table. Notes were cut at ~80 characters with no way to read the rest.
std::string TableNote(const std::string& task, const std::string& try_number,
                      const std::string& note, std::vector<std::string>* whole, size_t width = 72);
void PrintWholeNotes(const std::vector<std::string>& whole);

// Starts one worker, has it scan the plugin search path (with `extra_dirs` first) and
// returns the catalog. Plugin code never runs in this process.
StatusOr<PluginCatalog> LoadPluginCatalog(const std::vector<std::string>& extra_dirs);

// For CLI11's check(): "" when `run_id` follows the state store's run id grammar
// (CheckRunId), else the reason, so that a mistyped id is a usage error (exit 2) that says why.
std::string RunIdProblem(const std::string& run_id);

// Prints rows as left-aligned columns separated by two spaces; the first row is the header.
void PrintTable(const std::vector<std::vector<std::string>>& rows);

// "1.23s", "2m03s", "-" for a negative value.
std::string FormatSeconds(double seconds);

}  // namespace sluice::cli

#endif  // SLUICE_CLI_COMMON_H_
