// API tokens: bearer secrets with a role, stored hashed (SHA-256) in the state store's
// control column family under "token/<hash>". The secret is shown once, at creation.
//
// Roles are ordered: a viewer reads; an operator also triggers, clears, cancels, pauses and
// backfills; an admin also manages tokens.
//
// Thread safety: not thread-safe; the daemon uses it on its io thread, the CLI on its own.
#ifndef SLUICE_TOKENS_H_
#define SLUICE_TOKENS_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/state_store.h"

namespace sluice {

enum class Role { kViewer = 0, kOperator = 1, kAdmin = 2 };
std::string_view RoleName(Role role);
std::optional<Role> ParseRole(std::string_view name);

struct TokenInfo {
  std::string name;
  Role role = Role::kViewer;
  std::string created_at;
  std::string created_by;
  std::string hash;  // SHA-256 of the secret, hex
};

class Tokens {
 public:
  // Loads the tokens of `store` (which must outlive this object). When they cannot be read,
  // load_status() says why and no token authenticates.
  explicit Tokens(StateStore* store);
  const Status& load_status() const { return load_status_; }

  // Creates a token and returns its secret ("slc_" + 48 hex digits). Names are 1-64 of
  // [A-Za-z0-9._-] and unique.
  StatusOr<std::string> Create(const std::string& name, Role role, const std::string& actor);
  Status Revoke(const std::string& name, const std::string& actor);
  std::vector<TokenInfo> List() const;  // by name
  // The token a secret belongs to, or null.
  const TokenInfo* Authenticate(std::string_view secret) const;

 private:
  Status Record(const std::string& key, nlohmann::json value, const std::string& kind,
                const std::string& reason, const std::string& actor);

  StateStore* store_;
  std::map<std::string, TokenInfo> by_hash_;
  Status load_status_;
};

}  // namespace sluice

#endif  // SLUICE_TOKENS_H_
