// StateStore on a real RocksDB in a temporary folder.
#include "sluice/state_store.h"

#include <doctest/doctest.h>
#include <rocksdb/db.h>

#include <filesystem>
#include <fstream>

#include "fault_env.h"
#include "test_util.h"

namespace sluice {
namespace {

RunRecord Run(const std::string& dag, const std::string& id, const std::string& created) {
  RunRecord r;
  r.dag_id = dag;
  r.run_id = id;
  r.state = RunState::kRunning;
  r.created_at = created;
  r.params = {{"x", 1}};
  r.dag_source = "[dag]\nid = \"" + dag + "\"\n";
  return r;
}

TryRecord Try(const std::string& dag, const std::string& run, const std::string& task, int n,
              TaskState s) {
  TryRecord t;
  t.dag_id = dag;
  t.run_id = run;
  t.task_id = task;
  t.try_number = n;
  t.state = s;
  t.outputs = {{"model", {{"kind", "file"}, {"path", "/m"}}}};
  return t;
}

Event Ev(const std::string& dag, const std::string& run, const std::string& to) {
  Event e;
  e.dag_id = dag;
  e.run_id = run;
  e.kind = "note";
  e.to = to;
  e.actor = "test";
  return e;
}

TEST_CASE("StateStore.Commit.SurvivesReopen") {
  testing::TempDir dir;
  {
    auto store = StateStore::Open(dir.path().string());
    REQUIRE_MESSAGE(store.ok(), store.status().ToString());
    StateStore::Batch batch;
    batch.PutRun(Run("a", "r1", "2026-01-01T00:00:00.000Z"));
    batch.PutRun(Run("a", "r2", "2026-01-02T00:00:00.000Z"));
    batch.PutRun(Run("b", "r1", "2026-01-03T00:00:00.000Z"));
    batch.PutTry(Try("a", "r1", "train", 1, TaskState::kFailed));
    batch.PutTry(Try("a", "r1", "train", 2, TaskState::kSuccess));
    batch.PutTry(Try("a", "r1", "prep", 1, TaskState::kSuccess));
    batch.AddEvent(Ev("a", "r1", "one"));
    batch.AddEvent(Ev("a", "r1", "two"));
    REQUIRE((*store)->Commit(&batch).ok());
    CHECK(batch.empty());
  }
  auto store = StateStore::Open(dir.path().string());
  REQUIRE(store.ok());
  auto run = (*store)->GetRun("a", "r1");
  REQUIRE(run.ok());
  CHECK(run->params["x"] == 1);
  CHECK(run->state == RunState::kRunning);

  std::vector<TryRecord> tries = testing::Must((*store)->ListTries("a", "r1"));
  REQUIRE(tries.size() == 3);
  CHECK(tries[0].task_id == "prep");
  CHECK(tries[1].task_id == "train");
  CHECK(tries[1].try_number == 1);
  CHECK(tries[2].try_number == 2);
  CHECK(tries[2].outputs["model"]["path"] == "/m");
  CHECK(tries[2].idempotency_key() == "a/r1/train/2");

  // Sequence numbers go on where they stopped.
  StateStore::Batch more;
  more.AddEvent(Ev("a", "r1", "three"));
  REQUIRE((*store)->Commit(&more).ok());
  std::vector<Event> events = testing::Must((*store)->ListEvents("a", "r1"));
  REQUIRE(events.size() == 3);
  CHECK(events[0].seq == 1);
  CHECK(events[2].seq == 3);
  CHECK(events[2].to == "three");

  std::vector<RunRecord> runs = testing::Must((*store)->ListRuns("", 10));
  REQUIRE(runs.size() == 3);
  CHECK(runs[0].dag_id == "b");  // newest first
  CHECK(testing::Must((*store)->ListRuns("a", 10)).size() == 2);
  CHECK(testing::Must((*store)->ListRuns("", 1)).size() == 1);
}

TEST_CASE("StateStore.FindRun.ByIdAloneOrAmbiguous") {
  testing::TempDir dir;
  auto store = StateStore::Open(dir.path().string());
  REQUIRE(store.ok());
  StateStore::Batch batch;
  batch.PutRun(Run("a", "shared", "t"));
  batch.PutRun(Run("b", "shared", "t"));
  batch.PutRun(Run("a", "only", "t"));
  REQUIRE((*store)->Commit(&batch).ok());
  auto only = (*store)->FindRun("only");
  REQUIRE(only.ok());
  CHECK(only->dag_id == "a");
  auto shared = (*store)->FindRun("shared");
  REQUIRE_FALSE(shared.ok());
  CHECK(shared.status().message().find("exists in several DAGs (a, b)") != std::string::npos);
  auto missing = (*store)->FindRun("nope");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.status().code() == Status::Code::kNotFound);
}

TEST_CASE("StateStore.Open.SecondWriterIsRefusedButReadersAreNot") {
  testing::TempDir dir;
  auto first = StateStore::Open(dir.path().string());
  REQUIRE(first.ok());
  StateStore::Batch batch;
  batch.PutRun(Run("a", "r", "t"));
  REQUIRE((*first)->Commit(&batch).ok());
  auto second = StateStore::Open(dir.path().string());
  REQUIRE_FALSE(second.ok());
  CHECK(second.status().message().find("is in use by another Sluice process") != std::string::npos);
  auto reader = StateStore::OpenReadOnly(dir.path().string());
  REQUIRE_MESSAGE(reader.ok(), reader.status().ToString());
  CHECK((*reader)->GetRun("a", "r").ok());
}

TEST_CASE("StateStore.Open.ReadOnlyOnEmptyFolderSaysWhatToDo") {
  testing::TempDir dir;
  auto reader = StateStore::OpenReadOnly(dir.file("nothing"));
  REQUIRE_FALSE(reader.ok());
  CHECK(reader.status().message().find("no Sluice state in") != std::string::npos);
}

// The run ids of every page of QueryRuns, newest first. A token that does not move on fails
// the test instead of looping.
std::vector<std::string> AllRunIds(const StateStore& store, StateStore::RunQuery query) {
  std::vector<std::string> ids;
  for (int pages = 0; pages < 1000; ++pages) {
    auto page = store.QueryRuns(query);
    REQUIRE_MESSAGE(page.ok(), page.status().message());
    for (const RunRecord& r : page->runs) ids.push_back(r.run_id);
    if (page->next_page_token.empty()) return ids;
    query.page_token = page->next_page_token;
  }
  FAIL("QueryRuns never gave a last page");
  return ids;
}

TEST_CASE("StateStore.Open.OlderStateDirReadsAndIsUpgradedByAWriter") {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  // Three runs of schema version 1, its creation-time index oldest first: a/<created>/<dag>/<run>
  // and d/<dag>/<created>/<run>.
  const std::vector<RunRecord> runs = {Run("x", "r1", "2026-01-01T00:00:01.000000Z"),
                                       Run("y", "r2", "2026-01-01T00:00:02.000000Z"),
                                       Run("x", "r3", "2026-01-01T00:00:03.000000Z")};
  {
    // A state dir as the release before the MLOps spaces wrote it: the core families only.
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> families;
    for (const char* name : {"default", "meta", "runs", "run_index", "task_instances", "events",
                             "run_order", "control", "run_sources"}) {
      families.emplace_back(name, rocksdb::ColumnFamilyOptions());
    }
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* db = nullptr;
    std::filesystem::create_directories(state);
    REQUIRE(rocksdb::DB::Open(options, state + "/db", families, &handles, &db).ok());
    REQUIRE(db->Put(rocksdb::WriteOptions(), handles[1], "schema_version", "1").ok());
    for (const RunRecord& r : runs) {
      const std::string key = r.dag_id + "/" + r.run_id;
      REQUIRE(db->Put(rocksdb::WriteOptions(), handles[2], key, r.ToJson().dump()).ok());
      REQUIRE(db->Put(rocksdb::WriteOptions(), handles[6],
                      "a/" + r.created_at + "/" + r.dag_id + "/" + r.run_id, "")
                  .ok());
      REQUIRE(db->Put(rocksdb::WriteOptions(), handles[6],
                      "d/" + r.dag_id + "/" + r.created_at + "/" + r.run_id, "")
                  .ok());
    }
    for (auto* h : handles) REQUIRE(db->DestroyColumnFamilyHandle(h).ok());
    delete db;
  }
  {
    auto reader = StateStore::OpenReadOnly(state);
    REQUIRE_MESSAGE(reader.ok(), reader.status().message());
    CHECK(!(*reader)->Has(Space::kModels, "m/x"));
    CHECK((*reader)->Get(Space::kArtifacts, "a").status().code() == Status::Code::kNotFound);
    size_t seen = 0;
    CHECK((*reader)
              ->Scan(Space::kCache, "",
                     [&](const std::string&, const nlohmann::json&) {
                       ++seen;
                       return true;
                     })
              .ok());
    CHECK(seen == 0);
    // The old index reads as it is, newest first, a page at a time.
    StateStore::RunQuery query;
    query.limit = 1;
    CHECK(AllRunIds(**reader, query) == std::vector<std::string>{"r3", "r2", "r1"});
    query.dag_id = "x";
    CHECK(AllRunIds(**reader, query) == std::vector<std::string>{"r3", "r1"});
  }
  {
    auto writer = StateStore::Open(state);  // adds the missing families, rewrites the index
    REQUIRE(writer.ok());
    StateStore::Batch batch;
    batch.Put(Space::kModels, "m/x", nlohmann::json{{"name", "x"}});
    RunRecord newest = Run("y", "r4", "2026-01-01T00:00:04.000000Z");
    batch.PutRun(newest);
    REQUIRE((*writer)->Commit(&batch).ok());
  }
  auto reader = StateStore::OpenReadOnly(state);
  REQUIRE(reader.ok());
  CHECK((*reader)->Has(Space::kModels, "m/x"));
  StateStore::RunQuery query;
  query.limit = 2;
  CHECK(AllRunIds(**reader, query) == std::vector<std::string>{"r4", "r3", "r2", "r1"});
  query.dag_id = "x";
  CHECK(AllRunIds(**reader, query) == std::vector<std::string>{"r3", "r1"});
  // No key of the old index is left behind, and the store says it is version 2.
  rocksdb::DB* db = nullptr;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  std::vector<std::string> names;
  REQUIRE(rocksdb::DB::ListColumnFamilies(rocksdb::DBOptions(), state + "/db", &names).ok());
  families.reserve(names.size());
  for (const std::string& name : names) families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  REQUIRE(rocksdb::DB::OpenForReadOnly(rocksdb::DBOptions(), state + "/db", families, &handles, &db)
              .ok());
  const size_t order = std::find(names.begin(), names.end(), "run_order") - names.begin();
  const size_t meta = std::find(names.begin(), names.end(), "meta") - names.begin();
  std::vector<std::string> keys;
  std::unique_ptr<rocksdb::Iterator> iter(db->NewIterator(rocksdb::ReadOptions(), handles[order]));
  for (iter->SeekToFirst(); iter->Valid(); iter->Next()) keys.push_back(iter->key().ToString());
  iter.reset();
  CHECK(keys.size() == 8);
  for (const std::string& key : keys) {
    const bool new_index = key.rfind("A/", 0) == 0 || key.rfind("D/", 0) == 0;
    CHECK_MESSAGE(new_index, key);
  }
  std::string version;
  CHECK(db->Get(rocksdb::ReadOptions(), handles[meta], "schema_version", &version).ok());
  CHECK(version == std::to_string(kSchemaVersion));
  for (auto* h : handles) REQUIRE(db->DestroyColumnFamilyHandle(h).ok());
  delete db;
}

TEST_CASE("StateStore.States.NamesRoundTrip") {
  for (TaskState s : {TaskState::kPending, TaskState::kQueued, TaskState::kRunning,
                      TaskState::kSuccess, TaskState::kFailed, TaskState::kUpForRetry,
                      TaskState::kUpstreamFailed, TaskState::kSkipped}) {
    CHECK(ParseTaskState(TaskStateName(s)) == s);
  }
  CHECK(IsTerminal(TaskState::kSkipped));
  CHECK_FALSE(IsTerminal(TaskState::kUpForRetry));
  for (RunState s :
       {RunState::kQueued, RunState::kRunning, RunState::kSuccess, RunState::kFailed}) {
    CHECK(ParseRunState(RunStateName(s)) == s);
  }
}

}  // namespace
}  // namespace sluice

