#include "sluice/tokens.h"

#include <algorithm>
#include <chrono>

#include "sluice/executor.h"
#include "sluice/sha256.h"

namespace sluice {

using nlohmann::json;

namespace {

constexpr std::string_view kPrefix = "token/";

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      return false;
  }
  return true;
}

}  // namespace

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kViewer:
      return "viewer";
    case Role::kOperator:
      return "operator";
    case Role::kAdmin:
      return "admin";
  }
  return "viewer";
}

std::optional<Role> ParseRole(std::string_view name) {
  for (Role r : {Role::kViewer, Role::kOperator, Role::kAdmin}) {
    if (RoleName(r) == name) return r;
  }
  return std::nullopt;
}

Tokens::Tokens(StateStore* store) : store_(store) {
  StatusOr<std::vector<std::pair<std::string, json>>> stored =
      store_->ListControl(std::string(kPrefix));
  if (!stored.ok()) {
    load_status_ = stored.status();
    return;
  }
  for (auto& [key, value] : *stored) {
    TokenInfo info;
    info.hash = key.substr(kPrefix.size());
    info.name = value.value("name", "");
    info.role = ParseRole(value.value("role", "")).value_or(Role::kViewer);
    info.created_at = value.value("created_at", "");
    info.created_by = value.value("created_by", "");
    by_hash_[info.hash] = std::move(info);
  }
}

Status Tokens::Record(const std::string& key, json value, const std::string& kind,
                      const std::string& reason, const std::string& actor) {
  StateStore::Batch batch;
  batch.PutControl(key, std::move(value));
  Event e;
  e.time = FormatTimestamp(std::chrono::system_clock::now());
  e.kind = kind;
  e.reason = reason;
  e.actor = actor;
  batch.AddEvent(std::move(e));
  return store_->Commit(&batch);
}

StatusOr<std::string> Tokens::Create(const std::string& name, Role role, const std::string& actor) {
  if (!ValidName(name)) {
    return Status::InvalidArgument("token name \"" + name +
                                   "\" must be 1-64 letters, digits, '.', '_' or '-'");
  }
  for (const auto& [hash, info] : by_hash_) {
    if (info.name == name) {
      return Status::AlreadyExists("a token named \"" + name +
                                   "\" exists; revoke it first or choose another name");
    }
  }
  StatusOr<std::string> random = RandomHex(24);
  if (!random.ok()) return random.status();
  const std::string secret = "slc_" + *random;
  TokenInfo info;
  info.name = name;
  info.role = role;
  info.created_at = FormatTimestamp(std::chrono::system_clock::now());
  info.created_by = actor;
  info.hash = Sha256Hex(secret);
  json value = {{"name", info.name},
                {"role", RoleName(role)},
                {"created_at", info.created_at},
                {"created_by", actor}};
  SLUICE_RETURN_IF_ERROR(Record(std::string(kPrefix) + info.hash, std::move(value), "token_created",
                                "token \"" + name + "\" (" + std::string(RoleName(role)) + ")",
                                actor));
  by_hash_[info.hash] = std::move(info);
  return secret;
}

Status Tokens::Revoke(const std::string& name, const std::string& actor) {
  for (auto it = by_hash_.begin(); it != by_hash_.end(); ++it) {
    if (it->second.name != name) continue;
    SLUICE_RETURN_IF_ERROR(Record(std::string(kPrefix) + it->first, nullptr, "token_revoked",
                                  "token \"" + name + "\"", actor));
    by_hash_.erase(it);
    return Status::Ok();
  }
  return Status::NotFound("no token named \"" + name + "\" (`sluice tokens list` shows them)");
}

std::vector<TokenInfo> Tokens::List() const {
  std::vector<TokenInfo> out;
  for (const auto& [hash, info] : by_hash_) out.push_back(info);
  std::sort(out.begin(), out.end(),
            [](const TokenInfo& a, const TokenInfo& b) { return a.name < b.name; });
  return out;
}

const TokenInfo* Tokens::Authenticate(std::string_view secret) const {
  if (secret.rfind("slc_", 0) != 0) return nullptr;
  auto it = by_hash_.find(Sha256Hex(secret));
  return it == by_hash_.end() ? nullptr : &it->second;
}

}  // namespace sluice
