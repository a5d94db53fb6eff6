// `sluice cron next`: fire times of a schedule, to check one before putting it in a DAG.
#include <date/date.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>

#include "commands.h"
#include "sluice/cron.h"
#include "sluice/dag.h"

namespace sluice::cli {
namespace {

struct CronOptions {
  std::string expression;
  std::string from;
  int count = 5;
  std::string tz = "UTC";
};

int RunNext(const CronOptions& o) {
  CronError error;
  std::optional<CronSchedule> schedule = CronSchedule::Parse(o.expression, &error);
  if (!schedule) {
    std::fprintf(stderr, "sluice cron next: %s\n  %s\n  %*s^\n", error.message.c_str(),
                 o.expression.c_str(), static_cast<int>(error.offset), "");
    if (!error.hint.empty()) std::fprintf(stderr, "  hint: %s\n", error.hint.c_str());
    return kExitUsage;
  }
  StatusOr<const date::time_zone*> zone = FindTimeZone(o.tz);
  if (!zone.ok()) {
    std::fprintf(stderr, "sluice cron next: --tz: %s\n", zone.status().message().c_str());
    return kExitUsage;
  }
  std::chrono::sys_seconds from =
      std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  if (!o.from.empty()) {
    auto parsed = ParseTimeUtc(o.from);
    if (!parsed) {
      std::fprintf(stderr,
                   "sluice cron next: --from \"%s\" is not an ISO 8601 time; write e.g. "
                   "2026-01-01T00:00:00Z\n",
                   o.from.c_str());
      return kExitUsage;
    }
    from = *parsed;
  }
  if (o.count < 1) {
    std::fprintf(stderr, "sluice cron next: --count must be at least 1\n");
    return kExitUsage;
  }
  for (int i = 0; i < o.count; ++i) {
    std::optional<std::chrono::sys_seconds> next = schedule->Next(from, *zone);
    if (!next) break;
    std::printf("%s\n", FormatTimeUtc(*next).c_str());
    from = *next;
  }
  return kExitOk;
}

}  // namespace

void AddCronCommands(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<CronOptions>();
  CLI::App* cron = app.add_subcommand("cron", "Check cron schedules");
  cron->require_subcommand(1);
  CLI::App* next = cron->add_subcommand(
      "next",
      "Print the next fire times of a schedule, one ISO 8601 UTC time per line, each strictly\n"
      "after the one before (the first strictly after --from). Vixie cron syntax and day rule;\n"
      "DST: a skipped local time fires at the change, a repeated one fires once, at its first\n"
      "occurrence (docs/dag-format.md, \"Schedules\").");
  next->add_option("expression", o->expression, "Five-field cron expression or @macro (quote it)")
      ->required();
  next->add_option("--from", o->from,
                   "Start after this time, ISO 8601 (default: now; no offset means UTC)");
  next->add_option("-n,--count", o->count, "How many fire times (default 5)");
  next->add_option("--tz", o->tz, "IANA time zone the schedule is read in (default UTC)");
  next->footer(
      "Examples:\n"
      "  sluice cron next '0 3 * * 1-5' --count 3\n"
      "  sluice cron next '30 2 * * *' --tz Europe/Berlin --from 2026-03-28T00:00:00Z");
  next->callback([o, exit_code] { *exit_code = RunNext(*o); });
}

}  // namespace sluice::cli