namespace sluice {
namespace {

TEST_CASE("StateStore.Records.OddTextSurvivesTheRoundTrip") {
  testing::TempDir dir;
  auto store = StateStore::Open(dir.path().string());
  REQUIRE(store.ok());
  TryRecord t = Try("a", "r", "t", 1, TaskState::kFailed);
  t.reason = std::string(
      "quote \" backslash \\ newline\n tab\t bell\x07 bad utf8 \xff\xfe end, ok utf8 \xc3\xa9");
  t.params = {{"s", "x"}, {"n", 1.5}};
  t.duration_seconds = 1.25;
  StateStore::Batch batch;
  batch.PutTry(t);
  REQUIRE((*store)->Commit(&batch).ok());
  std::vector<TryRecord> back = testing::Must((*store)->ListTries("a", "r"));
  REQUIRE(back.size() == 1);
  CHECK(back[0].reason == std::string("quote \" backslash \\ newline\n tab\t bell\x07 bad utf8 "
                                      "\xef\xbf\xbd\xef\xbf\xbd end, ok utf8 \xc3\xa9"));
  CHECK(back[0].params == t.params);
  CHECK(back[0].duration_seconds == doctest::Approx(1.25));
  CHECK(back[0].ToJson() == TryRecord::FromJson(back[0].ToJson())->ToJson());
}

TEST_CASE("StateStore.QueryRuns.PagesNewestFirstWithFilters") {
  testing::TempDir dir;
  auto store = StateStore::Open(dir.path().string());
  REQUIRE(store.ok());
  StateStore::Batch batch;
  for (int i = 0; i < 25; ++i) {
    char created[40];
    std::snprintf(created, sizeof created, "2026-01-01T00:00:%02d.000000Z", i);
    RunRecord r = Run(i % 2 ? "odd" : "even", "r" + std::to_string(i), created);
    r.state = i % 5 == 0 ? RunState::kFailed : RunState::kSuccess;
    batch.PutRun(r);
    batch.PutRun(r);  // written twice (a state change): still one index entry
  }
  REQUIRE((*store)->Commit(&batch).ok());

  StateStore::RunQuery query;
  query.limit = 10;
  const std::vector<std::string> seen = AllRunIds(**store, query);
  REQUIRE(seen.size() == 25);
  CHECK(seen.front() == "r24");
  CHECK(seen.back() == "r0");

  StateStore::RunQuery failed_odd;
  failed_odd.dag_id = "odd";
  failed_odd.states = {RunState::kFailed};
  auto got = (*store)->QueryRuns(failed_odd);
  REQUIRE(got.ok());
  REQUIRE(got->runs.size() == 2);  // r15, r5
  CHECK(got->runs[0].run_id == "r15");
  CHECK(got->runs[1].run_id == "r5");
  CHECK(got->next_page_token.empty());

  // A token this store did not give out is refused, not read as some other place.
  StateStore::RunQuery bad;
  bad.page_token = "yesterday/odd/r5";
  auto refused = (*store)->QueryRuns(bad);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.status().code() == Status::Code::kInvalidArgument);
  CHECK(refused.status().message().find("yesterday/odd/r5") != std::string::npos);
}

TEST_CASE("StateStore.Control.PutGetListDelete") {
  testing::TempDir dir;
  {
    auto store = StateStore::Open(dir.path().string());
    REQUIRE(store.ok());
    StateStore::Batch batch;
    batch.PutControl("dag/a", {{"paused", true}});
    batch.PutControl("dag/b", {{"paused", false}});
    batch.PutControl("token/x", {{"name", "ci"}});
    REQUIRE((*store)->Commit(&batch).ok());
    batch.PutControl("dag/b", nullptr);
    REQUIRE((*store)->Commit(&batch).ok());
  }
  auto store = StateStore::Open(dir.path().string());
  REQUIRE(store.ok());
  CHECK((*store)->GetControl("dag/a")->at("paused") == true);
  CHECK((*store)->GetControl("dag/b").status().code() == Status::Code::kNotFound);
  auto dags = testing::Must((*store)->ListControl("dag/"));
  REQUIRE(dags.size() == 1);
  CHECK(dags[0].first == "dag/a");
}

// Issue 15: after a failed write the store writes nothing more (RocksDB must not be asked to
// append to a log whose last append failed), every Commit names the state dir, and what was
// committed before is all there on reopen.
TEST_CASE("StateStore.Faults.AFailedWriteStopsEveryLaterWrite") {
  testing::TempDir dir;
  testing::FaultEnv env;
  StateStore::Options options;
  options.env = &env;
  {
    auto store = StateStore::Open(dir.file("state"), options);
    REQUIRE_MESSAGE(store.ok(), store.status().message());
    StateStore::Batch batch;
    batch.PutRun(Run("a", "before", "2026-01-01T00:00:00.000000Z"));
    REQUIRE((*store)->Commit(&batch).ok());

    env.fail_writes = true;
    batch.PutRun(Run("a", "during", "2026-01-01T00:00:01.000000Z"));
    Status failed = (*store)->Commit(&batch);
    CHECK(failed.code() == Status::Code::kIoError);
    CHECK(failed.message().find(dir.file("state")) != std::string::npos);
    CHECK(failed.message().find("--resume") != std::string::npos);

    env.fail_writes = false;  // the disk has room again, but this process stays stopped
    const int appends = env.writes_after_failure;
    batch.PutRun(Run("a", "after", "2026-01-01T00:00:02.000000Z"));
    Status again = (*store)->Commit(&batch);
    CHECK(again.message() == failed.message());
    CHECK(batch.empty());
    CHECK((*store)->write_error().message() == failed.message());
    CHECK(env.writes_after_failure == appends);  // nothing reached RocksDB
  }
  auto reopened = StateStore::Open(dir.file("state"));
  REQUIRE_MESSAGE(reopened.ok(), reopened.status().message());
  CHECK((*reopened)->HasRun("a", "before"));
  CHECK_FALSE((*reopened)->HasRun("a", "after"));
  StateStore::Batch batch;
  batch.PutRun(Run("a", "later", "2026-01-01T00:00:03.000000Z"));
  CHECK((*reopened)->Commit(&batch).ok());
}

// Issue 15: a read error in a scan read as a shorter list, so resume could run a task that
// had succeeded. Every list now fails instead.
TEST_CASE("StateStore.Faults.AReadErrorIsAnErrorNotAShortList") {
  testing::TempDir dir;
  {
    auto store = StateStore::Open(dir.file("state"));
    REQUIRE(store.ok());
    StateStore::Batch batch;
    batch.PutRun(Run("a", "r", "2026-01-01T00:00:00.000000Z"));
    for (int i = 0; i < 3; ++i) {
      batch.PutTry(Try("a", "r", "t" + std::to_string(i), 1, TaskState::kSuccess));
      batch.AddEvent(Ev("a", "r", "success"));
    }
    REQUIRE((*store)->Commit(&batch).ok());
  }
  {
    // Reopening replays the log into table files, which the next open reads from.
    auto store = StateStore::Open(dir.file("state"));
    REQUIRE(store.ok());
  }
  testing::FaultEnv env;
  StateStore::Options options;
  options.env = &env;
  auto reread = StateStore::Open(dir.file("state"), options);
  REQUIRE_MESSAGE(reread.ok(), reread.status().message());
  env.fail_reads = true;  // from here on, no table file can be read
  StatusOr<std::vector<TryRecord>> tries = (*reread)->ListTries("a", "r");
  CHECK_FALSE(tries.ok());
  CHECK(tries.status().message().find("cannot read the state store") != std::string::npos);
  CHECK_FALSE((*reread)->ListEvents("a", "r").ok());
  CHECK_FALSE((*reread)->ListRuns("a", 10).ok());
  env.fail_reads = false;
  CHECK(testing::Must((*reread)->ListTries("a", "r")).size() == 3);
}

// The newest file in `db` whose name ends with `suffix` (or starts with it, for MANIFEST-).
std::filesystem::path NewestFile(const std::string& state, const std::string& part) {
  std::filesystem::path newest;
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(state) / "db")) {
    const std::string name = e.path().filename().string();
    if (name.find(part) == std::string::npos) continue;
    if (newest.empty() || name > newest.filename().string()) newest = e.path();
  }
  return newest;
}

