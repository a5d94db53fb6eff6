#include "sluice/artifacts.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <unordered_set>

#include "sluice/sha256.h"

namespace sluice {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string Pad5(int n) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%05d", n);
  return buf;
}

std::string TryPath(const std::string& dag, const std::string& run, const std::string& task,
                    int try_number) {
  return dag + "/" + run + "/" + task + "/" + Pad5(try_number);
}

bool IsHex(const std::string& s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// Files keep their execute bit; nothing keeps a write bit.
void MakeReadOnly(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || S_ISLNK(st.st_mode)) return;
  if (S_ISDIR(st.st_mode)) {
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(path, ec)) MakeReadOnly(entry.path());
    ::chmod(path.c_str(), 0555);
    return;
  }
  ::chmod(path.c_str(), (st.st_mode & S_IXUSR) ? 0555 : 0444);
}

void MakeWritable(const fs::path& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) return;
  ::chmod(path.c_str(), 0755);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(path, ec)) MakeWritable(entry.path());
}

// Parses "<id>/<dag>/<run>/<task>/<TTTTT>" (a lineage key without its "p/" or "c/").
bool ParseEdgeKey(const std::string& rest, LineageEdge* edge) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t slash = rest.find('/', start);
    parts.push_back(rest.substr(start, slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (parts.size() != 5) return false;
  edge->artifact = parts[0];
  edge->dag_id = parts[1];
  edge->run_id = parts[2];
  edge->task_id = parts[3];
  edge->try_number = std::atoi(parts[4].c_str());
  return true;
}

StatusOr<std::vector<LineageEdge>> Edges(const StateStore& store, const std::string& prefix,
                                         const std::string& artifact, const char* name_key) {
  std::vector<LineageEdge> edges;
  Status read = store.Scan(Space::kLineage, prefix + artifact + "/",
                           [&](const std::string& key, const json& v) {
                             LineageEdge edge;
                             if (ParseEdgeKey(key.substr(prefix.size()), &edge)) {
                               edge.name = v.value(name_key, "");
                               edges.push_back(std::move(edge));
                             }
                             return true;
                           });
  if (!read.ok()) return read;
  return edges;
}

}  // namespace

Status RemoveTree(const fs::path& path) {
  MakeWritable(path);
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) return Status::IoError("cannot remove " + path.string() + ": " + ec.message());
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// Objects

StatusOr<std::string> HashTree(const fs::path& dir, uint64_t* size, uint64_t* files) {
  struct Entry {
    std::string rel;
    std::string line;
  };
  std::vector<Entry> entries;
  uint64_t total = 0;
  uint64_t count = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    const std::string rel = fs::relative(p, dir, ec).generic_string();
    if (ec) break;
    const fs::file_status st = it->symlink_status(ec);
    if (fs::is_symlink(st)) {
      entries.push_back({rel, "l\n" + fs::read_symlink(p, ec).string()});
    } else if (fs::is_directory(st)) {
      entries.push_back({rel, "d\n"});
    } else if (fs::is_regular_file(st)) {
      uint64_t n = 0;
      StatusOr<std::string> digest = Sha256File(p.string(), &n);
      if (!digest.ok()) return digest.status();
      const bool exec = (fs::perms::owner_exec & st.permissions()) != fs::perms::none;
      entries.push_back({rel, std::string(exec ? "x\n" : "f\n") + *digest});
      total += n;
      ++count;
    } else {
      return Status::InvalidArgument(p.string() +
                                     " is neither a file, a directory nor a symlink; an artifact "
                                     "cannot hold it");
    }
  }
  if (ec) return Status::IoError("cannot read " + dir.string() + ": " + ec.message());
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.rel < b.rel; });
  Sha256 hash;
  hash.Update("sluice-tree-v1\n");
  for (const Entry& e : entries) {
    // NUL never occurs in a path: the listing is unambiguous.
    hash.Update(e.rel);
    hash.Update("\0", 1);
    hash.Update(e.line);
    hash.Update("\0", 1);
  }
  if (size != nullptr) *size = total;
  if (files != nullptr) *files = count;
  return hash.HexDigest();
}

