// Artifacts: what steps output, content-addressed, immutable and traceable.
//
// Files and directories live in the object store under <state_dir>/artifacts/objects, named by
// their SHA-256 (a file's id is exactly what `sha256sum` prints; a directory's is the digest of
// a canonical listing of its entries). A file keeps the name it was written with, inside a
// folder named by its id (objects/ab/<id>/model.ubj): tools care about extensions. Small JSON
// values live in their record. Identical content is stored once. Objects are made read-only (mode
// 0444 / 0555) when they are stored and never change afterwards.
//
// The records (state_store.h, Space::kArtifacts) say what each artifact is; the lineage
// space says which try produced it and which tries read it:
//   p/<id>/<dag>/<run>/<task>/<TTTTT> -> {"output": name}   produced by that try
//   c/<id>/<dag>/<run>/<task>/<TTTTT> -> {"input": name}    read by that try
// so that walking lineage up or down is a prefix scan per artifact.
//
// Thread safety: ArtifactStore is safe to use from several processes at once (objects appear
// by rename); the record functions follow StateStore's rules.
#ifndef SLUICE_ARTIFACTS_H_
#define SLUICE_ARTIFACTS_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sluice/state_store.h"
#include "sluice/status.h"

namespace sluice {

// An object as it was put in the store.
struct StoredObject {
  std::string id;              // SHA-256 hex
  std::string kind;            // "file" | "dir"
  uint64_t size = 0;           // bytes (a directory: of all its files)
  uint64_t files = 0;          // 1 for a file; a directory: its files
  std::filesystem::path path;  // the read-only object
};

// The filesystem side: <state_dir>/artifacts.
class ArtifactStore {
 public:
  explicit ArtifactStore(std::filesystem::path root) : root_(std::move(root)) {}
  static std::filesystem::path RootFor(const std::string& state_dir) {
    return std::filesystem::path(state_dir) / "artifacts";
  }

  // Hashes `path` (a file, or a directory when `is_dir`) and puts it in the store, unless an
  // object with that id is there already. With `move`, the content is renamed into the
  // store (it must not be used afterwards); otherwise it is copied.
  StatusOr<StoredObject> Put(const std::filesystem::path& path, bool is_dir, bool move) const;

  // The object: a folder named by the id. A directory artifact is that folder; a file
  // artifact is the one file in it, under the name it was stored with.
  std::filesystem::path ObjectPath(const std::string& id) const;
  // What a step reads: the file inside ObjectPath for kind "file", ObjectPath otherwise.
  std::filesystem::path PathOf(const std::string& id, const std::string& kind) const;
  bool Exists(const std::string& id) const;
  // Removes an object (making it writable first). Missing objects are not an error.
  Status Remove(const std::string& id) const;
  // Every object id in the store, and its size on disk.
  void ListObjects(const std::function<void(const std::string& id, uint64_t bytes)>& fn) const;

  const std::filesystem::path& root() const { return root_; }

 private:
  std::filesystem::path root_;
};

// Removes a file or a tree, making read-only folders in it writable first (stored objects
// and half-stored ones are read-only).
Status RemoveTree(const std::filesystem::path& path);

// The id of a directory's content (what ArtifactStore::Put names it).
StatusOr<std::string> HashTree(const std::filesystem::path& dir, uint64_t* size, uint64_t* files);
// The id of a JSON value: the digest of its canonical text (keys sorted, no spaces).
std::string ValueArtifactId(const nlohmann::json& value);

// What the artifacts space holds for each artifact.
struct ArtifactRecord {
  std::string id;
  std::string kind;  // file | dir | value
  uint64_t size = 0;
  uint64_t files = 0;
  nlohmann::json value;  // kind value only
  std::string created_at;
  // Who made it first (later tries that make the same content are in the lineage space).
  std::string dag_id, run_id, task_id, output;
  int try_number = 0;

  nlohmann::json ToJson() const;
  static StatusOr<ArtifactRecord> FromJson(const nlohmann::json& j);
};

// One edge between an artifact and a try.
struct LineageEdge {
  std::string artifact;
  std::string dag_id, run_id, task_id;
  int try_number = 0;
  std::string name;  // the output (producer) or input (consumer) name
};

// Adds the record (if the store has none yet) and the "produced by" edge to `batch`.
void RecordProduced(const StateStore& store, StateStore::Batch* batch,
                    const ArtifactRecord& artifact);
// Adds a "read by" edge.
void RecordConsumed(StateStore::Batch* batch, const std::string& artifact,
                    const TryRecord& consumer, const std::string& input);

// Finds an artifact by id or by an unambiguous prefix of at least 6 hex digits.
StatusOr<ArtifactRecord> FindArtifact(const StateStore& store, const std::string& id_or_prefix);
StatusOr<std::vector<LineageEdge>> Producers(const StateStore& store, const std::string& artifact);
StatusOr<std::vector<LineageEdge>> Consumers(const StateStore& store, const std::string& artifact);

// Lineage as a tree, `depth` levels deep (0: unlimited; cycles cannot occur, since a try never
// reads its own outputs). Up: artifact -> the tries that made it -> the artifacts they read ->
// ... Down: artifact -> the tries that read it -> the artifacts they made -> ...
//   {"artifact": {...record}, "tries": [{"dag_id", "run_id", "task_id", "try_number",
//                                        "name", "state", "plugin_version", "params",
//                                        "artifacts": [subtree, ...]}]}
nlohmann::json LineageTree(const StateStore& store, const std::string& artifact, bool up,
                           int depth);

// The step-cache key of a try: the step, its plugin and version, the rendered params, the
// ids of the artifacts it reads and, when not null, `code`: {path: content hash} of the files
// its code params name (a script and the files it imports). Equal keys mean the same
// computation.
std::string StepCacheKey(const std::string& step, const std::string& plugin_version,
                         const nlohmann::json& params, const nlohmann::json& input_ids,
                         const nlohmann::json& code = nullptr);

// {path: content hash} of every file that the params named in `code_params` hold (a string
// or an array of strings, relative to `dag_dir`), keyed by the path as written; a file that
// cannot be read hashes as "missing", so that it changes the key rather than failing the
// run here (the step reports it). A code param the task leaves out hashes the file
// `code_defaults` names for it, if any (the step's own default). Null when none is set.
nlohmann::json CodeHashes(const std::vector<std::string>& code_params, const nlohmann::json& params,
                          const std::string& dag_dir,
                          const std::map<std::string, std::string>& code_defaults = {});

// Garbage collection: objects and records that no try of a kept run, no cache entry and no
// model version refers to. With `dry_run`, nothing is removed.
// REQUIRES: nothing else writes to the store meanwhile (a daemon runs it on its own thread;
// `sluice gc` holds the state dir's lock).
struct GcReport {
  std::vector<std::string> removed;  // artifact ids
  uint64_t bytes = 0;                // freed (or that would be)
  size_t kept = 0;
  size_t orphan_objects = 0;  // objects with no record (a try that crashed mid-output)
};
StatusOr<GcReport> CollectGarbage(StateStore* store, const ArtifactStore& objects, bool dry_run);

}  // namespace sluice

#endif  // SLUICE_ARTIFACTS_H_
