/*
 * Sluice plugin ABI, version 1.
 *
 * This C header is the whole contract between the Sluice engine (the "host") and a plugin
 * shared library. Nothing else crosses the boundary: no C++ type, no exception, no
 * allocator. Data is plain C: integers, doubles and NUL-terminated UTF-8 strings, with
 * structured data as JSON text. A plugin built with another compiler, standard library or
 * optimisation level therefore loads as long as it speaks this ABI.
 *
 * Most authors never touch this header directly: <sluice/step.h> is a header-only C++
 * layer on top of it (a Step base class, a Context, and one export macro).
 *
 * RULES
 * - A plugin library MUST export one symbol named SLUICE_PLUGIN_ENTRY_NAME, a
 *   `const void*` pointing to a function of type sluice_plugin_entry_fn (this is what
 *   BOOST_DLL_ALIAS produces; SLUICE_PLUGIN in <sluice/step.h> does it for you).
 * - The host calls the entry function first, passing its own ABI version. The plugin MUST
 *   return a pointer to a sluice_plugin table that stays valid while the library is loaded.
 *   A plugin that cannot work with the host's major version SHOULD return a table that
 *   holds only the version: struct_size = offsetof(sluice_plugin, abi_minor) +
 *   sizeof(uint32_t), its own abi_major and abi_minor, everything else NULL; the host then
 *   says which ABI the plugin wants ("built for plugin ABI 2.0, but this Sluice speaks
 *   ABI 1.2") and reads nothing more. SLUICE_PLUGIN does this. NULL also refuses, without
 *   saying why.
 * - The host checks the table before anything else: it refuses a plugin whose abi_major
 *   differs from its own, or whose abi_minor is newer than its own, and it never reads past
 *   struct_size bytes. New members are only ever appended (and abi_minor bumped), so an
 *   older plugin keeps working with a newer host of the same major version.
 * - Memory is freed by the side that allocated it: strings the host passes in are owned by
 *   the host and valid only during the call; a message the plugin returns through
 *   `message_out` is allocated by the plugin and released by the host calling the plugin's
 *   `free_message`.
 * - `run` MUST NOT let a C++ exception or a longjmp escape. It may be called many times, one
 *   call at a time, from the same worker process; it MUST NOT assume it runs first or alone in
 *   the process's lifetime, and it SHOULD release what it acquires before returning.
 * - The host runs plugins only in worker processes, never in the scheduler: a plugin that
 *   crashes or hangs costs one try, not the engine.
 *
 * Example (plain C, no SDK):
 *
 *   #include <sluice/plugin_abi.h>
 *   #include <string.h>
 *   static int run(const char* step, const char* request, const sluice_host* host,
 *                  char** message_out) {
 *     (void)step; (void)request; (void)message_out;
 *     const char* line = "hello from C";
 *     host->log(host->context, SLUICE_LOG_INFO, line, strlen(line));
 *     return SLUICE_RESULT_SUCCESS;
 *   }
 *   static void free_message(char* m) { (void)m; }
 *   static const sluice_plugin kPlugin = {
 *       sizeof(sluice_plugin), SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR, "hello", "1.0.0",
 *       "{\"name\":\"hello\",\"version\":\"1.0.0\",\"steps\":[{\"name\":\"hello.say\"}]}",
 *       run, free_message};
 *   static const sluice_plugin* entry(uint32_t major, uint32_t minor) {
 *     (void)minor;
 *     return major == SLUICE_ABI_MAJOR ? &kPlugin : NULL;
 *   }
 *   __attribute__((visibility("default"), section("boostdll")))
 *   const void* sluice_plugin_entry_v1 = (const void*)&entry;
 */
#ifndef SLUICE_PLUGIN_ABI_H_
#define SLUICE_PLUGIN_ABI_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLUICE_ABI_MAJOR 1
#define SLUICE_ABI_MINOR 2

/* The exported symbol the host looks up. */
#define SLUICE_PLUGIN_ENTRY_NAME "sluice_plugin_entry_v1"

/* Log levels for sluice_host.log. */
enum { SLUICE_LOG_DEBUG = 0, SLUICE_LOG_INFO = 1, SLUICE_LOG_WARNING = 2, SLUICE_LOG_ERROR = 3 };

/* What sluice_plugin.run returns. */
enum {
  SLUICE_RESULT_SUCCESS = 0,
  /* The step failed; *message_out says why. The try fails and is retried per the task's policy. */
  SLUICE_RESULT_FAILED = 1,
  /* The step decided not to do its work (a gate that did not pass); *message_out says why.
   * The task ends as skipped, which is not a failure. */
  SLUICE_RESULT_SKIPPED = 2
};

/* What sluice_plugin.predict returns (ABI 1.2). */
enum {
  SLUICE_PREDICT_OK = 0,
  /* The request is wrong (a missing column, a wrong type, too many rows); *response_out
   * says what, and the caller gets it back as a 400. */
  SLUICE_PREDICT_BAD_REQUEST = 1,
  /* The predictor failed on a valid request; *response_out says why (a 500). */
  SLUICE_PREDICT_FAILED = 2
};

/* Kinds of output for sluice_host.output. */
enum {
  SLUICE_OUTPUT_FILE = 0, /* data: path of a file the step wrote */
  SLUICE_OUTPUT_DIR = 1,  /* data: path of a directory the step wrote */
  SLUICE_OUTPUT_VALUE = 2 /* data: a small JSON value */
};

/*
 * Services the host offers a running step. Passed to each `run` call; valid only during it.
 * Every function takes `context` as its first argument.
 */
