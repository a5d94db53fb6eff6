#include "raw_table.h"
RAW_TEST_PLUGIN(2, 0, "future", R"({"name":"future","steps":[{"name":"future.step"}]})")
