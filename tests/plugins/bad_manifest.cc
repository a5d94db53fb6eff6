#include "raw_table.h"
RAW_TEST_PLUGIN(1, 0, "broken", "{this is not json")