std::string ValueArtifactId(const json& value) {
  return Sha256Hex("sluice-value-v1\n" +
                   value.dump(-1, ' ', false, json::error_handler_t::replace));
}

fs::path ArtifactStore::ObjectPath(const std::string& id) const {
  return root_ / "objects" / id.substr(0, 2) / id;
}

fs::path ArtifactStore::PathOf(const std::string& id, const std::string& kind) const {
  fs::path object = ObjectPath(id);
  if (kind != "file") return object;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(object, ec)) return entry.path();
  return object;
}

bool ArtifactStore::Exists(const std::string& id) const {
  struct stat st {};
  return ::lstat(ObjectPath(id).c_str(), &st) == 0;
}

StatusOr<StoredObject> ArtifactStore::Put(const fs::path& path, bool is_dir, bool move) const {
  StoredObject object;
  object.kind = is_dir ? "dir" : "file";
  StatusOr<std::string> id = is_dir ? HashTree(path, &object.size, &object.files)
                                    : Sha256File(path.string(), &object.size);
  if (!id.ok()) return id.status();
  object.id = *id;
  if (!is_dir) object.files = 1;
  object.path = ObjectPath(object.id);
  if (Exists(object.id)) {  // the same content is stored already
    object.path = PathOf(object.id, object.kind);
    return object;
  }

  static std::atomic<uint64_t> counter{0};
  std::error_code ec;
  const fs::path tmp_dir = root_ / "tmp";
  fs::create_directories(tmp_dir, ec);
  fs::create_directories(object.path.parent_path(), ec);
  if (ec)
    return Status::IoError("cannot create " + object.path.parent_path().string() + ": " +
                           ec.message());
  const fs::path tmp = tmp_dir / (object.id + "." + std::to_string(::getpid()) + "." +
                                  std::to_string(counter.fetch_add(1)));
  // A file keeps its name (tools look at extensions: .csv, .json, .ubj) inside a folder named
  // by its id; a directory is the object itself.
  fs::path placed_at = tmp;
  if (!is_dir) {
    fs::create_directories(tmp, ec);
    placed_at = tmp / path.filename();
  }
  bool placed = move && ::rename(path.c_str(), placed_at.c_str()) == 0;
  if (!placed) {
    fs::copy(path, placed_at, fs::copy_options::recursive | fs::copy_options::copy_symlinks, ec);
    if (ec) {
      RemoveTree(tmp).IgnoreError();
      return Status::IoError("cannot copy " + path.string() +
                             " into the artifact store: " + ec.message());
    }
  }
  MakeReadOnly(tmp);
  if (::rename(tmp.c_str(), object.path.c_str()) != 0) {
    const int err = errno;
    RemoveTree(tmp).IgnoreError();
    // Another try stored the same content first: it is there, which is the point.
    if (!((err == ENOTEMPTY || err == EEXIST) && Exists(object.id))) {
      return Status::IoError("cannot store " + path.string() + " as " + object.path.string() +
                             ": " + std::strerror(err));
    }
  }
  object.path = PathOf(object.id, object.kind);
  return object;
}

Status ArtifactStore::Remove(const std::string& id) const {
  const fs::path path = ObjectPath(id);
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return Status::Ok();
  return RemoveTree(path);
}

