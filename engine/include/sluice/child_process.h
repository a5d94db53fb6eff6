// Starting the engine's helper processes (task workers, serving workers).
//
// A child gets a connected Unix socket as fd 3 (with "--fd 3" appended to its command),
// stdin from /dev/null, stdout and stderr into one pipe, default signal handling, and its
// own process group, so that killing the group takes whatever it started with it.
#ifndef SLUICE_CHILD_PROCESS_H_
#define SLUICE_CHILD_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "sluice/status.h"

namespace sluice {

struct ChildProcess {
  pid_t pid = -1;
  int socket_fd = -1;  // the parent's end of the socket (close-on-exec); the caller owns it
  int output_fd = -1;  // the read end of the child's stdout/stderr, non-blocking; owned too
};

// Starts `command` (argv; command[0] is a path). Fails with a message naming the command.
StatusOr<ChildProcess> SpawnChild(std::vector<std::string> command);

// The path of the running executable (/proc/self/exe), for "start another one of me".
std::string SelfExecutable();

}  // namespace sluice

#endif  // SLUICE_CHILD_PROCESS_H_
