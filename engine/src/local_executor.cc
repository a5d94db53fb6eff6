#include "sluice/local_executor.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <cstring>
#include <deque>
#include <filesystem>
#include <set>
#include <thread>

#include "sluice/child_process.h"
#include "sluice/json_limits.h"
#include "sluice/plugin_abi.h"
#include "sluice/worker_protocol.h"

extern char** environ;

namespace sluice {

using nlohmann::json;
using protocol::Type;
namespace asio = boost::asio;

std::string FormatTimestamp(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  const auto us = duration_cast<microseconds>(t.time_since_epoch()).count();
  const time_t seconds = static_cast<time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(us % 1000000));
  return buf;
}

namespace {

std::string DescribeExit(int status) {
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    return std::string("killed by signal ") + std::to_string(sig) + " (" + strsignal(sig) + ")";
  }
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  return "stopped (status " + std::to_string(status) + ")";
}

}  // namespace

struct Worker {
  explicit Worker(asio::io_context& io)
      : socket(io), output(io), timeout_timer(io), cancel_timer(io) {}

  size_t index = 0;
  pid_t pid = -1;
  bool hello = false;
  bool dead = false;
  asio::local::stream_protocol::socket socket;
  asio::posix::stream_descriptor output;
  std::array<char, 65536> read_buffer{};
  std::array<char, 65536> output_buffer{};
  protocol::FrameDecoder decoder;
  std::string output_pending;  // partial line from stdout/stderr
  std::string outgoing;        // frames waiting for the write in flight to finish
  std::string in_write;        // the bytes of the write in flight
  bool writing = false;

  // Tries sent to it and not finished, oldest first; the first may be running.
  std::deque<TaskLaunch> assigned;
  // The try it runs: the front of `assigned`; empty when none.
  std::string key;
  // Waiting tries asked back (kRevoke) and not yet answered. One of them at the front of
  // `assigned` is not started until the answer says whether it runs here.
  std::set<std::string> revoking;
  std::optional<TaskOutcome> forced;  // set when the pool kills it on purpose
  asio::steady_timer timeout_timer;
  asio::steady_timer cancel_timer;
  std::chrono::steady_clock::time_point last_heard;

  // Plugin scan in progress on this worker.
  bool scanning = false;
  std::string scanning_file;
};

struct LocalWorkerPool::Impl : std::enable_shared_from_this<LocalWorkerPool::Impl> {
  Impl(asio::io_context& io_context, Options opts, ExecutorListener* l)
      : io(io_context), options(std::move(opts)), listener(l) {}

  asio::io_context& io;
  Options options;
  ExecutorListener* listener;
  std::vector<std::shared_ptr<Worker>> workers;
  // Tries without a worker: their worker died before starting them. Sent on as soon as a
  // worker has room.
  std::deque<TaskLaunch> pending;
  std::set<std::string> cancelled;  // keys cancelled before they started
  bool shutting_down = false;
  int crash_streak = 0;  // workers that died before saying hello, in a row
  std::string start_failure;

  // Plugin scan state.
  std::vector<std::string> scan_dirs;
  std::vector<std::string> scan_exclude;
  std::vector<PluginCatalog::Problem> scan_problems;
  std::function<void(StatusOr<PluginCatalog>)> scan_done;

