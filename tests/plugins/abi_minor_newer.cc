#include "raw_table.h"
RAW_TEST_PLUGIN(1, 99, "newer", R"({"name":"newer","steps":[{"name":"newer.step"}]})")
