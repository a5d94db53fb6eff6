// sluice: the command-line entry point. Subcommands live in *_commands.cc.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <exception>
#include <map>
#include <string>
#include <vector>

#include "commands.h"
#include "sluice/plugin_abi.h"
#include "sluice/suggest.h"

namespace {

// Long option names of `app` and of the commands above it (options fall through).
std::vector<std::string> LongOptions(const CLI::App* app) {
  std::vector<std::string> names;
  for (; app != nullptr; app = app->get_parent()) {
    for (const CLI::Option* opt : app->get_options()) {
      for (const std::string& n : opt->get_lnames()) names.push_back("--" + n);
    }
  }
  return names;
}

CLI::App* FindSubcommand(CLI::App* app, const std::string& name) {
  for (CLI::App* sub : app->get_subcommands([](const CLI::App*) { return true; })) {
    if (sub->check_name(name)) return sub;
  }
  return nullptr;
}

const CLI::Option* FindOption(const CLI::App* app, const std::string& name) {
  for (; app != nullptr; app = app->get_parent()) {
    if (const CLI::Option* opt = app->get_option_no_throw(name)) return opt;
  }
  return nullptr;
}

// Reads the command line as CLI11 will, to name what it does not know with a did-you-mean:
// CLI11 alone says "A subcommand is required" for `sluice rnu` and "The following arguments
// were not expected" for `--wrokers`. Empty when nothing is unknown.
std::string UnknownWord(CLI::App& app, int argc, char** argv) {
  CLI::App* at = &app;
  std::string command = "sluice";
  for (int i = 1; i < argc; ++i) {
    const std::string word = argv[i];
    if (word == "--") break;
    if (word.rfind("--", 0) == 0) {
      const std::string name = word.substr(0, word.find('='));
      const CLI::Option* opt = FindOption(at, name);
      if (opt == nullptr) {
        const std::string hint = sluice::DidYouMean(name, LongOptions(at));
        return command + ": unknown option " + name + (hint.empty() ? "" : "; " + hint) +
               " (see `" + command + " --help`)";
      }
      if (word.find('=') == std::string::npos && opt->get_type_size() != 0) ++i;  // its value
      continue;
    }
    if (word.size() > 1 && word[0] == '-') {  // a short option: its value, if it takes one
      const CLI::Option* opt = FindOption(at, word.substr(0, 2));
      if (opt != nullptr && opt->get_type_size() != 0 && word.size() == 2) ++i;
      continue;
    }
    std::vector<std::string> names;
    for (const CLI::App* sub : at->get_subcommands([](const CLI::App*) { return true; })) {
      names.push_back(sub->get_name());
    }
    if (names.empty()) continue;  // a positional argument of the command
    // Among equally near names, one of the typo's length first: "runz" is "runs", not "run".
    std::stable_sort(names.begin(), names.end(), [&](const std::string& a, const std::string& b) {
      return (a.size() == word.size()) > (b.size() == word.size());
    });
    if (CLI::App* sub = FindSubcommand(at, word)) {
      at = sub;
      command += " " + word;
      continue;
    }
    bool takes_positionals = false;
    for (const CLI::Option* opt : at->get_options()) takes_positionals |= opt->get_positional();
    if (takes_positionals) continue;
    const std::string hint = sluice::DidYouMean(word, names);
    return command + ": unknown command \"" + word + "\"" + (hint.empty() ? "" : "; " + hint) +
           " (`" + command + " --help` lists the commands)";
  }
  return "";
}

constexpr const char* kExitCodes =
    "Exit codes: 0 ok, 1 failed (invalid DAG, failed run), 2 bad usage.";

// The examples of commands that do not set their own footer where they are made.
const std::map<std::string, std::string>& Examples() {
  static const std::map<std::string, std::string> examples = {
      {"runs",
       "  sluice runs list --dag hello         the latest runs of one DAG\n"
       "  sluice runs show RUN                 a run and its tasks\n"
       "  sluice runs compare RUN_A RUN_B      params, metrics and tags side by side"},
      {"runs list",
       "  sluice runs list -n 5 --state failed\n"
       "  sluice runs list --dag hello --json"},
      {"runs show", "  sluice runs show manual__2026-11-27T15:39:40.512849Z --dag hello"},
      {"runs cancel", "  sluice runs cancel RUN --dag nightly     (through the daemon)"},
      {"runs delete", "  sluice runs delete RUN --dag hello && sluice gc"},
      {"runs compare",
       "  sluice runs compare RUN_A RUN_B RUN_C --only-diff\n"
       "  sluice runs compare RUN_A RUN_B --json"},
      {"tasks", "  sluice tasks list RUN\n  sluice tasks clear RUN -t train --downstream"},
      {"tasks list", "  sluice tasks list RUN --json"},
      {"logs",
       "  sluice logs RUN train               the latest try's log\n"
       "  sluice logs RUN train --try 1       the first try's\n"
       "  sluice logs -f RUN train            follow it while it runs (daemon or sluice run)\n"
       "  sluice logs RUN train --json        its lines as JSON"},
      {"events", "  sluice events RUN\n  sluice events RUN --json"},
      {"state", "  sluice state repair --state-dir .sluice"},
      {"state repair", "  sluice state repair --state-dir .sluice     (stop the daemon first)"},
      {"plugins", "  sluice plugins list\n  sluice plugins show core.shell --json"},
      {"plugins list", "  sluice plugins list --plugin-dir build/plugins"},
      {"plugins show", "  sluice plugins show train.xgboost\n  sluice plugins show core --json"},
      {"cron", "  sluice cron next \"0 3 * * *\" --tz Europe/Berlin --count 5"},
      {"dags",
       "  sluice dags list\n  sluice dags pause nightly\n  sluice dags unpause drift_watch"},
      {"dags list", "  sluice dags list --json"},
      {"dags pause", "  sluice dags pause nightly     (no new scheduled runs until unpaused)"},
      {"dags unpause", "  sluice dags unpause nightly   (missed intervals follow its catchup)"},
      {"backfills",
       "  sluice backfills list\n  sluice backfills show ID\n  sluice backfills cancel ID"},
      {"backfills list", "  sluice backfills list --json"},
      {"backfills show", "  sluice backfills show ID --json"},
      {"backfills cancel", "  sluice backfills cancel ID"},
      {"tokens",
       "  sluice tokens create ci --role operator\n  sluice tokens list\n  sluice tokens revoke "
       "ci"},
      {"tokens list", "  sluice tokens list --json"},
      {"tokens revoke", "  sluice tokens revoke ci"},
      {"metrics",
       "  sluice metrics RUN                  a summary per task and metric\n"
       "  sluice metrics RUN train --steps    every point of the learning curves\n"
       "  sluice metrics RUN --csv > m.csv    for a spreadsheet or pandas"},
      {"gc", "  sluice gc --dry-run\n  sluice gc --json"},
      {"version", "  sluice version"},
      {"help", "  sluice help\n  sluice help runs list"},
  };
  return examples;
}

// Every command's --help ends with its own examples. CLI11 copies the top-level footer
// into each command made after it is set, so without this every group ended with the same
// eight. A command with none of its own gets its group's.
void SetFooters(CLI::App* app, const std::string& path, const std::string& root,
                const std::string& inherited) {
  for (CLI::App* sub : app->get_subcommands([](const CLI::App*) { return true; })) {
    const std::string name = path.empty() ? sub->get_name() : path + " " + sub->get_name();
    if (sub->get_footer() == root) {
      auto it = Examples().find(name);
      sub->footer(it != Examples().end()
                      ? std::string(it->second.find('\n') != std::string::npos ? "Examples:\n"
                                                                               : "Example:\n") +
                            it->second + "\n\n" + kExitCodes
                      : inherited);
    }
    SetFooters(sub, name, root, sub->get_footer() == root ? inherited : sub->get_footer());
  }
}

}  // namespace

