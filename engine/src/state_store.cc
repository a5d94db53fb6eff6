#include "sluice/state_store.h"

#include <fcntl.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/utilities/options_util.h>
#include <rocksdb/wal_filter.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <type_traits>
#include <unordered_map>

namespace sluice {

using nlohmann::json;

namespace {

constexpr std::array<std::pair<TaskState, std::string_view>, 8> kTaskStates = {{
    {TaskState::kPending, "pending"},
    {TaskState::kQueued, "queued"},
    {TaskState::kRunning, "running"},
    {TaskState::kSuccess, "success"},
    {TaskState::kFailed, "failed"},
    {TaskState::kUpForRetry, "up_for_retry"},
    {TaskState::kUpstreamFailed, "upstream_failed"},
    {TaskState::kSkipped, "skipped"},
}};

constexpr std::array<std::pair<RunState, std::string_view>, 4> kRunStates = {{
    {RunState::kQueued, "queued"},
    {RunState::kRunning, "running"},
    {RunState::kSuccess, "success"},
    {RunState::kFailed, "failed"},
}};

// RocksDB's info log (db/LOG). RocksDB's own file logger appends again after an append failed,
// and its writer asserts on that (an abort, seen on a full disk); this one stops at the first
// failed write instead, and rotates at kMaxBytes so that the log cannot fill the disk either.
// With an empty path it writes nothing (a read-only open must not touch the state dir).
class InfoLog : public rocksdb::Logger {
 public:
  static constexpr long kMaxBytes = 4 << 20;

  explicit InfoLog(std::string path)
      : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL), path_(std::move(path)) {}
  ~InfoLog() override {
    if (file_ != nullptr) std::fclose(file_);
  }

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    char line[2048];
    std::vsnprintf(line, sizeof line, format, ap);
    std::lock_guard<std::mutex> lock(mutex_);
    // Recovery's report of a damaged write-ahead log: "<path>.log: dropping <n> bytes; <why>".
    if (std::strstr(line, ".log: dropping ") != nullptr) drops_.emplace_back(line);
    if (failed_ || path_.empty()) return;
    if (file_ == nullptr || std::ftell(file_) > kMaxBytes) {
      if (file_ != nullptr) {
        std::fclose(file_);
        std::rename(path_.c_str(), (path_ + ".old").c_str());
      }
      file_ = std::fopen(path_.c_str(), "a");
      if (file_ == nullptr) {
        failed_ = true;
        return;
      }
    }
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    gmtime_r(&now, &utc);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &utc);
    if (std::fprintf(file_, "%s %s\n", when, line) < 0 || std::fflush(file_) != 0) {
      failed_ = true;
    }
  }

  // The write-ahead log damage that recovery reported, as RocksDB worded it.
  std::vector<std::string> drops() {
    std::lock_guard<std::mutex> lock(mutex_);
    return drops_;
  }

 private:
  const std::string path_;
  std::mutex mutex_;
  std::FILE* file_ = nullptr;       // guarded by mutex_
  bool failed_ = false;             // guarded by mutex_
  std::vector<std::string> drops_;  // guarded by mutex_
};

// Counts what recovery replays from each write-ahead log, so that a warning about a damaged
// log can say how much of it was kept.
class ReplayCount : public rocksdb::WalFilter {
 public:
  WalProcessingOption LogRecordFound(unsigned long long /*log_number*/,
                                     const std::string& log_file_name,
                                     const rocksdb::WriteBatch& batch,
                                     rocksdb::WriteBatch* /*new_batch*/,
                                     bool* /*batch_changed*/) override {
    Replayed& r = replayed_[std::filesystem::path(log_file_name).filename().string()];
    ++r.batches;
    r.writes += batch.Count();
    return WalProcessingOption::kContinueProcessing;
  }
  const char* Name() const override { return "sluice.ReplayCount"; }

  struct Replayed {
    uint64_t batches = 0;  // commits
    uint64_t writes = 0;   // records in them
  };
  Replayed Of(const std::string& file_name) const {
    auto it = replayed_.find(file_name);
    return it == replayed_.end() ? Replayed{} : it->second;
  }

 private:
  std::map<std::string, Replayed> replayed_;
};

// One warning per damaged log.
std::vector<std::string> DescribeDrops(const std::string& dir,
                                       const std::vector<std::string>& drops,
                                       const ReplayCount& replayed) {
  std::vector<std::string> warnings;
  for (const std::string& line : drops) {
    // "[db/db_impl/db_impl_open.cc:982] /state/db/000004.log: dropping 108 bytes; Corruption:
    // truncated record body"
    const size_t at = line.find(".log: dropping ");
    const size_t start = line.find_last_of(" ]/", at) + 1;
    const size_t count = at + std::strlen(".log: dropping ");
    const size_t reason = line.find("; ", count);
    if (at == std::string::npos || reason == std::string::npos) {
      warnings.push_back("state dir " + dir + ": recovery reported " + line);
      continue;
    }
    const std::string name = line.substr(start, at + 4 - start);
    const std::string bytes = line.substr(count, line.find(' ', count) - count);
    const std::string why = line.substr(reason + 2);
    const ReplayCount::Replayed kept = replayed.Of(name);
    std::string text = "state dir " + dir + ": the write-ahead log db/" + name + " is damaged (" +
                       why + "): " + bytes +
                       " bytes of it could not be read and were dropped, after " +
                       std::to_string(kept.batches) + " commits (" + std::to_string(kept.writes) +
                       " records) read from it. The changes written in the dropped part are "
                       "lost: a run may show an earlier state (running for one that had "
                       "ended), and `sluice run --resume` or the daemon continues it from "
                       "there. Check the disk (dmesg) before going on";
    warnings.push_back(std::move(text));
  }
  return warnings;
}

std::string Pad(int64_t n, int width) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*lld", width, static_cast<long long>(n));
  return buf;
}

// Column families, in the order their handles are kept. The module spaces (Space) come last,
// from kFirstSpace on.
constexpr size_t kFirstSpace = 9;
const std::vector<std::string>& ColumnFamilyNames() {
  static const std::vector<std::string> kNames = {rocksdb::kDefaultColumnFamilyName,
                                                  "meta",
                                                  "runs",
                                                  "run_index",
                                                  "task_instances",
                                                  "events",
                                                  "run_order",
                                                  "control",
                                                  "run_sources",
                                                  "artifacts",
                                                  "lineage",
                                                  "cache",
                                                  "models"};
  return kNames;
}

std::vector<rocksdb::ColumnFamilyDescriptor> Descriptors(
    const rocksdb::ColumnFamilyOptions& options) {
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  for (const std::string& name : ColumnFamilyNames()) descriptors.emplace_back(name, options);
  return descriptors;
}

std::string RunKey(const std::string& dag_id, const std::string& run_id) {
  return dag_id + "/" + run_id;
}

// Creation-time index. created_at is fixed-width ISO 8601, so it sorts by time; its digits are
// stored inverted (d -> 9-d) so that the index sorts newest first and a run list is a forward
// scan. Scanning backwards was the API's hot spot: right after a burst of new runs the newest
// keys sit in the memtable, where every step back is a skip-list search from the head.
std::string InvertTime(std::string_view time) {
  std::string out(time);
  for (char& c : out) {
    if (c >= '0' && c <= '9') c = static_cast<char>('9' - (c - '0'));
  }
  return out;
}
constexpr size_t kTimestampWidth = 27;        // 2026-01-01T00:00:00.000000Z
constexpr std::string_view kOrderAll = "A/";  // A/<inverted created>/<dag>/<run>
constexpr std::string_view kOrderDag = "D/";  // D/<dag>/<inverted created>/<run>
std::string OrderKeyAll(std::string_view created_at, std::string_view dag_id,
                        std::string_view run_id) {
  std::string key(kOrderAll);
  key.append(InvertTime(created_at)).append("/").append(dag_id).append("/").append(run_id);
  return key;
}
std::string OrderKeyDag(std::string_view created_at, std::string_view dag_id,
                        std::string_view run_id) {
  std::string key(kOrderDag);
  key.append(dag_id).append("/").append(InvertTime(created_at)).append("/").append(run_id);
  return key;
}
std::string OrderKeyAll(const RunRecord& r) {
  return OrderKeyAll(r.created_at, r.dag_id, r.run_id);
}
std::string OrderKeyDag(const RunRecord& r) {
  return OrderKeyDag(r.created_at, r.dag_id, r.run_id);
}