  Status Spawn(size_t index);
  uint64_t restarts = 0;  // workers started again after one died
  void StartReading(const std::shared_ptr<Worker>& w);
  void StartReadingOutput(const std::shared_ptr<Worker>& w);
  void Send(const std::shared_ptr<Worker>& w, Type type, const std::string& payload);
  void StartWrite(const std::shared_ptr<Worker>& w);
  void HandleFrame(const std::shared_ptr<Worker>& w, Type type, const std::string& payload);
  void HandleDeath(const std::shared_ptr<Worker>& w);
  void DrainOutput(const std::shared_ptr<Worker>& w, bool flush_partial);
  void EmitOutputLines(const std::shared_ptr<Worker>& w, bool flush_partial);
  void Kill(const std::shared_ptr<Worker>& w, TaskOutcome forced);
  void Finish(const std::shared_ptr<Worker>& w, TaskOutcome outcome);
  void SendScan();
  bool Assign(TaskLaunch launch);
  void DispatchPending();
  // An idle worker takes back tries that wait behind a running one on another worker (asks
  // for up to half of them), so that no ready try waits while a worker sits idle.
  void Steal(const std::shared_ptr<Worker>& idle);
  void HandleRevoked(const std::shared_ptr<Worker>& w, const std::string& key, bool revoked);
  // The worker runs its tries in order: when the one before ends, the next one starts. The
  // engine counts it as started then (it arms the timeout and reports OnStarted), which saves
  // a message per try; the worker may have begun it a few microseconds earlier.
  void StartFront(const std::shared_ptr<Worker>& w);
  void Watch();
  std::unique_ptr<asio::steady_timer> watchdog_timer;
};

// Each worker holds one try running and up to kDepth - 1 waiting in its inbox, so that it
// never idles while the engine records the previous result. A worker that runs out takes
// waiting tries back from a busy one (Steal), so an inbox never holds a try behind a long
// one while a worker is idle.
constexpr size_t kDepth = 16;

Status LocalWorkerPool::Impl::Spawn(size_t index) {
  StatusOr<ChildProcess> child = SpawnChild(options.worker_command);
  if (!child.ok()) return child.status();
  const pid_t pid = child->pid;

  auto w = std::make_shared<Worker>(io);
  w->index = index;
  w->pid = pid;
  w->socket.assign(asio::local::stream_protocol(), child->socket_fd);
  w->output.assign(child->output_fd);  // non-blocking: drained without blocking
  w->last_heard = std::chrono::steady_clock::now();
  if (index < workers.size())
    workers[index] = w;
  else
    workers.push_back(w);
  StartReading(w);
  StartReadingOutput(w);
  return Status::Ok();
}

void LocalWorkerPool::Impl::StartReading(const std::shared_ptr<Worker>& w) {
  auto self = shared_from_this();
  w->socket.async_read_some(
      asio::buffer(w->read_buffer), [self, w](boost::system::error_code ec, size_t n) {
        if (w->dead) return;
        if (ec) {
          self->HandleDeath(w);
          return;
        }
        w->decoder.Append(w->read_buffer.data(), n);
        Type type;
        std::string payload;
        while (!w->dead && w->decoder.Next(&type, &payload)) self->HandleFrame(w, type, payload);
        if (w->dead) return;
        if (w->decoder.corrupt()) {
          self->Kill(w, {TaskOutcome::Kind::kCrashed, "worker sent a corrupt message"});
          return;
        }
        self->StartReading(w);
      });
}

void LocalWorkerPool::Impl::StartReadingOutput(const std::shared_ptr<Worker>& w) {
  auto self = shared_from_this();
  w->output.async_read_some(
      asio::buffer(w->output_buffer), [self, w](boost::system::error_code ec, size_t n) {
        if (ec) return;  // end of output: the worker is exiting; HandleDeath takes it from here
        w->output_pending.append(w->output_buffer.data(), n);
        self->EmitOutputLines(w, false);
        self->StartReadingOutput(w);
      });
}

void LocalWorkerPool::Impl::EmitOutputLines(const std::shared_ptr<Worker>& w, bool flush_partial) {
  size_t start = 0;
  for (size_t nl; (nl = w->output_pending.find('\n', start)) != std::string::npos; start = nl + 1) {
    if (!w->key.empty()) {
      listener->OnLog(w->key, SLUICE_LOG_INFO,
                      std::string_view(w->output_pending).substr(start, nl - start));
    }
  }
  w->output_pending.erase(0, start);
  if (flush_partial && !w->output_pending.empty()) {
    if (!w->key.empty()) listener->OnLog(w->key, SLUICE_LOG_INFO, w->output_pending);
    w->output_pending.clear();
  }
}

