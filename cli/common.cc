#include "common.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <cstdlib>

#include "commands.h"
#include "sluice/local_executor.h"
#include "sluice/state_store.h"
#include "terminal.h"

namespace sluice::cli {

std::string DefaultStateDir() {
  const char* env = std::getenv("SLUICE_STATE_DIR");
  return env != nullptr && *env != '\0' ? env : ".sluice";
}

int FailCommand(const std::string& command, const Status& status) {
  std::fprintf(stderr, "sluice %s: %s\n", command.c_str(), status.message().c_str());
  return status.code() == Status::Code::kNotFound || status.code() == Status::Code::kInvalidArgument
             ? kExitUsage
             : kExitFailed;
}

std::string CliActor(const std::string& command) {
  const char* user = std::getenv("USER");
  if (user == nullptr) {
    const passwd* pw = getpwuid(getuid());
    user = pw != nullptr ? pw->pw_name : nullptr;
  }
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  return std::string("cli:") + (user ? user : "unknown") + "@" + host + " (" + command + ", pid " +
         std::to_string(getpid()) + ")";
}

namespace {

// The scan needs a listener; no task runs during it.
class NoTasks : public ExecutorListener {
 public:
  void OnStarted(const std::string&, int64_t) override {}
  void OnLog(const std::string&, int, std::string_view) override {}
  void OnMetric(const std::string&, const std::string&, double, int64_t) override {}
  void OnOutput(const std::string&, const std::string&, const nlohmann::json&) override {}
  void OnFinished(const std::string&, TaskOutcome) override {}
};

}  // namespace

namespace {
StatusOr<std::unique_ptr<StateStore>> Warned(StatusOr<std::unique_ptr<StateStore>> opened) {
  if (opened.ok()) {
    for (const std::string& warning : (*opened)->open_warnings()) {
      std::fprintf(stderr, "sluice: warning: %s\n", warning.c_str());
    }
  }
  return opened;
}
}  // namespace

StatusOr<std::unique_ptr<StateStore>> OpenStateStore(const std::string& dir) {
  return Warned(StateStore::Open(dir));
}

StatusOr<std::unique_ptr<StateStore>> OpenStateStoreReadOnly(const std::string& dir) {
  return Warned(StateStore::OpenReadOnly(dir));
}

std::string TableNote(const std::string& task, const std::string& try_number,
                      const std::string& note, std::vector<std::string>* whole, size_t width) {
  const size_t newline = note.find('\n');
  if (note.size() <= width && newline == std::string::npos) return note;
  whole->push_back(task + (try_number.empty() ? "" : " (try " + try_number + ")") + ": " + note);
  const std::string suffix = "... (whole below)";
  return note.substr(0, std::min(newline, width - suffix.size())) + suffix;
}

void PrintWholeNotes(const std::vector<std::string>& whole) {
  for (const std::string& line : whole) std::printf("  %s\n", line.c_str());
}

StatusOr<PluginCatalog> LoadPluginCatalog(const std::vector<std::string>& extra_dirs) {
  boost::asio::io_context io;
  NoTasks listener;
  LocalWorkerPool::Options options;
  options.workers = 1;
  LocalWorkerPool pool(io, options, &listener);
  SLUICE_RETURN_IF_ERROR(pool.Start());
  std::optional<StatusOr<PluginCatalog>> result;
  pool.ScanPlugins(PluginSearchPath(extra_dirs), [&](StatusOr<PluginCatalog> catalog) {
    result = std::move(catalog);
    pool.Shutdown();
    io.stop();
  });
  io.run();
  if (!result) return Status::Internal("the plugin scan did not finish");
  return std::move(*result);
}

void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> widths;
  for (const auto& row : rows) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  // On a terminal (or with $COLUMNS), the widest columns give way until the table fits; their
  // cells end in "...". Piped into a program, cells stay whole.
  const size_t width = TerminalWidth(stdout);
  size_t total = widths.empty() ? 0 : 2 * (widths.size() - 1);
  for (size_t w : widths) total += w;
  bool cut = false;
  constexpr size_t kNarrowest = 12;
  while (width > 0 && total > width) {
    const auto widest = std::max_element(widths.begin(), widths.end());
    if (widest == widths.end() || *widest <= kNarrowest) break;
    size_t second = kNarrowest;
    for (size_t w : widths) {
      if (w < *widest) second = std::max(second, w);
    }
    const size_t shrink = std::min(total - width, *widest - second);
    *widest -= std::max<size_t>(shrink, 1);
    total -= std::max<size_t>(shrink, 1);
    cut = true;
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      const std::string cell = row[i].size() > widths[i] ? OneLine(row[i], widths[i]) : row[i];
      line += cell;
      if (i + 1 < row.size()) line += std::string(widths[i] - cell.size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
  if (cut) {
    std::printf(
        "(cut to the terminal's %zu columns: --json, or a wider terminal, shows it whole)\n",
        width);
  }
}

std::string FormatSeconds(double seconds) {
  if (seconds < 0) return "-";
  char buf[32];
  if (seconds < 60) {
    std::snprintf(buf, sizeof buf, "%.2fs", seconds);
  } else {
    const int total = static_cast<int>(seconds);
    std::snprintf(buf, sizeof buf, "%dm%02ds", total / 60, total % 60);
  }
  return buf;
}

std::string RunIdProblem(const std::string& run_id) {
  Status s = CheckRunId(run_id);
  return s.ok() ? std::string() : s.message();
}

}  // namespace sluice::cli