std::string TryKey(const TryRecord& r) {
  return r.dag_id + "/" + r.run_id + "/" + r.task_id + "/" + Pad(r.try_number, 5);
}

// Writes a flat JSON object field by field. Records are written on the hot path of every
// transition; building a json tree only to dump it costs twice the allocations.
class JsonWriter {
 public:
  JsonWriter() {
    out_.reserve(384);
    out_ += '{';
  }
  JsonWriter& Str(std::string_view key, std::string_view value) {
    Key(key);
    AppendEscaped(value);
    return *this;
  }
  JsonWriter& Int(std::string_view key, int64_t value) {
    Key(key);
    out_ += std::to_string(value);
    return *this;
  }
  JsonWriter& Bool(std::string_view key, bool value) {
    Key(key);
    out_ += value ? "true" : "false";
    return *this;
  }
  JsonWriter& Num(std::string_view key, double value) {
    Key(key);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6f", value);
    out_ += buf;
    return *this;
  }
  JsonWriter& Json(std::string_view key, const json& value) {
    Key(key);
    out_ += value.dump(-1, ' ', false, json::error_handler_t::replace);
    return *this;
  }
  std::string Done() {
    out_ += '}';
    return std::move(out_);
  }

 private:
  void Key(std::string_view key) {
    if (out_.size() > 1) out_ += ',';
    out_ += '"';
    out_ += key;
    out_ += "\":";
  }
  // JSON string with escapes; bytes that are not valid UTF-8 become U+FFFD, so that a
  // plugin's odd message can never make a record unreadable.
  void AppendEscaped(std::string_view s) {
    out_ += '"';
    for (size_t i = 0; i < s.size();) {
      const unsigned char c = static_cast<unsigned char>(s[i]);
      if (c == '"' || c == '\\') {
        out_ += '\\';
        out_ += static_cast<char>(c);
        ++i;
      } else if (c < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", c);
        out_ += buf;
        ++i;
      } else if (c < 0x80) {
        out_ += static_cast<char>(c);
        ++i;
      } else {
        size_t n = (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
        bool valid = n != 0 && i + n <= s.size();
        for (size_t k = 1; valid && k < n; ++k)
          valid = (static_cast<unsigned char>(s[i + k]) >> 6) == 0x2;
        if (valid) {
          out_.append(s.data() + i, n);
          i += n;
        } else {
          out_ += "\xef\xbf\xbd";
          ++i;
        }
      }
    }
    out_ += '"';
  }
  std::string out_;
};

}  // namespace

std::string_view TaskStateName(TaskState state) {
  for (const auto& [s, name] : kTaskStates) {
    if (s == state) return name;
  }
  return "?";
}

std::optional<TaskState> ParseTaskState(std::string_view name) {
  for (const auto& [s, n] : kTaskStates) {
    if (n == name) return s;
  }
  return std::nullopt;
}

bool IsTerminal(TaskState state) {
  return state == TaskState::kSuccess || state == TaskState::kFailed ||
         state == TaskState::kUpstreamFailed || state == TaskState::kSkipped;
}

std::string_view RunStateName(RunState state) {
  for (const auto& [s, name] : kRunStates) {
    if (s == state) return name;
  }
  return "?";
}

std::optional<RunState> ParseRunState(std::string_view name) {
  for (const auto& [s, n] : kRunStates) {
    if (n == name) return s;
  }
  return std::nullopt;
}

json RunRecord::ToJson() const {
  return {{"dag_id", dag_id},
          {"run_id", run_id},
          {"state", RunStateName(state)},
          {"run_type", run_type},
          {"logical_date", logical_date},
          {"data_interval_start", data_interval_start},
          {"data_interval_end", data_interval_end},
          {"params", params},
          {"dag_path", dag_path},
          {"dag_source", dag_source},
          {"created_at", created_at},
          {"started_at", started_at},
          {"ended_at", ended_at},
          {"triggered_by", triggered_by},
          {"no_cache", no_cache},
          {"tags", tags},
          {"note", note}};
}

StatusOr<RunRecord> RunRecord::FromJson(const json& j) {
  try {
    RunRecord r;
    r.dag_id = j.at("dag_id").get<std::string>();
    r.run_id = j.at("run_id").get<std::string>();
    auto state = ParseRunState(j.at("state").get<std::string>());
    if (!state) return Status::Corruption("run record has unknown state " + j.at("state").dump());
    r.state = *state;
    r.run_type = j.value("run_type", "manual");
    r.logical_date = j.value("logical_date", "");
    r.data_interval_start = j.value("data_interval_start", "");
    r.data_interval_end = j.value("data_interval_end", "");
    r.params = j.value("params", json::object());
    r.dag_path = j.value("dag_path", "");
    r.dag_source = j.value("dag_source", "");
    r.created_at = j.value("created_at", "");
    r.started_at = j.value("started_at", "");
    r.ended_at = j.value("ended_at", "");
    r.triggered_by = j.value("triggered_by", "");
    r.no_cache = j.value("no_cache", false);
    r.tags = j.value("tags", json::object());
    r.note = j.value("note", "");
    return r;
  } catch (const json::exception& e) {
    return Status::Corruption(std::string("malformed run record: ") + e.what());
  }
}

json TryRecord::ToJson() const {
  return {{"dag_id", dag_id},
          {"run_id", run_id},
          {"task_id", task_id},
          {"try_number", try_number},
          {"retry_base", retry_base},
          {"state", TaskStateName(state)},
          {"reason", reason},
          {"queued_at", queued_at},
          {"started_at", started_at},
          {"ended_at", ended_at},
          {"duration_seconds", duration_seconds},
          {"worker_pid", worker_pid},
          {"retry_at", retry_at},
          {"log_path", log_path},
          {"outputs", outputs},
          {"metrics", metrics},
          {"params", params},
          {"inputs", inputs},
          {"tags", tags},
          {"plugin_version", plugin_version},
          {"cache_key", cache_key},
          {"cached_from", cached_from},
          {"idempotency_key", idempotency_key()}};
}

StatusOr<TryRecord> TryRecord::FromJson(const json& j) {
  try {
    TryRecord r;
    r.dag_id = j.at("dag_id").get<std::string>();
    r.run_id = j.at("run_id").get<std::string>();
    r.task_id = j.at("task_id").get<std::string>();
    r.try_number = j.at("try_number").get<int>();
    r.retry_base = j.value("retry_base", 0);
    auto state = ParseTaskState(j.at("state").get<std::string>());
    if (!state) return Status::Corruption("task record has unknown state " + j.at("state").dump());
    r.state = *state;
    r.reason = j.value("reason", "");
    r.queued_at = j.value("queued_at", "");
    r.started_at = j.value("started_at", "");
    r.ended_at = j.value("ended_at", "");
    r.duration_seconds = j.value("duration_seconds", 0.0);
    r.worker_pid = j.value("worker_pid", int64_t{0});
    r.retry_at = j.value("retry_at", "");
    r.log_path = j.value("log_path", "");
    r.outputs = j.value("outputs", json::object());
    r.metrics = j.value("metrics", json::array());
    r.params = j.value("params", json::object());
    r.inputs = j.value("inputs", json::object());
    r.tags = j.value("tags", json::object());
    r.plugin_version = j.value("plugin_version", "");
    r.cache_key = j.value("cache_key", "");
    r.cached_from = j.value("cached_from", json());
    return r;
  } catch (const json::exception& e) {
    return Status::Corruption(std::string("malformed task record: ") + e.what());
  }
}