void ArtifactStore::ListObjects(const std::function<void(const std::string&, uint64_t)>& fn) const {
  std::error_code ec;
  for (const auto& shard : fs::directory_iterator(root_ / "objects", ec)) {
    std::error_code ec2;
    for (const auto& object : fs::directory_iterator(shard.path(), ec2)) {
      const std::string id = object.path().filename().string();
      if (id.size() != 64 || !IsHex(id)) continue;
      uint64_t bytes = 0;
      std::error_code ec3;
      if (object.is_directory(ec3)) {
        for (const auto& f : fs::recursive_directory_iterator(object.path(), ec3)) {
          if (f.is_regular_file(ec3)) bytes += f.file_size(ec3);
        }
      } else {
        bytes = object.file_size(ec3);
      }
      fn(id, bytes);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Records and lineage

json ArtifactRecord::ToJson() const {
  json j = {{"id", id},
            {"kind", kind},
            {"size", size},
            {"files", files},
            {"created_at", created_at},
            {"dag_id", dag_id},
            {"run_id", run_id},
            {"task_id", task_id},
            {"try_number", try_number},
            {"output", output}};
  if (kind == "value") j["value"] = value;
  return j;
}

StatusOr<ArtifactRecord> ArtifactRecord::FromJson(const json& j) {
  try {
    ArtifactRecord a;
    a.id = j.at("id").get<std::string>();
    a.kind = j.at("kind").get<std::string>();
    a.size = j.value("size", uint64_t{0});
    a.files = j.value("files", uint64_t{0});
    a.value = j.value("value", json());
    a.created_at = j.value("created_at", "");
    a.dag_id = j.value("dag_id", "");
    a.run_id = j.value("run_id", "");
    a.task_id = j.value("task_id", "");
    a.try_number = j.value("try_number", 0);
    a.output = j.value("output", "");
    return a;
  } catch (const json::exception& e) {
    return Status::Corruption(std::string("malformed artifact record: ") + e.what());
  }
}

void RecordProduced(const StateStore& store, StateStore::Batch* batch,
                    const ArtifactRecord& artifact) {
  if (!store.Has(Space::kArtifacts, artifact.id)) {
    batch->Put(Space::kArtifacts, artifact.id, artifact.ToJson());
  }
  batch->Put(Space::kLineage,
             "p/" + artifact.id + "/" +
                 TryPath(artifact.dag_id, artifact.run_id, artifact.task_id, artifact.try_number),
             json{{"output", artifact.output}});
}

void RecordConsumed(StateStore::Batch* batch, const std::string& artifact,
                    const TryRecord& consumer, const std::string& input) {
  batch->Put(Space::kLineage,
             "c/" + artifact + "/" +
                 TryPath(consumer.dag_id, consumer.run_id, consumer.task_id, consumer.try_number),
             json{{"input", input}});
}

StatusOr<ArtifactRecord> FindArtifact(const StateStore& store, const std::string& id_or_prefix) {
  std::string id = id_or_prefix;
  if (id.rfind("sha256:", 0) == 0) id = id.substr(7);
  if (id.size() < 6 || !IsHex(id)) {
    return Status::InvalidArgument("\"" + id_or_prefix +
                                   "\" is not an artifact id (64 hex digits, or at least the "
                                   "first 6 of them); `sluice artifacts list` shows them");
  }
  std::vector<json> found;
  SLUICE_RETURN_IF_ERROR(
      store.Scan(Space::kArtifacts, id, [&](const std::string&, const json& value) {
        found.push_back(value);
        return found.size() < 2;
      }));
  if (found.empty()) {
    return Status::NotFound("no artifact " + id_or_prefix +
                            " (`sluice artifacts list` shows them)");
  }
  if (found.size() > 1) {
    return Status::InvalidArgument("artifact id prefix " + id_or_prefix +
                                   " is ambiguous; give more digits");
  }
  return ArtifactRecord::FromJson(found[0]);
}

StatusOr<std::vector<LineageEdge>> Producers(const StateStore& store, const std::string& artifact) {
  return Edges(store, "p/", artifact, "output");
}

StatusOr<std::vector<LineageEdge>> Consumers(const StateStore& store, const std::string& artifact) {
  return Edges(store, "c/", artifact, "input");
}

namespace {

json LineageNode(const StateStore& store, const std::string& id, bool up, int depth,
                 std::set<std::string>* seen) {
  json node;
  StatusOr<ArtifactRecord> record = FindArtifact(store, id);
  node["artifact"] = record.ok() ? record->ToJson() : json{{"id", id}, {"missing", true}};
  if (!seen->insert(id).second) {
    node["seen"] = true;  // shown already higher in the tree
    return node;
  }
  json tries = json::array();
  StatusOr<std::vector<LineageEdge>> edges =
      depth != 1 ? (up ? Producers(store, id) : Consumers(store, id))
                 : StatusOr<std::vector<LineageEdge>>(std::vector<LineageEdge>());
  if (!edges.ok()) node["error"] = edges.status().message();  // shown, not hidden
  if (depth != 1 && edges.ok()) {
    for (const LineageEdge& edge : *edges) {
      json t = {{"dag_id", edge.dag_id},   {"run_id", edge.run_id},
                {"task_id", edge.task_id}, {"try_number", edge.try_number},
                {"name", edge.name},       {"artifacts", json::array()}};
      StatusOr<TryRecord> tr =
          store.FindTry(edge.dag_id, edge.run_id, edge.task_id, edge.try_number);
      if (!tr.ok()) {
        t["state"] = "deleted";
        tries.push_back(std::move(t));
        continue;
      }
      t["state"] = TaskStateName(tr->state);
      t["plugin_version"] = tr->plugin_version;
      t["params"] = tr->params;
      std::vector<std::pair<std::string, std::string>> next;  // name -> artifact
      if (up) {
        for (const auto& item : tr->inputs.items()) {
          if (item.value().is_string()) next.emplace_back(item.key(), item.value());
        }
      } else {
        for (const auto& item : tr->outputs.items()) {
          if (item.value().contains("artifact"))
            next.emplace_back(item.key(), item.value()["artifact"].get<std::string>());
        }
      }
      for (const auto& [name, next_id] : next) {
        json child = LineageNode(store, next_id, up, depth == 0 ? 0 : depth - 1, seen);
        child["as"] = name;
        t["artifacts"].push_back(std::move(child));
      }
      tries.push_back(std::move(t));
    }
  }
  node["tries"] = std::move(tries);
  return node;
}

}  // namespace

json LineageTree(const StateStore& store, const std::string& artifact, bool up, int depth) {
  std::set<std::string> seen;
  // `depth` counts levels of tries; LineageNode counts levels of artifacts, one more.
  return LineageNode(store, artifact, up, depth > 0 ? depth + 1 : 0, &seen);
}

std::string StepCacheKey(const std::string& step, const std::string& plugin_version,
                         const json& params, const json& input_ids, const json& code) {
  const json key = {{"v", 1},
                    {"step", step},
                    {"plugin_version", plugin_version},
                    {"params", params},
                    {"inputs", input_ids}};
  if (code.is_null()) return Sha256Hex(key.dump(-1, ' ', false, json::error_handler_t::replace));
  json with_code = key;
  with_code["code"] = code;
  return Sha256Hex(with_code.dump(-1, ' ', false, json::error_handler_t::replace));
}

namespace {

// A code file's SHA-256, remembered while its inode, size and mtime stay the same: an
// interpreter is megabytes, and every cached python try would hash it again.
StatusOr<std::string> CodeFileHash(const std::filesystem::path& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Sha256File(path.string());
  const std::string stamp = std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
                            std::to_string(st.st_mtim.tv_sec) + "." +
                            std::to_string(st.st_mtim.tv_nsec);
  static std::mutex mutex;
  static std::map<std::string, std::pair<std::string, std::string>> known;  // path -> stamp, hash
  {
    std::lock_guard<std::mutex> lock(mutex);
    auto it = known.find(path.string());
    if (it != known.end() && it->second.first == stamp) return it->second.second;
  }
  StatusOr<std::string> hash = Sha256File(path.string());
  if (hash.ok()) {
    std::lock_guard<std::mutex> lock(mutex);
    if (known.size() > 4096) known.clear();
    known[path.string()] = {stamp, *hash};
  }
  return hash;
}

}  // namespace

json CodeHashes(const std::vector<std::string>& code_params, const json& params,
                const std::string& dag_dir,
                const std::map<std::string, std::string>& code_defaults) {
  json hashes;
  auto add = [&](const json& value) {
    if (!value.is_string() || value.get<std::string>().empty()) return;
    std::filesystem::path path(value.get<std::string>());
    if (path.is_relative() && !dag_dir.empty()) path = std::filesystem::path(dag_dir) / path;
    StatusOr<std::string> hash = CodeFileHash(path);
    // Keyed by the path as written, not where it resolved: a copied checkout (another DAG
    // folder) still hits the cache when the files are the same.
    hashes[value.get<std::string>()] = hash.ok() ? *hash : "missing";
  };
  for (const std::string& name : code_params) {
    if (!params.contains(name)) {
      // What the step uses instead (the default interpreter): a new Python is a new result.
      if (auto d = code_defaults.find(name); d != code_defaults.end()) add(json(d->second));
      continue;
    }
    const json& value = params[name];
    if (value.is_array()) {
      for (const json& item : value) add(item);
    } else {
      add(value);
    }
  }
  return hashes;
}

// ---------------------------------------------------------------------------------------------
// Garbage collection

StatusOr<GcReport> CollectGarbage(StateStore* store, const ArtifactStore& objects, bool dry_run) {
  std::unordered_set<std::string> roots;
  auto add_outputs = [&](const json& outputs) {
    if (!outputs.is_object()) return;
    for (const auto& item : outputs.items()) {
      if (item.value().is_object() && item.value().contains("artifact"))
        roots.insert(item.value()["artifact"].get<std::string>());
    }
  };
  // Every root must be read: an unread reference would have its artifact collected.
  SLUICE_RETURN_IF_ERROR(store->ScanTries([&](const TryRecord& t) {
    add_outputs(t.outputs);
    for (const auto& item : t.inputs.items()) {
      if (item.value().is_string()) roots.insert(item.value().get<std::string>());
    }
    return true;
  }));
  SLUICE_RETURN_IF_ERROR(store->Scan(Space::kCache, "", [&](const std::string&, const json& entry) {
    add_outputs(entry.value("outputs", json::object()));
    return true;
  }));
  SLUICE_RETURN_IF_ERROR(
      store->Scan(Space::kModels, "v/", [&](const std::string&, const json& version) {
        roots.insert(version.value("artifact", ""));
        return true;
      }));

  GcReport report;
  std::unordered_set<std::string> recorded;
  std::vector<ArtifactRecord> garbage;
  SLUICE_RETURN_IF_ERROR(
      store->Scan(Space::kArtifacts, "", [&](const std::string& id, const json& value) {
        recorded.insert(id);
        if (roots.count(id) > 0) {
          ++report.kept;
          return true;
        }
        StatusOr<ArtifactRecord> record = ArtifactRecord::FromJson(value);
        if (record.ok()) garbage.push_back(*std::move(record));
        return true;
      }));
  std::vector<std::string> orphans;
  objects.ListObjects([&](const std::string& id, uint64_t bytes) {
    if (recorded.count(id) == 0 && roots.count(id) == 0) {
      orphans.push_back(id);
      report.bytes += bytes;
    }
  });
  report.orphan_objects = orphans.size();
  for (const ArtifactRecord& a : garbage) {
    report.removed.push_back(a.id);
    if (a.kind != "value") report.bytes += a.size;
  }
  if (dry_run) return report;

  StateStore::Batch batch;
  for (const ArtifactRecord& a : garbage) {
    batch.Put(Space::kArtifacts, a.id, nullptr);
    for (const char* prefix : {"p/", "c/"}) {
      SLUICE_RETURN_IF_ERROR(
          store->ScanKeys(Space::kLineage, prefix + a.id + "/", [&](const std::string& key) {
            batch.Put(Space::kLineage, key, nullptr);
            return true;
          }));
    }
  }
  // Records go first: an object without a record is collected next time; a record without
  // its object would be a broken promise.
  SLUICE_RETURN_IF_ERROR(store->Commit(&batch));
  for (const ArtifactRecord& a : garbage) {
    if (a.kind != "value") SLUICE_RETURN_IF_ERROR(objects.Remove(a.id));
  }
  for (const std::string& id : orphans) SLUICE_RETURN_IF_ERROR(objects.Remove(id));
  return report;
}

}  // namespace sluice
