// Helpers for the hand-made (non-SDK) test plugins: a table with chosen values.
#ifndef SLUICE_TESTS_PLUGINS_RAW_TABLE_H_
#define SLUICE_TESTS_PLUGINS_RAW_TABLE_H_

#include <boost/dll/alias.hpp>
#include <cstdint>

#include "sluice/plugin_abi.h"

namespace raw {
inline int Run(const char*, const char*, const sluice_host*, char**) {
  return SLUICE_RESULT_SUCCESS;
}
inline void Free(char*) {}
}  // namespace raw

// Defines a plugin whose table says ABI major.minor, with the given name and manifest.
#define RAW_TEST_PLUGIN(major, minor, name, manifest)                                       \
  namespace {                                                                               \
  const sluice_plugin kTable = {                                                            \
      sizeof(sluice_plugin), major, minor, name, "0.0.1", manifest, &raw::Run, &raw::Free}; \
  const sluice_plugin* Entry(uint32_t, uint32_t) { return &kTable; }                        \
  }                                                                                         \
  BOOST_DLL_ALIAS(Entry, sluice_plugin_entry_v1)

#endif  // SLUICE_TESTS_PLUGINS_RAW_TABLE_H_