json Event::ToJson() const {
  return {{"seq", seq},       {"time", time},       {"dag_id", dag_id},
          {"run_id", run_id}, {"task_id", task_id}, {"try_number", try_number},
          {"kind", kind},     {"from", from},       {"to", to},
          {"reason", reason}, {"actor", actor}};
}

StatusOr<Event> Event::FromJson(const json& j) {
  try {
    Event e;
    e.seq = j.at("seq").get<int64_t>();
    e.time = j.value("time", "");
    e.dag_id = j.value("dag_id", "");
    e.run_id = j.value("run_id", "");
    e.task_id = j.value("task_id", "");
    e.try_number = j.value("try_number", 0);
    e.kind = j.value("kind", "");
    e.from = j.value("from", "");
    e.to = j.value("to", "");
    e.reason = j.value("reason", "");
    e.actor = j.value("actor", "");
    return e;
  } catch (const json::exception& e) {
    return Status::Corruption(std::string("malformed event: ") + e.what());
  }
}

namespace {

std::string Serialize(const TryRecord& t) {
  return JsonWriter()
      .Str("dag_id", t.dag_id)
      .Str("run_id", t.run_id)
      .Str("task_id", t.task_id)
      .Int("try_number", t.try_number)
      .Int("retry_base", t.retry_base)
      .Str("state", TaskStateName(t.state))
      .Str("reason", t.reason)
      .Str("queued_at", t.queued_at)
      .Str("started_at", t.started_at)
      .Str("ended_at", t.ended_at)
      .Num("duration_seconds", t.duration_seconds)
      .Int("worker_pid", t.worker_pid)
      .Str("retry_at", t.retry_at)
      .Str("log_path", t.log_path)
      .Json("outputs", t.outputs)
      .Json("metrics", t.metrics)
      .Json("params", t.params)
      .Json("inputs", t.inputs)
      .Json("tags", t.tags)
      .Str("plugin_version", t.plugin_version)
      .Str("cache_key", t.cache_key)
      .Json("cached_from", t.cached_from)
      .Str("idempotency_key", t.idempotency_key())
      .Done();
}

// A run record as stored: without its DAG source, which is kept apart (run_sources) so that
// listing runs reads and sends small records.
std::string Serialize(const RunRecord& r) {
  return JsonWriter()
      .Str("dag_id", r.dag_id)
      .Str("run_id", r.run_id)
      .Str("state", RunStateName(r.state))
      .Str("run_type", r.run_type)
      .Str("logical_date", r.logical_date)
      .Str("data_interval_start", r.data_interval_start)
      .Str("data_interval_end", r.data_interval_end)
      .Json("params", r.params)
      .Str("dag_path", r.dag_path)
      .Str("created_at", r.created_at)
      .Str("started_at", r.started_at)
      .Str("ended_at", r.ended_at)
      .Str("triggered_by", r.triggered_by)
      .Bool("no_cache", r.no_cache)
      .Json("tags", r.tags)
      .Str("note", r.note)
      .Done();
}

std::string Serialize(const Event& e) {
  return JsonWriter()
      .Int("seq", e.seq)
      .Str("time", e.time)
      .Str("dag_id", e.dag_id)
      .Str("run_id", e.run_id)
      .Str("task_id", e.task_id)
      .Int("try_number", e.try_number)
      .Str("kind", e.kind)
      .Str("from", e.from)
      .Str("to", e.to)
      .Str("reason", e.reason)
      .Str("actor", e.actor)
      .Done();
}

}  // namespace

void StateStore::Batch::PutRun(const RunRecord& run) { runs_.push_back(run); }
void StateStore::Batch::PutRun(RunRecord&& run) { runs_.push_back(std::move(run)); }
namespace {
// Room for n more, written to once: fresh memory costs a page fault per page at its first
// write (tens of microseconds each on some VMs), paid here rather than later.
template <typename T>
void ReserveTouched(std::vector<T>& v, size_t n) {
  const size_t size = v.size();
  if (v.capacity() >= size + n) return;
  v.resize(size + n);
  v.resize(size);
}
}  // namespace

void StateStore::Batch::Reserve(size_t runs, size_t tries, size_t events) {
  ReserveTouched(runs_, runs);
  ReserveTouched(tries_, tries);
  ReserveTouched(events_, events);
}
void StateStore::Batch::PutTry(const TryRecord& record) { tries_.push_back(record); }
void StateStore::Batch::PutControl(const std::string& key, json value) {
  control_.emplace_back(key, std::move(value));
}
void StateStore::Batch::AddEvent(Event event) { events_.push_back(std::move(event)); }
void StateStore::Batch::Put(Space space, std::string key, json value) {
  kv_.push_back({space, std::move(key), std::move(value)});
}

// ---------------------------------------------------------------------------------------------

struct StateStore::Impl {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::ColumnFamilyHandle* meta = nullptr;
  rocksdb::ColumnFamilyHandle* runs = nullptr;
  rocksdb::ColumnFamilyHandle* run_index = nullptr;
  rocksdb::ColumnFamilyHandle* tries = nullptr;
  rocksdb::ColumnFamilyHandle* events = nullptr;
  rocksdb::ColumnFamilyHandle* run_order = nullptr;
  rocksdb::ColumnFamilyHandle* control = nullptr;
  rocksdb::ColumnFamilyHandle* run_sources = nullptr;
  rocksdb::ColumnFamilyHandle* spaces[4] = {};  // by Space
  bool sync = true;
  std::string dir;  // the state dir, for messages
  // The first failed write; once set, Commit writes nothing more (RocksDB must not be asked
  // to sync a log whose last append failed). Guarded by error_mutex.
  mutable std::mutex error_mutex;
  Status write_error;
  // Records the first write error (a full disk named as such) and returns it.
  Status FailWrites(const rocksdb::Status& s) {
    const bool full = s.IsNoSpace() || s.ToString().find("No space") != std::string::npos;
    Status error = Status::IoError(
        "cannot write to the state store in " + dir + ": " +
        (full ? "the disk is full" : "a write failed") + " (" + s.ToString() +
        "). Nothing after the last durable transition was acted on. Free space on that disk "
        "(old runs: `sluice runs delete`, artifacts: `sluice gc`), then continue with "
        "`sluice run --resume RUN` or a daemon restart");
    std::lock_guard<std::mutex> lock(error_mutex);
    if (write_error.ok()) write_error = std::move(error);
    return write_error;
  }
  // A version-1 store opened read-only: its creation-time index is the old one (a/ d/, oldest
  // first), read backwards.
  bool legacy_order = false;
  // Counted while the store was opened read-only; RocksDB keeps a pointer to it.
  std::unique_ptr<ReplayCount> replayed;
  mutable std::mutex update_mutex;  // LockForUpdate

  rocksdb::ColumnFamilyHandle* Cf(Space space) const { return spaces[static_cast<int>(space)]; }

  // Next event sequence number per run ("dag/run"), loaded lazily from the last key.
  std::mutex seq_mutex;
  std::unordered_map<std::string, int64_t> next_seq;

  void AssignHandles() {
    meta = handles[1];
    runs = handles[2];
    run_index = handles[3];
    tries = handles[4];
    events = handles[5];
    run_order = handles[6];
    control = handles[7];
    run_sources = handles[8];
    for (size_t i = 0; i < 4; ++i) spaces[i] = handles[kFirstSpace + i];
  }

  ~Impl() {
    for (auto* h : handles) {
      if (db && h != nullptr) db->DestroyColumnFamilyHandle(h);
    }
    if (db) {
      db->Close().PermitUncheckedError();
    }
  }