void LocalWorkerPool::Impl::DrainOutput(const std::shared_ptr<Worker>& w, bool flush_partial) {
  // The worker flushed stdout before it sent its result; read what is already in the pipe
  // (non-blocking since spawn) so that it lands in this try's log.
  const int fd = w->output.native_handle();
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    w->output_pending.append(buf, static_cast<size_t>(n));
  }
  EmitOutputLines(w, flush_partial);
}

void LocalWorkerPool::Impl::Send(const std::shared_ptr<Worker>& w, Type type,
                                 const std::string& payload) {
  // Frames queue up in `outgoing` while a write is in flight and leave together in the next
  // write: a burst of dispatches is one system call, not one loop turn per frame.
  w->outgoing += protocol::EncodeFrame(type, payload);
  if (w->writing || w->dead) return;
  StartWrite(w);
}

void LocalWorkerPool::Impl::StartWrite(const std::shared_ptr<Worker>& w) {
  w->writing = true;
  w->in_write.swap(w->outgoing);
  w->outgoing.clear();
  auto self = shared_from_this();
  asio::async_write(w->socket, asio::buffer(w->in_write),
                    [self, w](boost::system::error_code ec, size_t) {
                      w->writing = false;
                      w->in_write.clear();
                      if (ec || w->dead) return;  // a dead worker is handled by the read side
                      if (!w->outgoing.empty()) self->StartWrite(w);
                    });
}

void LocalWorkerPool::Impl::HandleFrame(const std::shared_ptr<Worker>& w, Type type,
                                        const std::string& payload) {
  w->last_heard = std::chrono::steady_clock::now();
  StatusOr<json> parsed = ParseJson(payload, "a worker frame", kFrameJsonLimits);
  if (!parsed.ok()) {
    Kill(w, {TaskOutcome::Kind::kCrashed,
             "worker sent a message the engine cannot read: " + parsed.status().message()});
    return;
  }
  json body = std::move(parsed).value();
  switch (type) {
    case Type::kHello:
      w->hello = true;
      crash_streak = 0;
      return;
    case Type::kHeartbeat:
      return;
    case Type::kScanning:
      w->scanning_file = body.value("file", "");
      return;
    case Type::kCatalog: {
      w->scanning = false;
      auto done = std::move(scan_done);
      scan_done = nullptr;
      StatusOr<PluginCatalog> catalog = PluginCatalog::FromJson(body);
      if (catalog.ok()) {
        for (auto& p : scan_problems) catalog->problems.push_back(p);
      }
      if (done) done(std::move(catalog));
      return;
    }
    case Type::kLog:
      if (!w->key.empty())
        listener->OnLog(w->key, body.value("level", SLUICE_LOG_INFO), body.value("text", ""));
      return;
    case Type::kMetric:
      if (!w->key.empty()) {
        listener->OnMetric(w->key, body.value("name", ""), body.value("value", 0.0),
                           body.value("step", int64_t{-1}));
      }
      return;
    case Type::kOutput:
      if (!w->key.empty()) {
        std::string name = body.value("name", "");
        body.erase("name");
        listener->OnOutput(w->key, name, body);
      }
      return;
    case Type::kCall: {
      json reply = w->key.empty()
                       ? json{{"ok", false}, {"error", "no try is running on this worker"}}
                       : listener->OnCall(w->key, body.value("method", ""),
                                          body.value("request", json::object()));
      reply["id"] = body.value("id", int64_t{0});
      Send(w, Type::kReply, reply.dump(-1, ' ', false, json::error_handler_t::replace));
      return;
    }
    case Type::kRevoked:
      HandleRevoked(w, body.value("key", ""), body.value("revoked", false));
      return;
    case Type::kResult: {
      const std::string key = body.value("key", "");
      if (w->revoking.erase(key) > 0 && w->key.empty() && !w->assigned.empty() &&
          w->assigned.front().key == key) {
        StartFront(w);  // it ran here before the revoke's answer came: it was not given back
      }
      auto it = std::find_if(w->assigned.begin(), w->assigned.end(),
                             [&](const TaskLaunch& l) { return l.key == key; });
      if (it == w->assigned.end()) return;
      w->assigned.erase(it);
      if (key == w->key) DrainOutput(w, true);
      if (key == w->key && w->forced && w->forced->kind == TaskOutcome::Kind::kTimedOut) {
        // A timed-out step that stopped: its worker goes with what the step started.
        Kill(w, *w->forced);
        return;
      }
      int code = body.value("code", SLUICE_RESULT_FAILED);
      std::string message = body.value("message", "");
      TaskOutcome outcome;
      const bool was_cancelled =
          cancelled.erase(key) > 0 ||
          (key == w->key && w->forced && w->forced->kind == TaskOutcome::Kind::kCancelled);
      if (was_cancelled) {
        // A step that saw the cancel says so itself ("cancelled", "cancelled; the command was
        // sent SIGTERM"): said once, not "cancelled: cancelled".
        outcome = {TaskOutcome::Kind::kCancelled, message.rfind("cancelled", 0) == 0 ? message
                                                  : message.empty() ? std::string("cancelled")
                                                                    : "cancelled: " + message};
      } else if (code == SLUICE_RESULT_SUCCESS) {
        outcome = {TaskOutcome::Kind::kSuccess, message};
      } else if (code == SLUICE_RESULT_SKIPPED) {
        outcome = {TaskOutcome::Kind::kSkipped, message};
      } else {
        outcome = {TaskOutcome::Kind::kFailed,
                   message.empty() ? "the step failed without a message" : message};
      }
      if (key == w->key) {
        Finish(w, std::move(outcome));
      } else {
        listener->OnFinished(key, std::move(outcome));
      }
      StartFront(w);
      DispatchPending();
      if (w->assigned.empty()) Steal(w);
      return;
    }
    default:
      return;
  }
}

