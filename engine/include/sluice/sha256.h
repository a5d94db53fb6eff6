// SHA-256 digests, as lowercase hex. Used for API token hashes (and content addressing).
// OpenSSL's libcrypto does the work: it uses the CPU's SHA extensions where present.
//
// Thread safety: pure functions.
#ifndef SLUICE_SHA256_H_
#define SLUICE_SHA256_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "sluice/status.h"

namespace sluice {

// The digest of `data`, 64 hex characters.
std::string Sha256Hex(std::string_view data);

// A digest computed piece by piece (files too large to hold in memory).
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(const void* data, size_t size);
  void Update(std::string_view data) { Update(data.data(), data.size()); }
  // The digest as hex. Ends the computation.
  std::string HexDigest();

 private:
  void* ctx_;  // EVP_MD_CTX
};

// The digest of a file's bytes, read in chunks (the same as `sha256sum FILE`).
StatusOr<std::string> Sha256File(const std::string& path, uint64_t* size = nullptr);

// `bytes` random bytes from the kernel's CSPRNG, as hex (2 * bytes characters).
StatusOr<std::string> RandomHex(size_t bytes);

}  // namespace sluice

#endif  // SLUICE_SHA256_H_