typedef struct sluice_host {
  uint32_t struct_size; /* sizeof(sluice_host) as the host was built */
  uint32_t abi_major;
  uint32_t abi_minor;
  void* context;

  /* Appends one log line (no trailing newline needed) to the try's log. */
  void (*log)(void* context, int level, const char* message, size_t length);
  /* Records a metric. step < 0 means "no step"; steps make learning curves. */
  void (*metric)(void* context, const char* name, double value, int64_t step);
  /* Non-zero once the try has been asked to stop (cancelled, or the run is ending). A long
   * step SHOULD check it regularly and return SLUICE_RESULT_FAILED soon after it turns. */
  int (*is_cancelled)(void* context);
  /* Declares an output of the step. Returns 0 when accepted, non-zero when refused (bad
   * name, missing file, invalid JSON); the host logs why. */
  int (*output)(void* context, const char* name, int kind, const char* data);

  /* ---- ABI 1.1 (check struct_size before use: an older host does not have them) ---- */

  /* Asks the engine for a service, synchronously. `request_json` is a JSON object. Returns 0
   * and sets *response_out to the JSON result, or non-zero and sets *response_out to an error
   * message. Either way *response_out is host-allocated: release it with free_response.
   * Methods:
   *   "tags.set"          {"name", "value"}: tags the try (shown by `sluice runs compare`)
   *   "models.register"   {"model", "output", "metrics"?, "tags"?, "description"?, "alias"?,
   *                        "reason"?}: registers the artifact of this try's output `output`
   *                        as the next version of `model` (metrics default to the last value
   *                        of each metric the try has logged); returns the version record.
   *   "models.get"        {"model", "alias"? | "version"?}: the version record (with its
   *                        metrics, and "path": the model's read-only file or folder), or
   *                        null when the model or alias does not exist.
   *   "models.set_alias"  {"model", "alias", "version", "reason"?}: moves an alias.
   *   "expression.evaluate" {"expression", "values"}: evaluates an expression of the `when`
   *                        language over `values`; returns {"value", "references",
   *                        "missing"} (names `values` lacks; then "value" is null). */
  int (*call)(void* context, const char* method, const char* request_json, char** response_out);
  void (*free_response)(void* context, char* response);
} sluice_host;

/*
 * The table a plugin publishes. Static in the plugin; valid while the library is loaded.
 */
typedef struct sluice_plugin {
  uint32_t struct_size; /* sizeof(sluice_plugin) as the plugin was built */
  uint32_t abi_major;   /* SLUICE_ABI_MAJOR the plugin was built with */
  uint32_t abi_minor;   /* SLUICE_ABI_MINOR the plugin was built with */
  const char* name;     /* plugin name, e.g. "core"; its steps are named "core.<step>" */
  const char* version;  /* plugin version, e.g. "1.2.0" */
  /* The manifest, JSON:
   *   {"name": "core", "version": "1.0.0", "description": "...",
   *    "steps": [{"name": "core.shell", "description": "...", "cacheable": true,
   *               "params": [{"name": "command", "type": "string", "required": true,
   *                           "default": null, "doc": "..."}],
   *               "inputs": [{"name": "data", "doc": "...", "required": true}],
   *               "outputs": [{"name": "model", "kind": "file", "doc": "..."}]}]}
   * Param types: "string", "integer", "number", "boolean", "array", "object", "any". */
  const char* manifest_json;

  /* Runs step `step` (one of the manifest's step names) for one try.
   * `request_json`:
   *   {"params": {...}, "inputs": {"name": {"kind": "file", "path": "..."} |
   *                                        {"kind": "value", "value": ...}},
   *    "scratch_dir": "...", "output_dir": "...",
   *    "run": {"dag_id", "run_id", "task_id", "try_number", "logical_date",
   *            "idempotency_key"}}
   * `scratch_dir` (private to the try, removed after it) and `output_dir` (kept with the
   * try) do not exist yet: a step that uses one creates it (the C++ layer does so on first
   * use). Most steps use neither, and creating them for every try would cost every try.
   * Returns a SLUICE_RESULT_* code. May set *message_out to a plugin-allocated string (the
   * failure or skip reason), which the host releases with free_message. */
  int (*run)(const char* step, const char* request_json, const sluice_host* host,
             char** message_out);
  /* Releases a string the plugin returned through message_out. */
  void (*free_message)(char* message);

  /* ---- ABI 1.2: model serving (check struct_size; NULL when the plugin has no predictors) ----
   * A predictor loads a model folder that one of the plugin's steps wrote and answers
   * prediction requests for it. The host calls these only in serving worker processes. The
   * manifest lists predictors as "predictors": [{"name": "train.xgboost", "description"}]. */

  /* Loads `model_dir` with predictor `predictor` and warms it up, so that the first request
   * is as fast as the next. Returns 0 and sets *model_out to an opaque handle, or non-zero
   * and sets *message_out (plugin-allocated, released with free_message). */
  int (*load_model)(const char* predictor, const char* model_dir, void** model_out,
                    char** message_out);
  /* Answers one request (JSON, e.g. {"rows": [{"col": 1.5, ...}]}). Returns a
   * SLUICE_PREDICT_* code and sets *response_out to the JSON answer or the error message,
   * plugin-allocated, released with free_message. The host calls it for one handle from one
   * thread at a time. MUST NOT let an exception escape. */
  int (*predict)(void* model, const char* request_json, char** response_out);
  /* Releases a handle from load_model. */
  void (*free_model)(void* model);
} sluice_plugin;

/* The entry function. Receives the host's ABI version; returns the plugin's table or NULL. */
typedef const sluice_plugin* (*sluice_plugin_entry_fn)(uint32_t host_abi_major,
                                                       uint32_t host_abi_minor);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SLUICE_PLUGIN_ABI_H_ */