void LocalWorkerPool::Impl::Steal(const std::shared_ptr<Worker>& idle) {
  if (shutting_down || idle->dead || idle->scanning || !idle->assigned.empty()) return;
  std::shared_ptr<Worker> victim;
  size_t most = 0;
  for (auto& w : workers) {
    if (w == idle || w->dead || w->key.empty()) continue;
    // Tries waiting behind the running one, not already asked back.
    size_t waiting = 0;
    for (size_t i = 1; i < w->assigned.size(); ++i) {
      waiting += w->revoking.count(w->assigned[i].key) == 0;
    }
    if (waiting > most) {
      most = waiting;
      victim = w;
    }
  }
  if (!victim) return;
  // Half of them (at least one), the ones that would start last there, so that the busy
  // worker keeps what it would reach first should its try end soon.
  size_t asked = 0;
  for (size_t i = victim->assigned.size(); i-- > 1 && asked < (most + 1) / 2;) {
    const std::string& key = victim->assigned[i].key;
    if (victim->revoking.count(key) > 0) continue;
    victim->revoking.insert(key);
    Send(victim, Type::kRevoke, json{{"key", key}}.dump());
    ++asked;
  }
}

void LocalWorkerPool::Impl::HandleRevoked(const std::shared_ptr<Worker>& w, const std::string& key,
                                          bool revoked) {
  if (w->revoking.erase(key) == 0) return;  // answered by its result already
  auto it = std::find_if(w->assigned.begin(), w->assigned.end(),
                         [&](const TaskLaunch& l) { return l.key == key; });
  if (it == w->assigned.end()) return;
  if (!revoked) {
    StartFront(w);  // it runs here; it may be the front whose start was held back
    return;
  }
  TaskLaunch launch = std::move(*it);
  w->assigned.erase(it);
  StartFront(w);
  if (cancelled.erase(key) > 0) {
    // Cancelled while it was being given back: it ends here, never started.
    auto l = listener;
    asio::post(io, [l, key] {
      l->OnFinished(key, {TaskOutcome::Kind::kCancelled, "cancelled before it started"});
    });
    return;
  }
  // To the least loaded worker: the idle one that asked, unless another got there first.
  pending.push_front(std::move(launch));
  DispatchPending();
}