void CommitRuns(const std::string& state, int from, int to) {
  auto store = StateStore::Open(state);
  REQUIRE_MESSAGE(store.ok(), store.status().message());
  for (int i = from; i < to; ++i) {
    StateStore::Batch batch;  // one commit each: one log record each
    batch.PutRun(
        Run("a", "r" + std::to_string(i), "2026-01-01T00:00:0" + std::to_string(i) + ".000000Z"));
    REQUIRE((*store)->Commit(&batch).ok());
  }
}

// Issue 15: a cut-short write-ahead log lost the newest run, and `runs list` said nothing.
TEST_CASE("StateStore.Damage.ACutShortLogIsNamedAtOpenAndCopiedAside") {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  CommitRuns(state, 0, 5);
  const std::filesystem::path wal = NewestFile(state, ".log");
  REQUIRE_FALSE(wal.empty());
  std::filesystem::resize_file(wal, std::filesystem::file_size(wal) - 40);

  {
    auto reader = StateStore::OpenReadOnly(state);
    REQUIRE_MESSAGE(reader.ok(), reader.status().message());
    REQUIRE((*reader)->open_warnings().size() == 1);
    const std::string& warning = (*reader)->open_warnings()[0];
    INFO(warning);
    CHECK(warning.find(state) != std::string::npos);
    CHECK(warning.find("db/" + wal.filename().string() + " is damaged") != std::string::npos);
    CHECK(warning.find("bytes of it could not be read and were dropped") != std::string::npos);
    // The schema version and r0..r3 were read; r4's commit was in the dropped part.
    CHECK(warning.find("after 5 commits") != std::string::npos);
    CHECK((*reader)->HasRun("a", "r3"));
    CHECK_FALSE((*reader)->HasRun("a", "r4"));
  }
  {
    auto writer = StateStore::Open(state);
    REQUIRE_MESSAGE(writer.ok(), writer.status().message());
    REQUIRE((*writer)->open_warnings().size() == 1);
    const std::string& warning = (*writer)->open_warnings()[0];
    INFO(warning);
    const std::string marker = "a copy of the damaged log is in ";
    const size_t at = warning.find(marker);
    REQUIRE(at != std::string::npos);
    const std::filesystem::path copy =
        std::filesystem::path(warning.substr(at + marker.size())) / wal.filename();
    CHECK(std::filesystem::exists(copy));
    CHECK(std::filesystem::file_size(copy) > 0);
    CHECK((*writer)->HasRun("a", "r3"));
  }
  // The writer replayed what could be read; the next open is clean.
  auto again = StateStore::Open(state);
  REQUIRE(again.ok());
  CHECK((*again)->open_warnings().empty());
  CHECK((*again)->HasRun("a", "r3"));
}

