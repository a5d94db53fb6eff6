// `sluice step ...`: the step protocol (docs/step-protocol.md) from a shell, R or Julia
// command run by core.shell: record a metric, publish a value or file, tag the run, skip.
// It talks to the socket the step's plugin named in $SLUICE_STEP_SOCKET.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "sluice/json_limits.h"

namespace sluice::cli {
namespace {

using nlohmann::json;

struct StepOptions {
  std::string name;
  std::string value;
  std::string path;
  std::string level = "info";
  std::string method;
  std::string request = "{}";
  double number = 0;
  int64_t step = -1;
};

// Sends one request and returns the reply's result, or prints why not and sets *code.
std::optional<json> Ask(const char* command, const json& request, int* code) {
  const char* path = std::getenv("SLUICE_STEP_SOCKET");
  if (path == nullptr || *path == '\0') {
    std::fprintf(stderr,
                 "sluice step %s: not inside a step: $SLUICE_STEP_SOCKET is not set (core.shell "
                 "sets it for its command; see docs/step-protocol.md)\n",
                 command);
    *code = kExitUsage;
    return std::nullopt;
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::fprintf(stderr, "sluice step %s: cannot reach the step at %s: %s\n", command, path,
                 std::strerror(errno));
    if (fd >= 0) close(fd);
    *code = kExitFailed;
    return std::nullopt;
  }
  const std::string line = request.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  size_t sent = 0;
  while (sent < line.size()) {
    const ssize_t n = write(fd, line.data() + sent, line.size() - sent);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  std::string reply;
  char buf[65536];
  while (reply.find('\n') == std::string::npos) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  StatusOr<json> parsed = ParseJson(reply.substr(0, reply.find('\n')), "the step's reply");
  if (!parsed.ok()) {
    std::fprintf(stderr, "sluice step %s: %s\n", command, parsed.status().message().c_str());
    *code = kExitFailed;
    return std::nullopt;
  }
  if (!parsed->value("ok", false)) {
    std::fprintf(stderr, "sluice step %s: %s\n", command,
                 parsed->value("error", "the step refused the request").c_str());
    *code = kExitFailed;
    return std::nullopt;
  }
  *code = kExitOk;
  return parsed->value("result", json());
}

// VALUE as JSON when it parses, else as text (the rule of `sluice run --param`).
json ValueOf(const std::string& text) {
  StatusOr<json> parsed = ParseJson(text, "the value");
  return parsed.ok() ? *parsed : json(text);
}

std::string Absolute(const std::string& path) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  return ec ? path : absolute.string();
}

}  // namespace

void AddStepCommands(CLI::App& app, int* exit_code) {
  auto o = std::make_shared<StepOptions>();
  CLI::App* step = app.add_subcommand(
      "step",
      "From inside a running step (a core.shell command): record metrics, publish outputs, tag "
      "the run, skip. Any language can do the same over $SLUICE_STEP_SOCKET "
      "(docs/step-protocol.md)");
  step->require_subcommand(1);
  step->footer(
      "Examples, in a core.shell command:\n"
      "  sluice step metric auc 0.93\n"
      "  sluice step metric loss 0.41 --step 3\n"
      "  sluice step value best_model '\"xgboost\"'\n"
      "  sluice step file report out/report.html\n"
      "  sluice step skip \"no new data today\"");

  CLI::App* metric =
      step->add_subcommand("metric", "Record a metric (a point of a curve with --step)");
  metric->add_option("name", o->name, "Metric name")->required();
  metric->add_option("value", o->number, "A number")->required();
  metric->add_option("--step", o->step, "Its step on a curve (an epoch, a boosting round)");
  metric->callback([o, exit_code] {
    Ask("metric", {{"op", "metric"}, {"name", o->name}, {"value", o->number}, {"step", o->step}},
        exit_code);
  });

  CLI::App* value = step->add_subcommand(
      "value", "Publish a value output (for `when`, gates and downstream inputs)");
  value->add_option("name", o->name, "Output name")->required();
  value->add_option("value", o->value, "The value: JSON when it parses, text otherwise")
      ->required();
  value->callback([o, exit_code] {
    Ask("value",
        {{"op", "output"}, {"kind", "value"}, {"name", o->name}, {"value", ValueOf(o->value)}},
        exit_code);
  });

  for (const char* kind : {"file", "dir"}) {
    CLI::App* output = step->add_subcommand(
        kind, std::string("Publish a ") + (kind[0] == 'f' ? "file" : "directory") +
                  " output: stored content-addressed, with lineage");
    output->add_option("name", o->name, "Output name")->required();
    output->add_option("path", o->path, "Its path (relative to the current directory)")->required();
    output->callback([o, exit_code, kind] {
      Ask(kind, {{"op", "output"}, {"kind", kind}, {"name", o->name}, {"path", Absolute(o->path)}},
          exit_code);
    });
  }

  CLI::App* tag =
      step->add_subcommand("tag", "Tag the run: NAME VALUE (`sluice runs compare` shows tags)");
  tag->add_option("name", o->name, "Tag name")->required();
  tag->add_option("value", o->value, "Tag value")->required();
  tag->callback([o, exit_code] {
    Ask("tag", {{"op", "tag"}, {"name", o->name}, {"value", o->value}}, exit_code);
  });

  CLI::App* skip = step->add_subcommand(
      "skip",
      "End the try as skipped, not failed, once the command exits 0 (a gate that did "
      "not pass, nothing to do)");
  skip->add_option("reason", o->value, "Why")->required();
  skip->callback([o, exit_code] {
    Ask("skip", {{"op", "skip"}, {"reason", o->value}}, exit_code);
  });

  CLI::App* log = step->add_subcommand("log", "Write a line to the task log at a level");
  log->add_option("text", o->value, "The line")->required();
  log->add_option("--level", o->level, "debug, info, warning or error (default info)")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}));
  log->callback([o, exit_code] {
    Ask("log", {{"op", "log"}, {"level", o->level}, {"text", o->value}}, exit_code);
  });

  CLI::App* info = step->add_subcommand(
      "info", "Print the try as JSON: run, task, try, logical date, params, inputs, folders");
  info->callback([exit_code] {
    if (std::optional<json> result = Ask("info", {{"op", "info"}}, exit_code)) {
      std::printf("%s\n", result->dump(2, ' ', false, json::error_handler_t::replace).c_str());
    }
  });

  CLI::App* call =
      step->add_subcommand("call",
                           "Call a step service and print its JSON answer, e.g. models.get "
                           "'{\"model\": \"wine\", \"alias\": \"production\"}'");
  call->add_option("method", o->method,
                   "models.register, models.get, expression.evaluate, tags.set")
      ->required();
  call->add_option("request", o->request, "The request, JSON (default {})");
  call->callback([o, exit_code] {
    StatusOr<json> request = ParseJson(o->request, "the request");
    if (!request.ok()) {
      std::fprintf(stderr, "sluice step call: %s\n", request.status().message().c_str());
      *exit_code = kExitUsage;
      return;
    }
    if (std::optional<json> result = Ask(
            "call", {{"op", "call"}, {"method", o->method}, {"request", *request}}, exit_code)) {
      std::printf("%s\n", result->dump(2, ' ', false, json::error_handler_t::replace).c_str());
    }
  });
}

}  // namespace sluice::cli
