// Subcommand registration. Each Add*Commands adds its subcommands to the app; the command
// callbacks store their exit code in *exit_code.
//
// Exit codes, for every command: 0 success, 1 the thing checked or run failed (an invalid
// DAG, a failed run), 2 bad usage (unknown flag, missing file argument).
#ifndef SLUICE_CLI_COMMANDS_H_
#define SLUICE_CLI_COMMANDS_H_

#include <string>

namespace CLI {
class App;
}

namespace sluice::cli {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

struct GlobalOptions {
  std::string color = "auto";
};

void AddDagCommands(CLI::App& app, const GlobalOptions& global, int* exit_code);
void AddRunCommands(CLI::App& app, const GlobalOptions& global, int* exit_code);
void AddStateCommands(CLI::App& app, int* exit_code);
void AddPluginCommands(CLI::App& app, int* exit_code);
void AddCronCommands(CLI::App& app, int* exit_code);
void AddServeCommands(CLI::App& app, int* exit_code);
// REQUIRES: after AddStateCommands (it adds to `runs` and `tasks`).
void AddClientCommands(CLI::App& app, int* exit_code);
// REQUIRES: after AddStateCommands (it adds to `runs`).
void AddMlopsCommands(CLI::App& app, int* exit_code);
void AddModelCommands(CLI::App& app, int* exit_code);
void AddStepCommands(CLI::App& app, int* exit_code);

}  // namespace sluice::cli

#endif  // SLUICE_CLI_COMMANDS_H_