TEST_CASE("StateStore.Damage.AGarbledLogRecordIsNamedAtOpen") {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  CommitRuns(state, 0, 5);
  const std::filesystem::path wal = NewestFile(state, ".log");
  {
    std::fstream f(wal, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(std::filesystem::file_size(wal) / 2));
    f.write("\xff\xff\xff\xff\xff\xff\xff\xff", 8);
  }
  auto reader = StateStore::OpenReadOnly(state);
  REQUIRE_MESSAGE(reader.ok(), reader.status().message());
  REQUIRE((*reader)->open_warnings().size() == 1);
  CHECK((*reader)->open_warnings()[0].find("is damaged (Corruption") != std::string::npos);
  CHECK((*reader)->HasRun("a", "r0"));
  CHECK_FALSE((*reader)->HasRun("a", "r4"));
}

// Issue 15: a cut-short MANIFEST was reported as "written by an older Sluice", and the advice
// (open it with a writer) then failed. It is damage, found before a writer touches the files,
// and `StateStore::Repair` gets back what the table files hold.
TEST_CASE("StateStore.Damage.ACutShortManifestIsDamageAndRepairGetsTheRunsBack") {
  testing::TempDir dir;
  const std::string state = dir.file("state");
  CommitRuns(state, 0, 5);
  { REQUIRE(StateStore::Open(state).ok()); }  // replays the log into table files
  { REQUIRE(StateStore::Open(state).ok()); }
  const std::filesystem::path manifest = NewestFile(state, "MANIFEST-");
  REQUIRE_FALSE(manifest.empty());
  std::filesystem::resize_file(manifest, std::filesystem::file_size(manifest) / 2);
  auto tables = [&] {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(state) / "db"))
      n += e.path().extension() == ".sst";
    return n;
  };
  const int tables_before = tables();
  REQUIRE(tables_before > 0);

  for (bool writer : {false, true}) {
    CAPTURE(writer);
    auto opened = writer ? StateStore::Open(state) : StateStore::OpenReadOnly(state);
    REQUIRE_FALSE(opened.ok());
    const std::string& message = opened.status().message();
    INFO(message);
    CHECK(opened.status().code() == Status::Code::kCorruption);
    CHECK(message.find("the state store in " + state + " is damaged") != std::string::npos);
    CHECK(message.find("Sluice changed nothing") != std::string::npos);
    CHECK(message.find("sluice state repair --state-dir " + state) != std::string::npos);
    CHECK(message.find("older Sluice") == std::string::npos);
    CHECK(tables() == tables_before);  // nothing was deleted
  }

  REQUIRE_MESSAGE(StateStore::Repair(state).ok(), StateStore::Repair(state).message());
  auto repaired = StateStore::Open(state);
  REQUIRE_MESSAGE(repaired.ok(), repaired.status().message());
  for (int i = 0; i < 5; ++i) CHECK((*repaired)->HasRun("a", "r" + std::to_string(i)));
  CHECK(std::filesystem::exists(std::filesystem::path(state) / "damaged"));
}

}  // namespace
}  // namespace sluice
