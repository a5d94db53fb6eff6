// SHA-256 digests, as lowercase hex. Used for API token hashes (and content addressing).
// OpenSSL's libcrypto does the work: it uses the CPU's SHA extensions where present.
//
// Thread safety: pure functions.
#ifndef SLUICE_SHA256_H_
#define SLUICE_SHA256_H_

#include <string>
#include <string_view>

#include "sluice/status.h"

namespace sluice {

// The digest of `data`, 64 hex characters.
std::string Sha256Hex(std::string_view data);

// `bytes` random bytes from the kernel's CSPRNG, as hex (2 * bytes characters).
StatusOr<std::string> RandomHex(size_t bytes);

}  // namespace sluice

#endif  // SLUICE_SHA256_H_