int main(int argc, char** argv) {
  using namespace sluice::cli;
  CLI::App app{
      "Sluice: workflow orchestration for machine-learning pipelines.\n"
      "Pipelines are DAGs written in TOML; see docs/dag-format.md.",
      "sluice"};
  // The plugin ABI is the SDK's version too (the SluiceSDK CMake package's).
  static const std::string version_line = std::string("sluice ") + SLUICE_VERSION +
                                          " (plugin ABI " + std::to_string(SLUICE_ABI_MAJOR) + "." +
                                          std::to_string(SLUICE_ABI_MINOR) + ")";
  app.set_version_flag("--version", version_line);
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

  // `sluice version` and `sluice help [COMMAND...]`, as git and kubectl have them.
  CLI::App* version = app.add_subcommand("version", "Print the version of Sluice");
  version->callback([] { std::printf("%s\n", version_line.c_str()); });
  std::vector<std::string> help_words;
  CLI::App* help = app.add_subcommand("help", "Describe a command: sluice help runs list");
  help->add_option("command", help_words, "The command (and subcommand)");
  help->callback([&] {
    CLI::App* at = &app;
    for (const std::string& word : help_words) {
      CLI::App* sub = FindSubcommand(at, word);
      if (sub == nullptr) {
        std::vector<std::string> names;
        for (const CLI::App* s : at->get_subcommands([](const CLI::App*) { return true; })) {
          names.push_back(s->get_name());
        }
        const std::string hint = sluice::DidYouMean(word, names);
        std::fprintf(stderr, "sluice help: no command \"%s\"%s\n", word.c_str(),
                     hint.empty() ? "" : ("; " + hint).c_str());
        exit_code = kExitUsage;
        return;
      }
      at = sub;
    }
    std::string name = "sluice";
    for (const std::string& word : help_words) name += " " + word;
    std::printf("%s", at->get_formatter()->make_help(at, name, CLI::AppFormatMode::Normal).c_str());
  });

  SetFooters(&app, "", app.get_footer(), kExitCodes);

  if (std::string unknown = UnknownWord(app, argc, argv); !unknown.empty()) {
    std::fprintf(stderr, "%s\n", unknown.c_str());
    return kExitUsage;
  }
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