  // The next event sequence number of a run. An error when the last one cannot be read: a
  // guess would overwrite events.
  StatusOr<int64_t> NextSeq(const std::string& run_key) {
    std::lock_guard<std::mutex> lock(seq_mutex);
    auto it = next_seq.find(run_key);
    if (it == next_seq.end()) {
      int64_t next = 1;
      std::unique_ptr<rocksdb::Iterator> iter(db->NewIterator(rocksdb::ReadOptions(), events));
      std::string upper = run_key + "/\xff";
      iter->SeekForPrev(upper);
      SLUICE_RETURN_IF_ERROR(ReadStatus(*iter));
      if (iter->Valid() && iter->key().starts_with(run_key + "/")) {
        const std::string_view seq = iter->key().ToStringView().substr(run_key.size() + 1);
        char* end = nullptr;
        const std::string digits(seq);
        next = std::strtoll(digits.c_str(), &end, 10) + 1;
        if (digits.empty() || *end != '\0') {
          return Status::Corruption("the state store in " + dir + " holds event key \"" +
                                    iter->key().ToString() + "\", which it never writes");
        }
      }
      it = next_seq.emplace(run_key, next).first;
    }
    return it->second++;
  }

  StatusOr<json> GetJson(rocksdb::ColumnFamilyHandle* cf, const std::string& key) const {
    std::string value;
    rocksdb::Status s = db->Get(rocksdb::ReadOptions(), cf, key, &value);
    if (s.IsNotFound()) return Status::NotFound("no value for \"" + key + "\"");
    if (!s.ok()) return Status::IoError(s.ToString());
    try {
      return json::parse(value);
    } catch (const json::exception& e) {
      return Status::Corruption("the value of \"" + key + "\" is not JSON: " + e.what());
    }
  }

  // Schema 1 -> 2: the creation-time index moves from a/<created>/<dag>/<run> and
  // d/<dag>/<created>/<run>, scanned backwards, to the inverted-time keys scanned forwards.
  // Each batch adds new keys and removes old ones together, and the version is written last,
  // so a crash part way leaves a store the next open finishes.
  Status MigrateRunOrder() {
    rocksdb::WriteOptions write;
    write.sync = true;
    rocksdb::WriteBatch wb;
    auto flush = [&]() -> Status {
      rocksdb::Status s = db->Write(write, &wb);
      wb.Clear();
      return s.ok() ? Status::Ok() : Status::IoError(s.ToString());
    };
    std::unique_ptr<rocksdb::Iterator> iter(db->NewIterator(rocksdb::ReadOptions(), run_order));
    for (iter->SeekToFirst(); iter->Valid(); iter->Next()) {
      const std::string_view key = iter->key().ToStringView();
      if (key.size() < 2 || key[1] != '/' || (key[0] != 'a' && key[0] != 'd')) continue;
      // a/<created>/<dag>/<run> or d/<dag>/<created>/<run>; ids have no '/'.
      const std::string_view rest = key.substr(2);
      const size_t first = rest.find('/');
      const size_t second = first == std::string_view::npos ? first : rest.find('/', first + 1);
      if (second != std::string_view::npos) {
        const std::string_view one = rest.substr(0, first);
        const std::string_view two = rest.substr(first + 1, second - first - 1);
        const std::string_view run = rest.substr(second + 1);
        wb.Put(run_order, key[0] == 'a' ? OrderKeyAll(one, two, run) : OrderKeyDag(two, one, run),
               "");
      }
      wb.Delete(run_order, iter->key());
      if (wb.Count() >= 10000) {
        if (Status s = flush(); !s.ok()) return s;
      }
    }
    if (!iter->status().ok()) return Status::IoError(iter->status().ToString());
    wb.Put(meta, "schema_version", std::to_string(kSchemaVersion));
    return flush();
  }

  // Calls f(key, value) for every key under `prefix` until f returns false (f may return
  // void: then every key). An iterator that stops early may have stopped on an error: the
  // scan returns it, so that a partial result never reads as complete.
  template <typename F>
  Status ScanPrefix(rocksdb::ColumnFamilyHandle* cf, const std::string& prefix, F&& f) const {
    std::unique_ptr<rocksdb::Iterator> iter(db->NewIterator(rocksdb::ReadOptions(), cf));
    for (iter->Seek(prefix); iter->Valid() && iter->key().starts_with(prefix); iter->Next()) {
      if constexpr (std::is_same_v<decltype(f(iter->key(), iter->value())), bool>) {
        if (!f(iter->key(), iter->value())) break;
      } else {
        f(iter->key(), iter->value());
      }
    }
    return ReadStatus(*iter);
  }

  Status ReadStatus(const rocksdb::Iterator& iter) const {
    if (iter.status().ok()) return Status::Ok();
    return Status::IoError(
        "cannot read the state store in " + dir + ": " + iter.status().ToString() +
        (iter.status().IsCorruption() ? "; the store is damaged: keep a copy of " + dir +
                                            ", then run `sluice state repair --state-dir " + dir +
                                            "` (docs/architecture.md, Errors and damage)"
                                      : std::string()));
  }
};

namespace {

// Copies the store's write-ahead logs (or its whole database folder) to
// <dir>/damaged/<UTC time>/ and returns that folder.
StatusOr<std::string> CopyAside(const std::string& dir, const std::filesystem::path& db_dir,
                                bool logs_only) {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
  std::filesystem::path to = std::filesystem::path(dir) / "damaged" / stamp;
  std::error_code ec;
  for (int n = 2; std::filesystem::exists(to, ec); ++n) {
    to = std::filesystem::path(dir) / "damaged" / (std::string(stamp) + "-" + std::to_string(n));
  }
  if (logs_only) {
    std::filesystem::create_directories(to, ec);
    for (const auto& entry : std::filesystem::directory_iterator(db_dir, ec)) {
      if (entry.path().extension() != ".log") continue;
      std::filesystem::copy_file(entry.path(), to / entry.path().filename(), ec);
      if (ec) break;
    }
  } else {
    std::filesystem::create_directories(to, ec);
    if (!ec) std::filesystem::copy(db_dir, to / "db", std::filesystem::copy_options::recursive, ec);
  }
  if (ec)
    return Status::IoError("cannot copy " + db_dir.string() + " to " + to.string() + ": " +
                           ec.message());
  return to.string();
}

}  // namespace

StateStore::StateStore() : impl_(std::make_unique<Impl>()) {}
StateStore::~StateStore() = default;

