// Content addressing, garbage collection and the model registry, on a real RocksDB and a
// real filesystem.
#include "sluice/artifacts.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <atomic>
#include <filesystem>
#include <set>
#include <thread>

#include "sluice/registry.h"
#include "sluice/sha256.h"
#include "sluice/state_store.h"
#include "test_util.h"

namespace sluice {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

mode_t ModeOf(const fs::path& p) {
  struct stat st {};
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

TEST_CASE("Artifacts.FileIdIsItsSha256AndEqualContentIsStoredOnce") {
  testing::TempDir dir;
  const ArtifactStore store(dir.file("artifacts"));
  testing::WriteFile(dir.file("a.txt"), "hello\n");
  testing::WriteFile(dir.file("b.txt"), "hello\n");
  testing::WriteFile(dir.file("c.txt"), "hello!\n");

  StatusOr<StoredObject> a = store.Put(dir.file("a.txt"), /*is_dir=*/false, /*move=*/false);
  REQUIRE(a.ok());
  // What `sha256sum` prints for "hello\n".
  CHECK(a->id == "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03");
  CHECK(a->size == 6);
  CHECK(testing::ReadFile(a->path.string()) == "hello\n");
  CHECK(ModeOf(a->path) == 0444);
  CHECK(a->path.filename() == "a.txt");  // the name is kept: tools look at extensions
  CHECK(a->path.parent_path() == store.ObjectPath(a->id));
  CHECK(fs::exists(dir.file("a.txt")));  // copied, not moved

  StatusOr<StoredObject> b = store.Put(dir.file("b.txt"), false, /*move=*/true);
  REQUIRE(b.ok());
  CHECK(b->id == a->id);
  CHECK(b->path == a->path);  // stored once, under the first name
  StatusOr<StoredObject> c = store.Put(dir.file("c.txt"), false, /*move=*/true);
  REQUIRE(c.ok());
  CHECK(c->id != a->id);
  CHECK(!fs::exists(dir.file("c.txt")));  // moved in

  size_t objects = 0;
  store.ListObjects([&](const std::string&, uint64_t) { ++objects; });
  CHECK(objects == 2);

  CHECK(ValueArtifactId(json{{"b", 1}, {"a", 2}}) == ValueArtifactId(json{{"a", 2}, {"b", 1}}));
  CHECK(ValueArtifactId(json(1)) != ValueArtifactId(json("1")));
}

TEST_CASE("Artifacts.DirectoryIdDependsOnContentNamesAndModesOnly") {
  testing::TempDir dir;
  const ArtifactStore store(dir.file("artifacts"));
  // The same tree written in two orders, at two places.
  fs::create_directories(dir.file("x/sub"));
  testing::WriteFile(dir.file("x/sub/2.txt"), "two");
  testing::WriteFile(dir.file("x/1.txt"), "one");
  fs::create_directories(dir.file("y/sub"));
  testing::WriteFile(dir.file("y/1.txt"), "one");
  testing::WriteFile(dir.file("y/sub/2.txt"), "two");
  uint64_t size = 0;
  uint64_t files = 0;
  StatusOr<std::string> x = HashTree(dir.file("x"), &size, &files);
  StatusOr<std::string> y = HashTree(dir.file("y"), nullptr, nullptr);
  REQUIRE(x.ok());
  REQUIRE(y.ok());
  CHECK(*x == *y);
  CHECK(size == 6);
  CHECK(files == 2);

  fs::rename(dir.file("y/1.txt"), dir.file("y/one.txt"));
  CHECK(*HashTree(dir.file("y"), nullptr, nullptr) != *x);  // a renamed file is a new tree
  fs::rename(dir.file("y/one.txt"), dir.file("y/1.txt"));
  fs::permissions(dir.file("y/1.txt"), fs::perms::owner_exec, fs::perm_options::add);
  CHECK(*HashTree(dir.file("y"), nullptr, nullptr) != *x);  // so is an executable one

  StatusOr<StoredObject> stored = store.Put(dir.file("x"), /*is_dir=*/true, /*move=*/true);
  REQUIRE(stored.ok());
  CHECK(stored->id == *x);
  CHECK(stored->files == 2);
  CHECK(testing::ReadFile((stored->path / "sub" / "2.txt").string()) == "two");
  CHECK(ModeOf(stored->path) == 0555);
  CHECK(ModeOf(stored->path / "sub" / "2.txt") == 0444);
  // Storing the same tree again finds it: one object.
  fs::create_directories(dir.file("z/sub"));
  testing::WriteFile(dir.file("z/1.txt"), "one");
  testing::WriteFile(dir.file("z/sub/2.txt"), "two");
  StatusOr<StoredObject> again = store.Put(dir.file("z"), true, true);
  REQUIRE(again.ok());
  CHECK(again->id == stored->id);
  CHECK(store.Remove(stored->id).ok());
  CHECK(!store.Exists(stored->id));
}

ArtifactRecord Made(const std::string& id, const std::string& run, const std::string& task) {
  ArtifactRecord a;
  a.id = id;
  a.kind = "file";
  a.size = 3;
  a.files = 1;
  a.created_at = "2026-01-01T00:00:00Z";
  a.dag_id = "d";
  a.run_id = run;
  a.task_id = task;
  a.try_number = 1;
  a.output = "out";
  return a;
}

TryRecord Try(const std::string& run, const std::string& task, json outputs, json inputs) {
  TryRecord t;
  t.dag_id = "d";
  t.run_id = run;
  t.task_id = task;
  t.try_number = 1;
  t.state = TaskState::kSuccess;
  t.queued_at = "2026-01-01T00:00:00Z";
  t.outputs = std::move(outputs);
  t.inputs = std::move(inputs);
  return t;
}

TEST_CASE("Artifacts.GcRemovesOnlyWhatNothingRefersTo") {
  testing::TempDir dir;
  auto store = StateStore::Open(dir.file("state"));
  REQUIRE(store.ok());
  const ArtifactStore objects(ArtifactStore::RootFor(dir.file("state")));
  std::map<std::string, std::string> ids;  // name -> id
  for (const char* name : {"kept_by_run", "kept_by_cache", "kept_by_model", "garbage"}) {
    testing::WriteFile(dir.file(name), name);
    ids[name] = objects.Put(dir.file(name), false, true)->id;
  }
  testing::WriteFile(dir.file("orphan"), "orphan");
  const std::string orphan = objects.Put(dir.file("orphan"), false, true)->id;

  StateStore::Batch batch;
  RunRecord run;
  run.dag_id = "d";
  run.run_id = "r1";
  run.state = RunState::kSuccess;
  run.created_at = "2026-01-01T00:00:00Z";
  batch.PutRun(run);
  run.run_id = "r2";
  batch.PutRun(run);
  for (const auto& [name, id] : ids) {
    RecordProduced(**store, &batch, Made(id, name == "kept_by_run" ? "r1" : "r2", name));
  }
  batch.PutTry(Try("r1", "kept_by_run",
                   {{"out", {{"kind", "file"}, {"artifact", ids["kept_by_run"]}}}},
                   json::object()));
  batch.PutTry(Try("r2", "garbage", {{"out", {{"kind", "file"}, {"artifact", ids["garbage"]}}}},
                   json::object()));
  batch.Put(Space::kCache, "key1",
            {{"outputs", {{"out", {{"kind", "file"}, {"artifact", ids["kept_by_cache"]}}}}}});
  REQUIRE((*store)->Commit(&batch).ok());
  ModelRegistry registry(store->get());
  ModelRegistry::Registration r;
  r.model = "m";
  r.artifact = ids["kept_by_model"];
  REQUIRE(registry.Register(r).ok());

  // While r2 exists, its try keeps "garbage" alive; only the orphan object goes.
  StatusOr<GcReport> dry = CollectGarbage(store->get(), objects, /*dry_run=*/true);
  REQUIRE(dry.ok());
  CHECK(dry->removed.empty());
  CHECK(dry->orphan_objects == 1);
  CHECK(objects.Exists(orphan));

  REQUIRE((*store)->DeleteRun("d", "r2").ok());
  dry = CollectGarbage(store->get(), objects, /*dry_run=*/true);
  REQUIRE(dry.ok());
  CHECK(dry->removed == std::vector<std::string>{ids["garbage"]});
  CHECK(objects.Exists(ids["garbage"]));  // a dry run removes nothing

  StatusOr<GcReport> real = CollectGarbage(store->get(), objects, /*dry_run=*/false);
  REQUIRE(real.ok());
  CHECK(real->removed == std::vector<std::string>{ids["garbage"]});
  CHECK(real->kept == 3);
  CHECK(!objects.Exists(ids["garbage"]));
  CHECK(!objects.Exists(orphan));
  CHECK(!FindArtifact(**store, ids["garbage"]).ok());
  CHECK(testing::Must(Producers(**store, ids["garbage"])).empty());
  for (const char* name : {"kept_by_run", "kept_by_cache", "kept_by_model"}) {
    CAPTURE(name);
    CHECK(objects.Exists(ids[name]));
    CHECK(FindArtifact(**store, ids[name]).ok());
  }
  // Nothing left to collect.
  real = CollectGarbage(store->get(), objects, false);
  CHECK(real->removed.empty());
  CHECK(real->orphan_objects == 0);
}

TEST_CASE("Artifacts.FindByPrefix") {
  testing::TempDir dir;
  auto store = StateStore::Open(dir.file("state"));
  REQUIRE(store.ok());
  StateStore::Batch batch;
  RecordProduced(**store, &batch, Made(std::string(64, 'a'), "r", "t"));
  RecordProduced(**store, &batch, Made("abcdef" + std::string(58, '0'), "r", "t"));
  RecordProduced(**store, &batch, Made("abcdef" + std::string(58, '1'), "r", "t"));
  REQUIRE((*store)->Commit(&batch).ok());
  CHECK(FindArtifact(**store, "aaaaaa")->id == std::string(64, 'a'));
  CHECK(FindArtifact(**store, "sha256:aaaaaaa")->id == std::string(64, 'a'));
  CHECK(FindArtifact(**store, "abcdef1")->id == "abcdef" + std::string(58, '1'));
  CHECK(FindArtifact(**store, "abcdef").status().code() == Status::Code::kInvalidArgument);
  CHECK(FindArtifact(**store, "aaa").status().code() == Status::Code::kInvalidArgument);
  CHECK(FindArtifact(**store, "fedcba").status().code() == Status::Code::kNotFound);
  CHECK(FindArtifact(**store, "not-hex").status().code() == Status::Code::kInvalidArgument);
}

TEST_CASE("Registry.VersionsAliasesRollbackAndHistorySurviveReopen") {
  testing::TempDir dir;
  {
    auto store = StateStore::Open(dir.file("state"));
    REQUIRE(store.ok());
    StateStore::Batch batch;
    for (char c : {'1', '2', '3'})
      RecordProduced(**store, &batch, Made(std::string(64, c), "r", "t"));
    REQUIRE((*store)->Commit(&batch).ok());
    ModelRegistry registry(store->get());
    for (int i = 1; i <= 3; ++i) {
      ModelRegistry::Registration r;
      r.model = "clf";
      r.artifact = std::string(64, static_cast<char>('0' + i));
      r.metrics = {{"auc", 0.9 + i / 100.0}};
      r.actor = "test";
      if (i < 3) {
        r.alias = "production";
        r.reason = "v" + std::to_string(i) + " is better";
      }
      StatusOr<ModelVersion> v = registry.Register(r);
      REQUIRE(v.ok());
      CHECK(v->version == i);
    }
    CHECK(registry.Resolve("clf", "production")->version == 2);
    CHECK(registry.SetAlias("clf", "production", 3, "alice", "promote v3")->version == 3);
    CHECK(registry.SetAlias("clf", "production", 3, "alice", "again").status().code() ==
          Status::Code::kFailedPrecondition);
    CHECK(registry.SetAlias("clf", "production", 9, "alice", "").status().code() ==
          Status::Code::kNotFound);
    CHECK(registry.SetAlias("clf", "staging", 1, "bob", "")->version == 1);
    // Rollback walks back the alias's own history: 3 -> 2 -> 1, then refuses.
    CHECK(registry.Rollback("clf", "production", "carol", "latency")->version == 2);
    CHECK(registry.Rollback("clf", "production", "carol", "")->version == 1);
    CHECK(registry.Rollback("clf", "production", "carol", "").status().code() ==
          Status::Code::kFailedPrecondition);
    CHECK(registry.Rollback("clf", "nope", "carol", "").status().code() == Status::Code::kNotFound);
    ModelRegistry::Registration bad;
    bad.model = "clf";
    bad.artifact = std::string(64, 'f');  // never produced
    CHECK(registry.Register(bad).status().code() == Status::Code::kNotFound);
    bad.model = "bad/name";
    CHECK(registry.Register(bad).status().code() == Status::Code::kInvalidArgument);
  }
  // Everything is in the state dir: reopen and read it back.
  auto store = StateStore::Open(dir.file("state"));
  REQUIRE(store.ok());
  ModelRegistry registry(store->get());
  StatusOr<Model> model = registry.GetModel("clf");
  REQUIRE(model.ok());
  CHECK(model->latest_version == 3);
  CHECK(model->aliases.at("production").version == 1);
  CHECK(model->aliases.at("staging").version == 1);
  CHECK(testing::Must(registry.ListVersions("clf")).size() == 3);
  CHECK(registry.GetVersion("clf", 3)->metrics["auc"].get<double>() == doctest::Approx(0.93));
  std::vector<Event> history = testing::Must(registry.History("clf"));
  std::vector<std::string> moves;
  for (const Event& e : history) {
    if (e.kind == "alias")
      moves.push_back(e.task_id + ":" + e.from + "->" + e.to + " by " + e.actor + " (" + e.reason +
                      ")");
  }
  CHECK(moves == std::vector<std::string>{
                     "production:->1 by test (v1 is better)",
                     "production:1->2 by test (v2 is better)",
                     "production:2->3 by alice (promote v3)",
                     "staging:->1 by bob ()",
                     "production:3->2 by carol (rollback: latency)",
                     "production:2->1 by carol (rollback)",
                 });
}

TEST_CASE("Registry.ConcurrentRegistrationsGetDistinctConsecutiveVersions") {
  testing::TempDir dir;
  auto store = StateStore::Open(dir.file("state"));
  REQUIRE(store.ok());
  StateStore::Batch batch;
  RecordProduced(**store, &batch, Made(std::string(64, 'c'), "r", "t"));
  REQUIRE((*store)->Commit(&batch).ok());
  constexpr int kThreads = 8;
  constexpr int kEach = 25;
  std::vector<std::thread> threads;
  std::vector<std::vector<int>> got(kThreads);
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      ModelRegistry registry(store->get());
      for (int i = 0; i < kEach; ++i) {
        ModelRegistry::Registration r;
        r.model = "shared";
        r.artifact = std::string(64, 'c');
        r.alias = "latest";
        r.actor = "thread" + std::to_string(t);
        StatusOr<ModelVersion> v = registry.Register(r);
        if (v.ok())
          got[t].push_back(v->version);
        else
          ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(failures == 0);
  std::set<int> all;
  for (const auto& list : got) all.insert(list.begin(), list.end());
  CHECK(all.size() == kThreads * kEach);
  CHECK(*all.begin() == 1);
  CHECK(*all.rbegin() == kThreads * kEach);
  ModelRegistry registry(store->get());
  CHECK(registry.GetModel("shared")->latest_version == kThreads * kEach);
  CHECK(testing::Must(registry.ListVersions("shared")).size() == kThreads * kEach);
  // The alias ends on the last version made, and its history has every version in order.
  StatusOr<Model> model = registry.GetModel("shared");
  CHECK(model->aliases.at("latest").version == kThreads * kEach);
  CHECK(model->aliases.at("latest").history.size() == kThreads * kEach);
}

}  // namespace
}  // namespace sluice
