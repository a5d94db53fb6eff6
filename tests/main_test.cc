// The suite's main: doctest's, in an environment the tests decide. $COLUMNS would make the
// CLI cut its tables to that width (cli/terminal.h), so a test that wants it sets it itself.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>

int main(int argc, char** argv) {
  unsetenv("COLUMNS");
  return doctest::Context(argc, argv).run();
}
