#include "server_config.h"

#include <toml++/toml.h>

#include <set>

namespace sluice::cli {

namespace {

std::string Where(const std::string& path, const toml::source_region& r) {
  return path + ":" + std::to_string(r.begin.line) + ":" + std::to_string(r.begin.column);
}

}  // namespace

StatusOr<ServerConfig> LoadServerConfig(const std::string& path) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const std::string what(e.description());
    if (what.find("File could not be opened") != std::string::npos) {
      return Status::NotFound("config file " + path + " cannot be read");
    }
    return Status::InvalidArgument(Where(path, e.source()) + ": " + what);
  }
  ServerConfig config;
  const std::map<std::string, std::set<std::string>> known = {
      {"server",
       {"dags", "state_dir", "listen", "workers", "serving_workers", "plugin_dirs",
        "shutdown_grace", "predict_timeout"}},
      {"auth", {"allow_unauthenticated"}},
      {"pools", {}}};
  auto wrong = [&](const toml::node& node, const std::string& key, const std::string& want) {
    return Status::InvalidArgument(Where(path, node.source()) + ": " + key + " must be " + want);
  };
  for (const auto& [section_key, section] : root) {
    const std::string name(section_key.str());
    auto it = known.find(name);
    if (it == known.end() || !section.is_table()) {
      return Status::InvalidArgument(Where(path, section.source()) + ": unknown section [" + name +
                                     "] (sections: [server], [auth], [pools])");
    }
    for (const auto& [key_node, value] : *section.as_table()) {
      const std::string key(key_node.str());
      const std::string full = name + "." + key;
      if (name == "pools") {
        auto slots = value.value<int64_t>();
        if (!slots || *slots < 1) return wrong(value, full, "a number of slots, at least 1");
        config.pools[key] = static_cast<int>(*slots);
        continue;
      }
      if (!it->second.count(key)) {
        std::string keys;
        for (const std::string& k : it->second) keys += (keys.empty() ? "" : ", ") + k;
        return Status::InvalidArgument(Where(path, value.source()) + ": unknown key " + full +
                                       " (in [" + name + "]: " + keys + ")");
      }
      if (key == "workers" || key == "serving_workers") {
        auto n = value.value<int64_t>();
        if (!n || *n < 1 || *n > 1024) return wrong(value, full, "a number from 1 to 1024");
        (key == "workers" ? config.workers : config.serving_workers) = static_cast<size_t>(*n);
      } else if (key == "allow_unauthenticated") {
        auto b = value.value<bool>();
        if (!b) return wrong(value, full, "true or false");
        config.allow_unauthenticated = *b;
      } else if (key == "plugin_dirs") {
        if (!value.is_array()) return wrong(value, full, "an array of folder paths");
        for (const auto& item : *value.as_array()) {
          auto dir = item.value<std::string>();
          if (!dir) return wrong(item, full, "an array of folder paths");
          config.plugin_dirs.push_back(*dir);
        }
      } else {
        auto text = value.value<std::string>();
        if (!text) return wrong(value, full, "a string");
        if (key == "shutdown_grace") {
          StatusOr<Duration> d = ParseDuration(*text);
          if (!d.ok())
            return wrong(value, full, "a duration like \"30s\" (" + d.status().message() + ")");
          config.shutdown_grace = *d;
        } else if (key == "predict_timeout") {
          StatusOr<Duration> d = ParseDuration(*text);
          if (!d.ok() || *d <= Duration::zero()) {
            return wrong(value, full,
                         "a positive duration like \"10s\"" +
                             (d.ok() ? std::string() : " (" + d.status().message() + ")"));
          }
          config.predict_timeout = *d;
        } else if (key == "dags") {
          config.dags = *text;
        } else if (key == "state_dir") {
          config.state_dir = *text;
        } else {
          config.listen = *text;
        }
      }
    }
  }
  return config;
}

}  // namespace sluice::cli