void LocalWorkerPool::Impl::Finish(const std::shared_ptr<Worker>& w, TaskOutcome outcome) {
  std::string key = std::move(w->key);
  w->key.clear();
  w->forced.reset();
  w->timeout_timer.cancel();
  w->cancel_timer.cancel();
  listener->OnFinished(key, std::move(outcome));
}

void LocalWorkerPool::Impl::Kill(const std::shared_ptr<Worker>& w, TaskOutcome forced) {
  if (w->dead) return;
  if (!w->forced) w->forced = std::move(forced);
  ::kill(-w->pid, SIGKILL);
  // The socket's end of file arrives next and HandleDeath reports the forced outcome.
}

void LocalWorkerPool::Impl::HandleDeath(const std::shared_ptr<Worker>& w) {
  if (w->dead) return;
  w->dead = true;
  ::kill(-w->pid, SIGKILL);  // whatever is left of its process group
  int status = 0;
  while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR) {
  }
  DrainOutput(w, true);
  boost::system::error_code ignored;
  w->socket.close(ignored);
  w->output.close(ignored);
  w->timeout_timer.cancel();
  w->cancel_timer.cancel();
  const std::string how = DescribeExit(status);

  if (!w->hello) ++crash_streak;
  // Tries that were waiting in its inbox never started: they go to another worker as they are.
  for (auto it = w->assigned.rbegin(); it != w->assigned.rend(); ++it) {
    if (it->key != w->key) pending.push_front(std::move(*it));
  }
  w->assigned.clear();
  w->revoking.clear();
  if (!w->key.empty()) {
    TaskOutcome outcome;
    if (w->forced) {
      outcome = *w->forced;
    } else {
      outcome = {TaskOutcome::Kind::kCrashed, std::string("the worker running the step ") +
                                                  (WIFSIGNALED(status) ? "was " : "") + how};
    }
    Finish(w, std::move(outcome));
  }
  if (w->scanning) {
    w->scanning = false;
    if (!w->scanning_file.empty()) {
      scan_exclude.push_back(w->scanning_file);
      scan_problems.push_back(
          {w->scanning_file,
           w->scanning_file + ": loading it crashed the worker (" + how + "); it is ignored"});
    }
  }
  if (shutting_down) return;
  if (crash_streak >= 3) {
    start_failure = "workers die before they start (last one " + how + "); is `" +
                    options.worker_command[0] + " worker` runnable?";
    if (scan_done) {
      auto done = std::move(scan_done);
      scan_done = nullptr;
      done(Status::FailedPrecondition(start_failure));
    }
    return;
  }
  ++restarts;
  Status s = Spawn(w->index);
  if (!s.ok()) {
    start_failure = s.message();
    return;
  }
  if (scan_done) SendScan();
  DispatchPending();
  for (auto& idle : workers) Steal(idle);  // the new worker, if nothing was pending for it
}

bool LocalWorkerPool::Impl::Assign(TaskLaunch launch) {
  std::shared_ptr<Worker> best;
  for (auto& w : workers) {
    if (w->dead || w->scanning || w->assigned.size() >= kDepth) continue;
    if (!best || w->assigned.size() < best->assigned.size()) best = w;
  }
  if (!best) {
    pending.push_back(std::move(launch));
    return false;
  }
  // Written by hand: building a json tree around the request only to dump it costs a copy.
  std::string frame =
      "{\"key\":" + json(launch.key).dump() + ",\"file\":" + json(launch.plugin_file).dump() +
      ",\"step\":" + json(launch.step).dump() + ",\"request\":" + launch.request.dump();
  if (!launch.limits.empty()) {
    json limits = json::object();
    if (launch.limits.memory_bytes) limits["memory_bytes"] = *launch.limits.memory_bytes;
    if (launch.limits.cpu_time) {
      // RLIMIT_CPU counts whole seconds.
      limits["cpu_seconds"] = (launch.limits.cpu_time->count() + 999) / 1000;
    }
    if (launch.limits.open_files) limits["open_files"] = *launch.limits.open_files;
    frame += ",\"limits\":" + limits.dump();
  }
  if (!launch.artifact_dir.empty()) frame += ",\"artifacts\":" + json(launch.artifact_dir).dump();
  frame += "}";
  Send(best, Type::kRun, frame);
  best->assigned.push_back(std::move(launch));
  if (best->assigned.size() == 1) StartFront(best);
  return true;
}

