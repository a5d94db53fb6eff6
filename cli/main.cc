// sluice: the command-line entry point. Subcommands live in *_commands.cc.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "commands.h"

int main(int argc, char** argv) {
  using namespace sluice::cli;
  CLI::App app{
      "Sluice: workflow orchestration for machine-learning pipelines.\n"
      "Pipelines are DAGs written in TOML; see docs/dag-format.md.",
      "sluice"};
  app.set_version_flag("--version", std::string("sluice ") + SLUICE_VERSION);
  app.require_subcommand(1);
  app.fallthrough();
  app.footer(
      "Examples:\n"
      "  sluice run dags/hello.toml         run a DAG once, here, to completion\n"
      "  sluice dag validate dags/          check every DAG file in a folder\n"
      "  sluice dag show dags/hello.toml    print a DAG with its defaults applied\n"
      "  sluice runs list                   runs recorded in ./.sluice\n"
      "  sluice plugins list                the steps DAGs can use\n"
      "  sluice runs compare RUN_A RUN_B    params and metrics of runs side by side\n"
      "  sluice artifacts lineage ID        what made an artifact, and what it made\n"
      "  sluice models list                 registered models and their aliases\n"
      "\n"
      "Exit codes: 0 ok, 1 failed (invalid DAG, failed run), 2 bad usage.\n"
      "Run `sluice COMMAND --help` for a command's options.");

  GlobalOptions global;
  app.add_option("--color", global.color, "Color output: auto, always or never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->default_str("auto");

  int exit_code = kExitOk;
  AddDagCommands(app, global, &exit_code);
  AddRunCommands(app, global, &exit_code);
  AddStateCommands(app, &exit_code);
  AddPluginCommands(app, &exit_code);
  AddCronCommands(app, &exit_code);
  AddServeCommands(app, &exit_code);
  AddClientCommands(app, &exit_code);
  AddMlopsCommands(app, &exit_code);
  AddModelCommands(app, &exit_code);
  AddStepCommands(app, &exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line that names the command, says what is wrong and where help is: the last line
    // of a failed `sluice step ...` becomes its task's reason.
    std::string command = "sluice";
    for (CLI::App* at = &app;;) {
      const std::vector<CLI::App*> parsed = at->get_subcommands();
      if (parsed.empty()) break;
      at = parsed.front();
      command += " " + at->get_name();
    }
    std::fprintf(stderr, "%s: %s (see `%s --help`)\n", command.c_str(), e.what(), command.c_str());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sluice: internal error: %s\n", e.what());
    return kExitFailed;
  }
  return exit_code;
}