StatusOr<std::unique_ptr<StateStore>> StateStore::Open(const std::string& dir, Options options) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IoError("cannot create state dir " + dir + ": " + ec.message());

  // An existing store is first opened read-only, which changes nothing: damage must be found
  // before a writer's recovery acts on it (RocksDB deletes the table files that a cut-short
  // MANIFEST no longer lists, and discards a damaged log once it has replayed what it could).
  std::vector<std::string> warnings;
  const std::filesystem::path db_dir = std::filesystem::path(dir) / "db";
  if (std::filesystem::exists(db_dir / "CURRENT", ec)) {
    StatusOr<std::unique_ptr<StateStore>> probe = OpenReadOnly(dir);
    if (!probe.ok() && probe.status().code() == Status::Code::kCorruption) return probe.status();
    if (probe.ok() && !(*probe)->open_warnings().empty()) {
      warnings = (*probe)->open_warnings();
      StatusOr<std::string> copy = CopyAside(dir, db_dir, /*logs_only=*/true);
      for (std::string& w : warnings) {
        w += copy.ok() ? "; a copy of the damaged log is in " + *copy
                       : "; it could not be copied aside: " + copy.status().message();
      }
    }
  }

  rocksdb::DBOptions db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  db_options.max_background_jobs = 2;
  db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  if (options.env != nullptr) db_options.env = options.env;
  // Every transition is a small synced write, so the WAL's fdatasync is on the critical path
  // of every task. Preallocating WAL space (fallocate) makes each append change the file's
  // extent metadata, which fdatasync must then journal: measured here, 460 us per synced
  // write with it, 260 us without. Recycled WAL files are overwritten in place, which keeps
  // the size unchanged as well.
  db_options.allow_fallocate = false;
  db_options.recycle_log_file_num = 2;
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.OptimizeForSmallDb();

  const std::vector<rocksdb::ColumnFamilyDescriptor> descriptors = Descriptors(cf_options);

  std::unique_ptr<StateStore> store(new StateStore());
  store->dir_ = dir;
  store->impl_->dir = dir;
  store->impl_->sync = options.sync;
  const std::string db_path = (std::filesystem::path(dir) / "db").string();
  std::filesystem::create_directories(db_path, ec);
  if (ec) return Status::IoError("cannot create state dir " + db_path + ": " + ec.message());
  db_options.info_log = std::make_shared<InfoLog>(db_path + "/LOG");
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s =
      rocksdb::DB::Open(db_options, db_path, descriptors, &store->impl_->handles, &raw);
  if (!s.ok()) {
    std::string message = s.ToString();
    if (message.find("Read-only file system") != std::string::npos ||
        message.find("Permission denied") != std::string::npos) {
      return Status::IoError("cannot write to the state dir " + dir + ": " + message +
                             ". Readers (`sluice runs list`, `sluice events`) still work; "
                             "make it writable, or pass another --state-dir to run");
    }
    if (message.find("lock") != std::string::npos ||
        message.find("Resource temporarily") != std::string::npos) {
      return Status::FailedPrecondition(
          "state dir " + dir +
          " is in use by another Sluice process (a `sluice serve` daemon or "
          "another `sluice run`); wait for it to finish, stop it, or use another --state-dir");
    }
    return Status::IoError("cannot open the state store in " + dir + ": " + message);
  }
  store->impl_->db.reset(raw);
  store->impl_->AssignHandles();
  store->warnings_ = std::move(warnings);

  std::string version;
  s = raw->Get(rocksdb::ReadOptions(), store->impl_->meta, "schema_version", &version);
  if (s.IsNotFound()) {
    rocksdb::WriteOptions write;
    write.sync = true;
    s = raw->Put(write, store->impl_->meta, "schema_version", std::to_string(kSchemaVersion));
    if (!s.ok()) return Status::IoError("cannot write the schema version: " + s.ToString());
  } else if (!s.ok()) {
    return Status::IoError("cannot read the schema version: " + s.ToString());
  } else if (version == "1") {
    Status migrated = store->impl_->MigrateRunOrder();
    if (!migrated.ok()) {
      return Status::IoError("cannot bring the state in " + dir + " up to schema version " +
                             std::to_string(kSchemaVersion) + ": " + migrated.message() +
                             "; nothing was lost, and the next open tries again");
    }
  } else if (version != std::to_string(kSchemaVersion)) {
    return Status::FailedPrecondition(
        "state dir " + dir + " has schema version " + version + ", but this Sluice uses version " +
        std::to_string(kSchemaVersion) +
        "; use the Sluice release that wrote it, or another --state-dir");
  }
  return store;
}

namespace {

// How every "damaged" message ends: what was done (nothing) and what to do.
std::string DamagedAdvice(const std::string& dir) {
  return ". Sluice changed nothing in it. Keep a copy of " + dir +
         ", then run `sluice state repair --state-dir " + dir +
         "`: it rebuilds the store from the files that are intact (what they no longer hold is "
         "lost); or start over with another --state-dir";
}

Status Damaged(const std::string& dir, const std::string& what) {
  return Status::Corruption("the state store in " + dir + " is damaged: " + what +
                            DamagedAdvice(dir));
}

// The column families the store had when it was last opened by a writer: RocksDB writes them
// to an OPTIONS file at every open. Empty when there is none to read.
std::vector<std::string> FamiliesInOptionsFile(const std::string& db_path) {
  rocksdb::ConfigOptions config;
  config.ignore_unknown_options = true;
  config.input_strings_escaped = true;
  rocksdb::DBOptions ignored;
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  std::vector<std::string> names;
  if (!rocksdb::LoadLatestOptions(config, db_path, &ignored, &descriptors).ok()) return names;
  for (const rocksdb::ColumnFamilyDescriptor& d : descriptors) names.push_back(d.name);
  return names;
}

// The number in a RocksDB file name ("/000043.sst" -> 43), or 0.
uint64_t FileNumber(const std::string& name) {
  const std::string base = std::filesystem::path(name).stem().string();
  if (base.empty() || base.find_first_not_of("0123456789") != std::string::npos) return 0;
  return std::stoull(base);
}

// Table files on disk that the MANIFEST does not list, and whose data nothing else holds:
// newer than every listed table (so not the inputs of a compaction, which are older than its
// outputs) and older than every write-ahead log on disk (so not the output of a flush that
// did not commit, whose log is still there to be replayed). A MANIFEST cut short after such
// files were added loses their records without any error from RocksDB. Empty when none.
std::string TablesTheManifestLost(rocksdb::DB& db, const std::string& db_path) {
  std::vector<rocksdb::LiveFileMetaData> live;
  db.GetLiveFilesMetaData(&live);
  std::set<uint64_t> listed;
  uint64_t newest_listed = 0;
  for (const rocksdb::LiveFileMetaData& f : live) {
    listed.insert(FileNumber(f.name));
    newest_listed = std::max(newest_listed, FileNumber(f.name));
  }
  uint64_t oldest_log = UINT64_MAX;
  std::vector<std::pair<uint64_t, std::string>> tables;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(db_path, ec)) {
    const std::string name = e.path().filename().string();
    const uint64_t n = FileNumber(name);
    if (e.path().extension() == ".log" && n != 0) oldest_log = std::min(oldest_log, n);
    if (e.path().extension() == ".sst" && n != 0) tables.emplace_back(n, name);
  }
  std::sort(tables.begin(), tables.end());
  std::string lost;
  for (const auto& [n, name] : tables) {
    if (listed.count(n) != 0 || n <= newest_listed || n >= oldest_log) continue;
    lost += (lost.empty() ? "db/" : ", db/") + name;
  }
  return lost;
}

