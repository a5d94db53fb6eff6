/* A plugin in plain C: only <sluice/plugin_abi.h>, no C++ layer, no Boost. */
#include <sluice/plugin_abi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int run(const char* step, const char* request, const sluice_host* host, char** message_out) {
  (void)request;
  if (strcmp(step, "hello_c.greet") != 0) {
    *message_out = strdup("unknown step");
    return SLUICE_RESULT_FAILED;
  }
  const char* line = "hello from a C plugin";
  host->log(host->context, SLUICE_LOG_INFO, line, strlen(line));
  host->metric(host->context, "answer", 42.0, -1);
  if (host->output(host->context, "greeting", SLUICE_OUTPUT_VALUE, "\"hello\"") != 0) {
    *message_out = strdup("output refused");
    return SLUICE_RESULT_FAILED;
  }
  return SLUICE_RESULT_SUCCESS;
}

static void free_message(char* message) { free(message); }

static const sluice_plugin kPlugin = {
    sizeof(sluice_plugin), SLUICE_ABI_MAJOR, SLUICE_ABI_MINOR, "hello_c", "1.0.0",
    "{\"name\":\"hello_c\",\"version\":\"1.0.0\",\"description\":\"A C plugin\","
    "\"steps\":[{\"name\":\"hello_c.greet\",\"description\":\"Greets\",\"params\":[],"
    "\"outputs\":[{\"name\":\"greeting\",\"kind\":\"value\",\"doc\":\"\"}]}]}",
    run, free_message};

static const sluice_plugin* entry(uint32_t major, uint32_t minor) {
  (void)minor;
  return major == SLUICE_ABI_MAJOR ? &kPlugin : NULL;
}

/* What BOOST_DLL_ALIAS expands to, written out in C. */
__attribute__((visibility("default"), section("boostdll"))) const void* sluice_plugin_entry_v1 =
    (const void*)&entry;