void LocalWorkerPool::Impl::StartFront(const std::shared_ptr<Worker>& w) {
  if (w->dead || w->assigned.empty() || !w->key.empty()) return;
  const TaskLaunch& front = w->assigned.front();
  if (w->revoking.count(front.key) > 0) return;  // held until the revoke is answered
  const std::string key = front.key;
  w->key = key;
  w->forced.reset();
  w->last_heard = std::chrono::steady_clock::now();
  if (cancelled.count(key)) {
    // Cancelled while it waited: the worker skips it and answers at once.
  } else if (front.timeout) {
    // Airflow's on_kill: past its timeout the step is cancelled (it sees cancelled(); a
    // command gets SIGTERM) and has the grace period to stop; then, or once it has stopped,
    // the worker's process group is killed, with whatever the step left running.
    auto self = shared_from_this();
    const Duration limit = *front.timeout;
    const Duration grace = front.timeout_grace.value_or(options.cancel_grace);
    w->timeout_timer.expires_after(limit);
    w->timeout_timer.async_wait([self, w, key, limit, grace](boost::system::error_code ec) {
      if (ec || w->dead || w->key != key) return;
      const std::string what = "timed out after " + FormatDuration(limit);
      w->forced =
          TaskOutcome{TaskOutcome::Kind::kTimedOut, what + "; the step stopped when cancelled"};
      self->Send(w, Type::kCancel, json{{"key", key}}.dump());
      w->cancel_timer.expires_after(grace);
      w->cancel_timer.async_wait([self, w, key, what, grace](boost::system::error_code ec2) {
        if (ec2 || w->dead || w->key != key) return;
        w->forced =
            TaskOutcome{TaskOutcome::Kind::kTimedOut,
                        what + "; the step did not stop within its " + FormatDuration(grace) +
                            " grace period and the worker's process group was killed"};
        self->Kill(w, *w->forced);
      });
    });
  }
  listener->OnStarted(key, w->pid);
}

void LocalWorkerPool::Impl::Watch() {
  // One timer for the pool: a busy worker that has been silent too long is killed.
  auto self = shared_from_this();
  watchdog_timer->expires_after(options.heartbeat_timeout / 4);
  watchdog_timer->async_wait([self](boost::system::error_code ec) {
    if (ec || self->shutting_down) return;
    const auto now = std::chrono::steady_clock::now();
    for (auto& w : self->workers) {
      if (w->dead || w->key.empty()) continue;
      auto silent = now - w->last_heard;
      if (silent > self->options.heartbeat_timeout) {
        self->Kill(w, {TaskOutcome::Kind::kLost,
                       "the worker sent no heartbeat for " +
                           FormatDuration(std::chrono::duration_cast<Duration>(silent)) +
                           " and was killed (stopped or frozen?)"});
      }
    }
    self->Watch();
  });
}

void LocalWorkerPool::Impl::DispatchPending() {
  while (!pending.empty()) {
    TaskLaunch next = std::move(pending.front());
    pending.pop_front();
    if (!Assign(std::move(next))) break;  // it went back to the end of `pending`
  }
}

void LocalWorkerPool::Impl::SendScan() {
  for (auto& w : workers) {
    if (!w->dead && w->assigned.empty() && !w->scanning) {
      w->scanning = true;
      w->scanning_file.clear();
      Send(w, Type::kScan, json{{"dirs", scan_dirs}, {"exclude", scan_exclude}}.dump());
      return;
    }
  }
}

