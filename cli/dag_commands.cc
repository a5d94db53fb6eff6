// `sluice dag validate` and `sluice dag show`.
#include <date/tz.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "common.h"
#include "sluice/dag_loader.h"
#include "sluice/intervals.h"
#include "sluice/plugin_check.h"
#include "terminal.h"

namespace sluice::cli {
namespace {

using nlohmann::json;

struct ValidateOptions {
  std::vector<std::string> paths;
  std::string format = "text";
  bool quiet = false;
  bool no_plugins = false;
  std::vector<std::string> plugin_dirs;
};

struct ShowOptions {
  std::string path;
  std::string format = "text";
};

std::vector<DagLoadResult> LoadPaths(const std::vector<std::string>& paths) {
  std::vector<DagLoadResult> results;
  for (const std::string& path : paths) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec)) {
      std::vector<DagLoadResult> in_dir = LoadDagDirectory(path);
      if (in_dir.empty()) {
        DagLoadResult empty;
        empty.path = path;
        empty.diagnostics.Error(path, {}, "no DAG files (*.toml) in this folder",
                                "check the path, or add a DAG file");
        in_dir.push_back(std::move(empty));
      }
      for (DagLoadResult& r : in_dir) results.push_back(std::move(r));
    } else {
      results.push_back(LoadDagFile(path));
    }
  }
  RejectDuplicateDagIds(&results);
  return results;
}

json DiagnosticsToJson(const Diagnostics& diagnostics) {
  json out = json::array();
  for (const Diagnostic& d : diagnostics.items()) {
    out.push_back({{"severity", d.severity == Severity::kError ? "error" : "warning"},
                   {"file", d.file},
                   {"line", d.pos.line},
                   {"column", d.pos.column},
                   {"message", d.message},
                   {"hint", d.hint}});
  }
  return out;
}

void PrintDiagnostics(const DagLoadResult& result, bool color, FILE* out) {
  RenderOptions options;
  options.color = color;
  options.source = result.source;
  for (const Diagnostic& d : result.diagnostics.items()) {
    std::fputs(Render(d, options).c_str(), out);
  }
}

