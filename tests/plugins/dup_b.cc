#include "raw_table.h"
RAW_TEST_PLUGIN(1, 0, "dup", R"({"name":"dup","steps":[{"name":"dup.b"}]})")