LocalWorkerPool::LocalWorkerPool(asio::io_context& io, Options options,
                                 ExecutorListener* listener) {
  if (options.workers == 0) options.workers = std::max(1u, std::thread::hardware_concurrency());
  if (options.worker_command.empty()) options.worker_command = {SelfExecutable(), "worker"};
  impl_ = std::make_shared<Impl>(io, std::move(options), listener);
}

LocalWorkerPool::~LocalWorkerPool() {
  impl_->shutting_down = true;
  if (impl_->watchdog_timer) impl_->watchdog_timer->cancel();
  for (auto& w : impl_->workers) {
    if (w && !w->dead) {
      w->dead = true;
      ::kill(-w->pid, SIGKILL);
      int status;
      while (waitpid(w->pid, &status, 0) < 0 && errno == EINTR) {
      }
      boost::system::error_code ignored;
      w->socket.close(ignored);
      w->output.close(ignored);
      w->timeout_timer.cancel();
      w->cancel_timer.cancel();
    }
  }
}

Status LocalWorkerPool::Start() {
  for (size_t i = 0; i < impl_->options.workers; ++i) {
    SLUICE_RETURN_IF_ERROR(impl_->Spawn(i));
  }
  impl_->watchdog_timer = std::make_unique<asio::steady_timer>(impl_->io);
  impl_->Watch();
  return Status::Ok();
}

void LocalWorkerPool::ScanPlugins(std::vector<std::string> dirs,
                                  std::function<void(StatusOr<PluginCatalog>)> done) {
  impl_->scan_dirs = std::move(dirs);
  impl_->scan_exclude.clear();
  impl_->scan_problems.clear();
  impl_->scan_done = std::move(done);
  impl_->SendScan();
}

uint64_t LocalWorkerPool::restarts() const { return impl_->restarts; }

size_t LocalWorkerPool::capacity() const { return impl_->options.workers * kDepth; }

void LocalWorkerPool::Launch(TaskLaunch launch) {
  if (!impl_->start_failure.empty()) {
    auto listener = impl_->listener;
    asio::post(impl_->io, [listener, key = launch.key, why = impl_->start_failure] {
      listener->OnFinished(key, {TaskOutcome::Kind::kCrashed, "cannot start the try: " + why});
    });
    return;
  }
  impl_->Assign(std::move(launch));
}

void LocalWorkerPool::Cancel(const std::string& key) {
  auto& pending = impl_->pending;
  auto queued = std::find_if(pending.begin(), pending.end(),
                             [&](const TaskLaunch& l) { return l.key == key; });
  if (queued != pending.end()) {
    pending.erase(queued);
    auto listener = impl_->listener;
    asio::post(impl_->io, [listener, key] {
      listener->OnFinished(key, {TaskOutcome::Kind::kCancelled, "cancelled before it started"});
    });
    return;
  }
  for (auto& w : impl_->workers) {
    if (w->dead) continue;
    const bool assigned = std::any_of(w->assigned.begin(), w->assigned.end(),
                                      [&](const TaskLaunch& l) { return l.key == key; });
    if (!assigned) continue;
    impl_->Send(w, Type::kCancel, json{{"key", key}}.dump());
    if (w->key != key) {
      impl_->cancelled.insert(key);  // the worker answers when it reaches it
      return;
    }
    w->forced = TaskOutcome{TaskOutcome::Kind::kCancelled, "cancelled"};
    auto self = impl_;
    w->cancel_timer.expires_after(impl_->options.cancel_grace);
    w->cancel_timer.async_wait([self, w, key](boost::system::error_code ec) {
      if (ec || w->dead || w->key != key) return;
      w->forced =
          TaskOutcome{TaskOutcome::Kind::kCancelled,
                      "cancelled; the step did not stop within the grace period and was killed"};
      self->Kill(w, *w->forced);
    });
    return;
  }
}

void LocalWorkerPool::Shutdown() {
  impl_->shutting_down = true;
  if (impl_->watchdog_timer) impl_->watchdog_timer->cancel();
  for (auto& w : impl_->workers) {
    if (!w->dead) impl_->Send(w, Type::kShutdown, "{}");
  }
}

}  // namespace sluice