int RunValidate(const ValidateOptions& options, const GlobalOptions& global) {
  ColorMode color_mode = ColorMode::kAuto;
  ParseColorMode(global.color, &color_mode);
  const bool color = UseColor(color_mode, stdout);
  std::vector<DagLoadResult> results = LoadPaths(options.paths);
  bool any_valid = false;
  for (const DagLoadResult& r : results) any_valid |= r.ok();
  if (!options.no_plugins && any_valid) {
    // Params against the plugins' manifests, read by a worker process (never by this one).
    StatusOr<PluginCatalog> catalog = LoadPluginCatalog(options.plugin_dirs);
    if (!catalog.ok()) {
      std::fprintf(stderr, "warning: plugins not checked: %s\n",
                   catalog.status().message().c_str());
    } else {
      for (DagLoadResult& r : results) {
        if (!r.ok()) continue;
        CheckDagAgainstPlugins(*r.dag, *catalog, &r.diagnostics);
        if (r.diagnostics.has_errors()) r.dag.reset();
      }
    }
  }

  size_t valid = 0;
  size_t errors = 0;
  size_t warnings = 0;
  for (const DagLoadResult& r : results) {
    if (r.ok()) ++valid;
    errors += r.diagnostics.error_count();
    warnings += r.diagnostics.items().size() - r.diagnostics.error_count();
  }

  if (options.format == "json") {
    json files = json::array();
    for (const DagLoadResult& r : results) {
      json file = {
          {"path", r.path}, {"valid", r.ok()}, {"diagnostics", DiagnosticsToJson(r.diagnostics)}};
      if (r.dag) {
        file["dag_id"] = r.dag->id();
        file["tasks"] = r.dag->size();
      }
      files.push_back(std::move(file));
    }
    json out = {{"valid", valid == results.size()},
                {"files", std::move(files)},
                {"errors", errors},
                {"warnings", warnings}};
    std::printf("%s\n", out.dump(2).c_str());
  } else {
    for (const DagLoadResult& r : results) {
      PrintDiagnostics(r, color, stdout);
      if (r.ok() && !options.quiet) {
        std::printf("%s: ok (DAG \"%s\", %zu tasks, %zu dependencies)\n", r.path.c_str(),
                    r.dag->id().c_str(), r.dag->size(), r.dag->edge_count());
      }
    }
    if (!options.quiet || valid != results.size()) {
      std::printf("%zu file%s checked: %zu valid, %zu invalid; %zu error%s, %zu warning%s\n",
                  results.size(), results.size() == 1 ? "" : "s", valid, results.size() - valid,
                  errors, errors == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s");
    }
  }
  return valid == results.size() ? kExitOk : kExitFailed;
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

void PrintText(const Dag& dag) {
  const DagSpec& spec = dag.spec();
  std::printf("DAG %s  (%s)\n", spec.id.c_str(), spec.source_path.c_str());
  if (!spec.description.empty()) std::printf("  description:     %s\n", spec.description.c_str());
  if (!spec.owner.empty()) std::printf("  owner:           %s\n", spec.owner.c_str());
  if (!spec.tags.empty()) {
    std::string tags;
    for (const std::string& t : spec.tags) tags += (tags.empty() ? "" : ", ") + t;
    std::printf("  tags:            %s\n", tags.c_str());
  }
  std::printf("  schedule:        %s\n",
              spec.schedule ? spec.schedule->c_str() : "none (manual triggers only)");
  std::printf("  timezone:        %s\n", spec.timezone.c_str());
  if (spec.start_date) {
    std::printf("  start_date:      %s\n", FormatTimeUtc(*spec.start_date).c_str());
  }
  if (spec.end_date) std::printf("  end_date:        %s\n", FormatTimeUtc(*spec.end_date).c_str());
  std::printf("  catchup:         %s\n", std::string(CatchupPolicyName(spec.catchup)).c_str());
  std::printf("  max_active_runs: %d\n", spec.max_active_runs);
  std::printf("  dagrun_timeout:  %s\n",
              spec.dagrun_timeout ? FormatDuration(*spec.dagrun_timeout).c_str() : "none");
  if (!spec.params.empty()) std::printf("  params:          %s\n", spec.params.dump().c_str());

  std::printf("\nTasks (%zu), in topological order:\n", dag.size());
  for (uint32_t i : dag.topological_order()) {
    const TaskSpec& t = dag.tasks()[i];
    std::printf("  %s  [%s]\n", t.id.c_str(), t.plugin.c_str());
    if (!t.description.empty()) std::printf("      %s\n", t.description.c_str());
    std::string deps;
    for (uint32_t u : dag.upstream(i)) deps += (deps.empty() ? "" : ", ") + dag.tasks()[u].id;
    std::printf("      depends_on:   %s\n", OrDash(deps).c_str());
    if (!t.params.empty()) std::printf("      params:       %s\n", t.params.dump().c_str());
    if (!t.inputs.empty()) {
      std::string inputs;
      for (const TaskSpec::Input& in : t.inputs) {
        inputs += (inputs.empty() ? "" : ", ") + in.name + " <- " + in.task + "." + in.output;
      }
      std::printf("      inputs:       %s\n", inputs.c_str());
    }
    std::string retry = std::to_string(t.retries);
    if (t.retries > 0) {
      retry += ", delay " + FormatDuration(t.retry_delay);
      if (t.retry_backoff.exponential) {
        char buf[128];
        std::snprintf(buf, sizeof buf, ", exponential x%g up to %s, jitter %g",
                      t.retry_backoff.multiplier, FormatDuration(t.retry_backoff.max_delay).c_str(),
                      t.retry_backoff.jitter);
        retry += buf;
      }
    }
    std::printf("      retries:      %s\n", retry.c_str());
    std::printf("      timeout:      %s\n",
                t.timeout ? FormatDuration(*t.timeout).c_str() : "none");
    std::printf("      trigger_rule: %s\n", std::string(TriggerRuleName(t.trigger_rule)).c_str());
    std::printf("      pool:         %s   priority: %d   cache: %s\n", t.pool.c_str(), t.priority,
                t.cache ? "yes" : "no");
    if (t.when) std::printf("      when:         %s\n", t.when->text().c_str());
  }
  std::printf("\nLayers (tasks in one layer can run at the same time):\n");
  for (size_t k = 0; k < dag.layers().size(); ++k) {
    std::string names;
    for (uint32_t i : dag.layers()[k]) names += (names.empty() ? "" : ", ") + dag.tasks()[i].id;
    std::printf("  %zu: %s\n", k, names.c_str());
  }
}

// DOT string literal with quotes and backslashes escaped.
std::string DotQuote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

void PrintDot(const Dag& dag) {
  std::printf("digraph %s {\n", DotQuote(dag.id()).c_str());
  std::printf("  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n");
  for (size_t i = 0; i < dag.size(); ++i) {
    const TaskSpec& t = dag.tasks()[i];
    std::printf("  %s [label=%s];\n", DotQuote(t.id).c_str(),
                DotQuote(t.id + "\\n" + t.plugin).c_str());
  }
  for (const auto& layer : dag.layers()) {
    std::string names;
    for (uint32_t i : layer) names += " " + DotQuote(dag.tasks()[i].id) + ";";
    std::printf("  { rank=same;%s }\n", names.c_str());
  }
  for (size_t i = 0; i < dag.size(); ++i) {
    for (uint32_t d : dag.downstream(i)) {
      std::printf("  %s -> %s;\n", DotQuote(dag.tasks()[i].id).c_str(),
                  DotQuote(dag.tasks()[d].id).c_str());
    }
  }
  std::printf("}\n");
}

int RunShow(const ShowOptions& options, const GlobalOptions& global) {
  DagLoadResult result = LoadDagFile(options.path);
  if (!result.ok()) {
    ColorMode color_mode = ColorMode::kAuto;
    ParseColorMode(global.color, &color_mode);
    PrintDiagnostics(result, UseColor(color_mode, stderr), stderr);
    std::fprintf(stderr, "%s: invalid DAG; nothing to show\n", options.path.c_str());
    return kExitFailed;
  }
  if (options.format == "json") {
    std::printf("%s\n", DagToJson(*result.dag).dump(2).c_str());
  } else if (options.format == "dot") {
    PrintDot(*result.dag);
  } else {
    PrintText(*result.dag);
  }
  return kExitOk;
}

struct NextOptions {
  std::string path;
  int count = 5;
};

// Upcoming scheduled runs: their data intervals and when each becomes due.
int RunNext(const NextOptions& options) {
  DagLoadResult result = LoadDagFile(options.path);
  if (!result.ok()) {
    PrintDiagnostics(result, false, stderr);
    return kExitFailed;
  }
  const DagSpec& spec = result.dag->spec();
  if (!spec.cron) {
    std::printf("DAG %s has no schedule: it runs only when triggered\n", spec.id.c_str());
    return kExitOk;
  }
  StatusOr<const date::time_zone*> zone = FindTimeZone(spec.timezone);
  if (!zone.ok()) {
    std::fprintf(stderr, "sluice dag next: %s\n", zone.status().message().c_str());
    return kExitFailed;
  }
  std::optional<DataInterval> interval = FirstInterval(*spec.cron, *zone, *spec.start_date);
  // Skip to the intervals that end after now: those are the runs still to come.
  const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  while (interval && interval->end <= now) interval = NextInterval(*spec.cron, *zone, *interval);
  std::printf("DAG %s: schedule \"%s\" in %s, catchup %s\n", spec.id.c_str(),
              spec.schedule->c_str(), spec.timezone.c_str(),
              std::string(CatchupPolicyName(spec.catchup)).c_str());
  std::vector<std::vector<std::string>> rows = {
      {"LOGICAL DATE (UTC)", "DATA INTERVAL END", "DUE AT (local)"}};
  for (int i = 0; i < options.count && interval; ++i) {
    if (spec.end_date && interval->start > *spec.end_date) break;
    rows.push_back({FormatTimeUtc(interval->start), FormatTimeUtc(interval->end),
                    date::format("%Y-%m-%d %H:%M %Z", date::make_zoned(*zone, interval->end))});
    interval = NextInterval(*spec.cron, *zone, *interval);
  }
  PrintTable(rows);
  return kExitOk;
}

}  // namespace

void AddDagCommands(CLI::App& app, const GlobalOptions& global, int* exit_code) {
  CLI::App* dag = app.add_subcommand("dag", "Check and inspect DAG files");
  dag->require_subcommand(1);

  auto validate_options = std::make_shared<ValidateOptions>();
  CLI::App* validate = dag->add_subcommand(
      "validate",
      "Check DAG files and print every problem as file:line:col with a hint.\n"
      "Folders are searched recursively for *.toml files. DAG ids must be unique among all\n"
      "files given. Task params are checked against the installed plugins' manifests (a step\n"
      "that is not installed here is a warning). Exit code 0 when every file is valid, 1 "
      "otherwise.");
  validate->add_option("paths", validate_options->paths, "DAG files or folders")
      ->required()
      ->check(CLI::ExistingPath);
  validate->add_option("--format", validate_options->format, "Output format: text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->default_str("text");
  validate->add_flag("-q,--quiet", validate_options->quiet,
                     "Print only problems, nothing for valid files");
  validate->add_flag("--no-plugins", validate_options->no_plugins,
                     "Skip checking task params against the installed plugins' manifests");
  validate->add_option("--plugin-dir", validate_options->plugin_dirs, "Also look for plugins here");
  validate->footer("Example:\n  sluice dag validate dags/ tests/data/dags/valid/hello.toml");
  validate->callback([validate_options, &global, exit_code] {
    *exit_code = RunValidate(*validate_options, global);
  });

  auto show_options = std::make_shared<ShowOptions>();
  CLI::App* show = dag->add_subcommand(
      "show",
      "Print a DAG as Sluice resolves it: [defaults] applied, its tasks in topological order,\n"
      "and its layers (tasks that can run at the same time). An invalid file prints its\n"
      "problems instead and exits 1.");
  show->add_option("file", show_options->path, "DAG file")->required()->check(CLI::ExistingFile);
  show->add_option("--format", show_options->format,
                   "text (for people), json (for programs) or dot (Graphviz)")
      ->check(CLI::IsMember({"text", "json", "dot"}))
      ->default_str("text");
  show->footer(
      "Examples:\n"
      "  sluice dag show dags/hello.toml\n"
      "  sluice dag show dags/hello.toml --format dot | dot -Tsvg > hello.svg");
  show->callback(
      [show_options, &global, exit_code] { *exit_code = RunShow(*show_options, global); });

  auto next_options = std::make_shared<NextOptions>();
  CLI::App* next = dag->add_subcommand(
      "next",
      "Print a scheduled DAG's next runs: each run's logical date (the start of its data\n"
      "interval), the interval's end, and when the run becomes due (when the interval ends).");
  next->add_option("file", next_options->path, "DAG file")->required()->check(CLI::ExistingFile);
  next->add_option("-n,--count", next_options->count, "How many runs (default 5)");
  next->footer("Example:\n  sluice dag next dags/nightly.toml --count 3");
  next->callback([next_options, exit_code] { *exit_code = RunNext(*next_options); });
}

}  // namespace sluice::cli