bool Contains(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

StatusOr<std::unique_ptr<StateStore>> StateStore::OpenReadOnly(const std::string& dir) {
  const std::string db_path = (std::filesystem::path(dir) / "db").string();
  std::error_code ec;
  if (!std::filesystem::exists(std::filesystem::path(db_path) / "CURRENT", ec)) {
    return Status::NotFound(
        "no Sluice state in " + dir +
        " (`sluice run` records runs there; pass --state-dir to look elsewhere)");
  }
  auto log = std::make_shared<InfoLog>("");
  auto replayed = std::make_unique<ReplayCount>();
  rocksdb::DBOptions db_options;
  db_options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  db_options.info_log = log;
  db_options.wal_filter = replayed.get();
  std::unique_ptr<StateStore> store(new StateStore());
  store->dir_ = dir;
  store->impl_->dir = dir;
  // A state dir written by an older Sluice lacks the newest column families (the first
  // read-write open adds them). Reading must still work: a missing module space reads as
  // empty; a missing core family means the dir is too old to read. A family that the last
  // writer had (its OPTIONS file lists it) but the MANIFEST no longer lists is damage.
  std::vector<std::string> existing;
  const std::vector<std::string>& names = ColumnFamilyNames();
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(db_options, db_path, &existing);
  if (!s.ok()) {
    if (s.ToString().find("Permission denied") != std::string::npos) {
      return Status::IoError("cannot open the state store in " + dir + ": " + s.ToString());
    }
    return Damaged(dir, "its MANIFEST cannot be read (" + s.ToString() + ")");
  }
  const std::vector<std::string> had = FamiliesInOptionsFile(db_path);

  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  std::vector<size_t> slots;  // descriptor -> index in names
  for (size_t i = 0; i < names.size(); ++i) {
    if (Contains(existing, names[i])) {
      descriptors.emplace_back(names[i], rocksdb::ColumnFamilyOptions());
      slots.push_back(i);
    } else if (Contains(had, names[i])) {
      return Damaged(dir, "its MANIFEST no longer lists the \"" + names[i] +
                              "\" data that the store held (the file was cut short or garbled)");
    } else if (i < kFirstSpace && had.empty()) {
      // A writer writes the OPTIONS file once it has created every family: before that, the
      // store is being created.
      return Status::NotFound("no Sluice state in " + dir +
                              " yet (a writer is creating it; try again in a moment)");
    } else if (i < kFirstSpace) {
      return Status::FailedPrecondition(
          "state dir " + dir + " was written by an older Sluice (it has no \"" + names[i] +
          "\" data); run `sluice run` or `sluice serve` on it once to bring it up to date");
    }
  }
  rocksdb::DB* raw = nullptr;
  std::vector<rocksdb::ColumnFamilyHandle*> opened;
  s = rocksdb::DB::OpenForReadOnly(db_options, db_path, descriptors, &opened, &raw);
  if (!s.ok()) {
    // A MANIFEST that lost the edit deleting a table still lists it: "No such file".
    if (s.IsCorruption() || s.IsPathNotFound() ||
        s.ToString().find("No such file") != std::string::npos) {
      return Damaged(dir, s.ToString());
    }
    return Status::IoError("cannot open the state store in " + dir + ": " + s.ToString());
  }
  store->impl_->db.reset(raw);
  store->impl_->handles.assign(names.size(), nullptr);
  for (size_t k = 0; k < opened.size(); ++k) store->impl_->handles[slots[k]] = opened[k];
  store->impl_->AssignHandles();
  std::string version;
  s = raw->Get(rocksdb::ReadOptions(), store->impl_->meta, "schema_version", &version);
  if (s.IsNotFound()) {
    // Written synchronously when the store is created, and never deleted: a store that holds
    // runs without it lost table files.
    std::unique_ptr<rocksdb::Iterator> any(
        raw->NewIterator(rocksdb::ReadOptions(), store->impl_->runs));
    any->SeekToFirst();
    if (any->Valid()) {
      return Damaged(dir, "it holds runs but no schema version (the MANIFEST lost table files)");
    }
  } else if (!s.ok()) {
    if (s.IsCorruption()) return Damaged(dir, s.ToString());
    return Status::IoError("cannot read the schema version in " + dir + ": " + s.ToString());
  }
  if (std::string lost = TablesTheManifestLost(*raw, db_path); !lost.empty()) {
    return Damaged(dir, "its MANIFEST no longer lists table files that hold data (" + lost +
                            "; the MANIFEST was cut short or garbled)");
  }
  store->impl_->legacy_order = s.ok() && version == "1";
  if (s.ok() && version != "1" && version != std::to_string(kSchemaVersion)) {
    return Status::FailedPrecondition("state dir " + dir + " has schema version " + version +
                                      ", but this Sluice uses version " +
                                      std::to_string(kSchemaVersion));
  }
  store->warnings_ = DescribeDrops(dir, log->drops(), *replayed);
  store->impl_->replayed = std::move(replayed);
  return store;
}

bool StateStore::HasWriter(const std::string& dir) {
  // RocksDB locks db/LOCK with fcntl; F_GETLK asks who holds it without taking it, so a
  // writer starting now is never refused because of this.
  const std::string lock = (std::filesystem::path(dir) / "db" / "LOCK").string();
  const int fd = open(lock.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct flock probe {};
  probe.l_type = F_WRLCK;
  probe.l_whence = SEEK_SET;
  const bool held = fcntl(fd, F_GETLK, &probe) == 0 && probe.l_type != F_UNLCK;
  close(fd);
  return held;
}

Status StateStore::Repair(const std::string& dir) {
  const std::filesystem::path db_dir = std::filesystem::path(dir) / "db";
  std::error_code ec;
  if (!std::filesystem::exists(db_dir / "CURRENT", ec) &&
      !std::filesystem::exists(db_dir / "IDENTITY", ec)) {
    return Status::NotFound("no Sluice state in " + dir + " to repair");
  }
  // The lock file tells whether a daemon or `sluice run` has the store open (RepairDB takes
  // it too; this is for a message that says what to do).
  rocksdb::FileLock* lock = nullptr;
  rocksdb::Status locked = rocksdb::Env::Default()->LockFile((db_dir / "LOCK").string(), &lock);
  if (!locked.ok()) {
    return Status::FailedPrecondition("state dir " + dir +
                                      " is in use by another Sluice process; stop it first (" +
                                      locked.ToString() + ")");
  }
  rocksdb::Env::Default()->UnlockFile(lock).PermitUncheckedError();
  StatusOr<std::string> copy = CopyAside(dir, db_dir, /*logs_only=*/false);
  if (!copy.ok()) return copy.status();
  rocksdb::DBOptions db_options;
  db_options.info_log = std::make_shared<InfoLog>((db_dir / "LOG").string());
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.OptimizeForSmallDb();
  rocksdb::Status s = rocksdb::RepairDB(db_dir.string(), db_options, Descriptors(cf_options));
  if (!s.ok()) {
    return Status::IoError("cannot repair the state store in " + dir + ": " + s.ToString() +
                           "; the files as they were are in " + *copy);
  }
  // The schema version is written at creation; if the table that held it was lost, the
  // records left are still of this schema (repair keeps records, not formats).
  StatusOr<std::unique_ptr<StateStore>> reopened = Open(dir);
  if (!reopened.ok() && reopened.status().code() == Status::Code::kCorruption) {
    rocksdb::DB* raw = nullptr;
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DBOptions write_options = db_options;
    write_options.create_missing_column_families = true;
    s = rocksdb::DB::Open(write_options, db_dir.string(), Descriptors(cf_options), &handles, &raw);
    if (s.ok()) {
      rocksdb::WriteOptions sync;
      sync.sync = true;
      s = raw->Put(sync, handles[1], "schema_version", std::to_string(kSchemaVersion));
      for (auto* h : handles) raw->DestroyColumnFamilyHandle(h);
      delete raw;
    }
    if (!s.ok())
      return Status::IoError("cannot repair the state store in " + dir + ": " + s.ToString() +
                             "; the files as they were are in " + *copy);
    reopened = Open(dir);
  }
  if (!reopened.ok()) {
    return Status::IoError("the state store in " + dir +
                           " was repaired but still does not open: " + reopened.status().message() +
                           "; the files as they were are in " + *copy);
  }
  return Status::Ok();
}

Status CheckRunId(std::string_view run_id) {
  auto quoted = [](std::string_view text) {
    return json(std::string(text)).dump(-1, ' ', true, json::error_handler_t::replace);
  };
  if (run_id.empty()) return Status::InvalidArgument("the run id is empty");
  if (run_id.size() > kMaxRunIdBytes) {
    return Status::InvalidArgument("run id " + quoted(run_id.substr(0, 40)) + "... is " +
                                   std::to_string(run_id.size()) + " characters, more than " +
                                   std::to_string(kMaxRunIdBytes));
  }
  auto word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  if (!word(run_id[0])) {
    return Status::InvalidArgument("run id " + quoted(run_id) +
                                   " must start with a letter, a digit or '_'");
  }
  for (char c : run_id) {
    if (!word(c) && c != '.' && c != ':' && c != '+' && c != '-') {
      return Status::InvalidArgument("run id " + quoted(run_id) + " holds " +
                                     quoted(std::string_view(&c, 1)) +
                                     "; use letters, digits and \"_.:+-\"");
    }
  }
  return Status::Ok();
}

Status StateStore::write_error() const {
  std::lock_guard<std::mutex> lock(impl_->error_mutex);
  return impl_->write_error;
}

Status StateStore::Commit(Batch* batch, bool durable) {
  if (batch->empty()) return Status::Ok();
  Status refused = write_error();
  for (const RunRecord& run : batch->runs_) {
    if (!refused.ok()) break;
    refused = CheckRunId(run.run_id);
  }
  if (!refused.ok()) {
    batch->Clear();
    return refused;
  }
  rocksdb::WriteBatch wb;
  for (const RunRecord& run : batch->runs_) {
    wb.Put(impl_->runs, RunKey(run.dag_id, run.run_id), Serialize(run));
    if (!run.dag_source.empty())
      wb.Put(impl_->run_sources, RunKey(run.dag_id, run.run_id), run.dag_source);
    wb.Put(impl_->run_index, run.run_id + "/" + run.dag_id, "");
    wb.Put(impl_->run_order, OrderKeyAll(run), "");
    wb.Put(impl_->run_order, OrderKeyDag(run), "");
  }
  for (const auto& [key, value] : batch->control_) {
    if (value.is_null()) {
      wb.Delete(impl_->control, key);
    } else {
      wb.Put(impl_->control, key, value.dump(-1, ' ', false, json::error_handler_t::replace));
    }
  }
  for (const TryRecord& t : batch->tries_) wb.Put(impl_->tries, TryKey(t), Serialize(t));
  for (const Batch::Kv& kv : batch->kv_) {
    if (kv.value.is_null()) {
      wb.Delete(impl_->Cf(kv.space), kv.key);
    } else {
      wb.Put(impl_->Cf(kv.space), kv.key,
             kv.value.dump(-1, ' ', false, json::error_handler_t::replace));
    }
  }
  for (Event& e : batch->events_) {
    const std::string run_key = RunKey(e.dag_id, e.run_id);
    StatusOr<int64_t> seq = impl_->NextSeq(run_key);
    if (!seq.ok()) {
      batch->Clear();
      return seq.status();
    }
    e.seq = *seq;
    wb.Put(impl_->events, run_key + "/" + Pad(e.seq, 12), Serialize(e));
  }
  rocksdb::WriteOptions options;
  options.sync = impl_->sync && durable;
  rocksdb::Status s = impl_->db->Write(options, &wb);
  batch->Clear();
  if (!s.ok()) return impl_->FailWrites(s);
  return Status::Ok();
}

StatusOr<RunRecord> StateStore::GetRun(const std::string& dag_id, const std::string& run_id) const {
  std::string value;
  rocksdb::Status s =
      impl_->db->Get(rocksdb::ReadOptions(), impl_->runs, RunKey(dag_id, run_id), &value);
  if (s.IsNotFound())
    return Status::NotFound("no run \"" + run_id + "\" of DAG \"" + dag_id + "\"");
  if (!s.ok()) return Status::IoError(s.ToString());
  StatusOr<RunRecord> run = Status::Internal("unparsed");
  try {
    run = RunRecord::FromJson(json::parse(value));
  } catch (const json::exception& e) {
    return Status::Corruption(std::string("run record is not JSON: ") + e.what());
  }
  if (!run.ok()) return run;
  std::string source;
  s = impl_->db->Get(rocksdb::ReadOptions(), impl_->run_sources, RunKey(dag_id, run_id), &source);
  if (s.ok()) run->dag_source = std::move(source);
  return run;
}

bool StateStore::HasRun(const std::string& dag_id, const std::string& run_id) const {
  std::string value;
  return impl_->db->Get(rocksdb::ReadOptions(), impl_->runs, RunKey(dag_id, run_id), &value).ok();
}

StatusOr<RunRecord> StateStore::FindRun(const std::string& run_id) const {
  std::vector<std::string> dags;
  SLUICE_RETURN_IF_ERROR(impl_->ScanPrefix(
      impl_->run_index, run_id + "/", [&](const rocksdb::Slice& key, const rocksdb::Slice&) {
        dags.push_back(key.ToString().substr(run_id.size() + 1));
      }));
  if (dags.empty()) {
    return Status::NotFound("no run \"" + run_id + "\" in " + dir_ +
                            " (`sluice runs list` shows the runs)");
  }
  if (dags.size() > 1) {
    std::string list;
    for (const std::string& d : dags) list += (list.empty() ? "" : ", ") + d;
    return Status::InvalidArgument("run id \"" + run_id + "\" exists in several DAGs (" + list +
                                   "); say which with --dag");
  }
  return GetRun(dags[0], run_id);
}

namespace {

// Every record of type T under `prefix`. A record that does not parse is Corruption naming
// its key: a history with a hole must not read as complete (resume would run a task again).
template <typename T, typename Impl>
StatusOr<std::vector<T>> ScanRecords(const Impl& impl, rocksdb::ColumnFamilyHandle* cf,
                                     const std::string& prefix) {
  std::vector<T> out;
  Status damaged;
  Status read =
      impl.ScanPrefix(cf, prefix, [&](const rocksdb::Slice& key, const rocksdb::Slice& value) {
        StatusOr<T> record = Status::Internal("unparsed");
        try {
          record = T::FromJson(json::parse(value.ToStringView()));
        } catch (const json::exception& e) {
          record = Status::Corruption(e.what());
        }
        if (!record.ok()) {
          damaged =
              Status::Corruption("the state store in " + impl.dir + " holds a damaged record \"" +
                                 key.ToString() + "\" (" + record.status().message() +
                                 "); keep a copy of the folder, then see docs/architecture.md "
                                 "(State: damage)");
          return false;
        }
        out.push_back(std::move(*record));
        return true;
      });
  SLUICE_RETURN_IF_ERROR(read);
  SLUICE_RETURN_IF_ERROR(damaged);
  return out;
}

}  // namespace

StatusOr<std::vector<RunRecord>> StateStore::ListRuns(const std::string& dag_id,
                                                      size_t limit) const {
  StatusOr<std::vector<RunRecord>> scanned =
      ScanRecords<RunRecord>(*impl_, impl_->runs, dag_id.empty() ? "" : dag_id + "/");
  if (!scanned.ok()) return scanned.status();
  std::vector<RunRecord> runs = std::move(scanned).value();
  std::stable_sort(runs.begin(), runs.end(), [](const RunRecord& a, const RunRecord& b) {
    return a.created_at > b.created_at;
  });
  if (runs.size() > limit) runs.resize(limit);
  return runs;
}

StatusOr<std::vector<TryRecord>> StateStore::ListTries(const std::string& dag_id,
                                                       const std::string& run_id) const {
  return ScanRecords<TryRecord>(*impl_, impl_->tries, RunKey(dag_id, run_id) + "/");
}

StatusOr<TryRecord> StateStore::FindTry(const std::string& dag_id, const std::string& run_id,
                                        const std::string& task_id, int try_number) const {
  std::optional<TryRecord> chosen;
  bool known = false;
  StatusOr<std::vector<TryRecord>> tries = ListTries(dag_id, run_id);
  if (!tries.ok()) return tries.status();
  for (TryRecord& t : *tries) {
    if (t.task_id != task_id) continue;
    known = true;
    if (t.try_number == 0) continue;  // ended without running
    // The latest is the latest that was dispatched: not a cleared task's next try.
    if (try_number == 0 && t.queued_at.empty()) continue;
    if (try_number == 0 ? (!chosen || t.try_number > chosen->try_number)
                        : t.try_number == try_number) {
      chosen = std::move(t);
    }
  }
  if (chosen) return *std::move(chosen);
  if (!known) return Status::NotFound("run " + run_id + " has no task \"" + task_id + "\"");
  return Status::NotFound("task \"" + task_id + "\" has no try" +
                          (try_number ? " " + std::to_string(try_number) : std::string()) +
                          " in run " + run_id);
}

StatusOr<std::vector<Event>> StateStore::ListEvents(const std::string& dag_id,
                                                    const std::string& run_id) const {
  return ScanRecords<Event>(*impl_, impl_->events, RunKey(dag_id, run_id) + "/");
}

StatusOr<StateStore::RunPage> StateStore::QueryRuns(const RunQuery& query) const {
  // A version-1 store (read-only) keeps the old index: plain times, walked backwards.
  const bool legacy = impl_->legacy_order;
  const auto key_time = [legacy](std::string_view t) {
    return legacy ? std::string(t) : InvertTime(t);
  };
  std::string prefix = legacy ? (query.dag_id.empty() ? "a/" : "d/")
                              : std::string(query.dag_id.empty() ? kOrderAll : kOrderDag);
  if (!query.dag_id.empty()) prefix += query.dag_id + "/";
  RunPage page;
  if (query.limit == 0) return page;
  std::unique_ptr<rocksdb::Iterator> iter(
      impl_->db->NewIterator(rocksdb::ReadOptions(), impl_->run_order));
  const auto step = [&] { legacy ? iter->Prev() : iter->Next(); };
  if (query.page_token.empty()) {
    legacy ? iter->SeekForPrev(prefix + "\xff") : iter->Seek(prefix);
  } else {
    // The token is <created>/<dag>/<run> (every DAG) or <created>/<run> (one DAG), as given out
    // below; the key it names was the last one returned.
    const size_t slash = query.page_token.find('/');
    if (slash != kTimestampWidth) {
      return Status::InvalidArgument(
          "page_token \"" + query.page_token +
          "\" is not one this server gives out; pass the next_page_token of the previous "
          "page, or leave it out for the first page");
    }
    const std::string from =
        prefix + key_time(query.page_token.substr(0, slash)) + query.page_token.substr(slash);
    legacy ? iter->SeekForPrev(from) : iter->Seek(from);
    if (iter->Valid() && iter->key() == from) step();
  }
  for (; iter->Valid() && iter->key().starts_with(prefix); step()) {
    if (page.runs.size() == query.limit) {
      // The token names the last run returned: the next page starts after it.
      const RunRecord& last = page.runs.back();
      page.next_page_token = query.dag_id.empty()
                                 ? last.created_at + "/" + last.dag_id + "/" + last.run_id
                                 : last.created_at + "/" + last.run_id;
      break;
    }
    // The key's tail names the run: <created>/<dag>/<run> or, for one DAG, <created>/<run>.
    const std::string_view rest = iter->key().ToStringView().substr(prefix.size());
    const size_t slash = rest.find('/');
    if (slash == std::string_view::npos) continue;
    // After the time: <dag>/<run> (every DAG) or <run> (one DAG); the runs family's key.
    const std::string run_key = query.dag_id.empty()
                                    ? std::string(rest.substr(slash + 1))
                                    : query.dag_id + "/" + std::string(rest.substr(slash + 1));
    const size_t dag_end = run_key.find('/', query.dag_id.size());
    if (dag_end == std::string::npos) continue;
    std::string value;
    rocksdb::Status got = impl_->db->Get(rocksdb::ReadOptions(), impl_->runs, run_key, &value);
    if (got.IsNotFound()) continue;  // deleted since the index was written
    if (!got.ok()) return Status::IoError("cannot list runs: " + got.ToString());
    const bool filtered = !query.run_type.empty() || !query.states.empty();
    if (query.raw && !filtered) {
      // Only what the page token needs; the caller sends `raw` as it is.
      RunRecord& id = page.runs.emplace_back();
      id.created_at = key_time(rest.substr(0, slash));
      id.dag_id = run_key.substr(0, dag_end);
      id.run_id = run_key.substr(dag_end + 1);
      page.raw.push_back(std::move(value));
      continue;
    }
    StatusOr<RunRecord> run = Status::Internal("unparsed");
    try {
      run = RunRecord::FromJson(json::parse(value));
    } catch (const json::exception&) {
      continue;
    }
    if (!run.ok()) continue;
    if (!query.run_type.empty() && run->run_type != query.run_type) continue;
    if (!query.states.empty() &&
        std::find(query.states.begin(), query.states.end(), run->state) == query.states.end()) {
      continue;
    }
    if (query.raw) page.raw.push_back(std::move(value));
    page.runs.push_back(*std::move(run));
  }
  if (!iter->status().ok())
    return Status::IoError("cannot list runs: " + iter->status().ToString());
  return page;
}

StatusOr<json> StateStore::GetControl(const std::string& key) const {
  return impl_->GetJson(impl_->control, key);
}

StatusOr<std::vector<std::pair<std::string, json>>> StateStore::ListControl(
    const std::string& prefix) const {
  std::vector<std::pair<std::string, json>> out;
  Status read = impl_->ScanPrefix(
      impl_->control, prefix, [&](const rocksdb::Slice& key, const rocksdb::Slice& value) {
        try {
          out.emplace_back(key.ToString(), json::parse(value.ToStringView()));
        } catch (const json::exception&) {
        }
      });
  if (!read.ok()) return read;
  return out;
}

StatusOr<json> StateStore::Get(Space space, const std::string& key) const {
  if (impl_->Cf(space) == nullptr) return Status::NotFound("no value for \"" + key + "\"");
  return impl_->GetJson(impl_->Cf(space), key);
}

bool StateStore::Has(Space space, const std::string& key) const {
  if (impl_->Cf(space) == nullptr) return false;
  std::string value;
  return impl_->db->Get(rocksdb::ReadOptions(), impl_->Cf(space), key, &value).ok();
}

Status StateStore::Scan(Space space, const std::string& prefix,
                        const std::function<bool(const std::string&, const json&)>& fn) const {
  if (impl_->Cf(space) == nullptr) return Status::Ok();  // an older state dir, read-only: empty
  return impl_->ScanPrefix(impl_->Cf(space), prefix,
                           [&](const rocksdb::Slice& key, const rocksdb::Slice& raw) {
                             json value;
                             try {
                               value = json::parse(raw.ToStringView());
                             } catch (const json::exception&) {
                               return true;  // one damaged value must not hide the rest
                             }
                             return fn(key.ToString(), value);
                           });
}

Status StateStore::ScanKeys(Space space, const std::string& prefix,
                            const std::function<bool(const std::string&)>& fn) const {
  if (impl_->Cf(space) == nullptr) return Status::Ok();
  return impl_->ScanPrefix(
      impl_->Cf(space), prefix,
      [&](const rocksdb::Slice& key, const rocksdb::Slice&) { return fn(key.ToString()); });
}

Status StateStore::DeleteRun(const std::string& dag_id, const std::string& run_id) {
  StatusOr<RunRecord> run = GetRun(dag_id, run_id);
  if (!run.ok()) return run.status();
  if (run->state != RunState::kSuccess && run->state != RunState::kFailed) {
    return Status::FailedPrecondition("run " + run_id + " of DAG " + dag_id + " is " +
                                      std::string(RunStateName(run->state)) +
                                      "; cancel it or wait for it to end before deleting it");
  }
  rocksdb::WriteBatch wb;
  const std::string key = RunKey(dag_id, run_id);
  wb.Delete(impl_->runs, key);
  wb.Delete(impl_->run_sources, key);
  wb.Delete(impl_->run_index, run_id + "/" + dag_id);
  wb.Delete(impl_->run_order, OrderKeyAll(*run));
  wb.Delete(impl_->run_order, OrderKeyDag(*run));
  SLUICE_RETURN_IF_ERROR(impl_->ScanPrefix(
      impl_->tries, key + "/",
      [&](const rocksdb::Slice& k, const rocksdb::Slice&) { wb.Delete(impl_->tries, k); }));
  SLUICE_RETURN_IF_ERROR(write_error());
  rocksdb::WriteOptions options;
  options.sync = impl_->sync;
  rocksdb::Status s = impl_->db->Write(options, &wb);
  if (!s.ok()) return impl_->FailWrites(s);
  return Status::Ok();
}

Status StateStore::ScanTries(const std::function<bool(const TryRecord&)>& fn) const {
  return impl_->ScanPrefix(impl_->tries, "", [&](const rocksdb::Slice&, const rocksdb::Slice& raw) {
    StatusOr<TryRecord> record = Status::Internal("unparsed");
    try {
      record = TryRecord::FromJson(json::parse(raw.ToStringView()));
    } catch (const json::exception&) {
      return true;
    }
    return !record.ok() || fn(*record);
  });
}

std::unique_lock<std::mutex> StateStore::LockForUpdate() const {
  return std::unique_lock<std::mutex>(impl_->update_mutex);
}

}  // namespace sluice
