#include "common/cache/step_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/base/log.h"
#include "common/fs/atomic_file.h"
#include "common/oci/digest.h"

namespace manifold::cache {
namespace {

Error IoError(const std::string& what, int err) {
  return MakeError(ErrorKind::kInternal, "cache.io", what + ": " + std::strerror(err));
}

Expected<std::string> KeyHex(const std::string& key) {
  auto d = oci::ParseDigest(key);
  if (!d.ok() || d->algorithm != "sha256")
    return MakeError(ErrorKind::kInvalidInput, "cache.key",
                     "invalid cache key \"" + key.substr(0, 80) + "\"");
  return d->hex;
}

Expected<void> MkdirP(const std::string& path) {
  std::string cur;
  std::stringstream ss(path);
  std::string part;
  if (!path.empty() && path[0] == '/') cur = "";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += "/" + part;
    if (::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST) return IoError("mkdir " + cur, errno);
  }
  return Ok();
}

}  // namespace

Expected<StepCache> StepCache::Open(const std::string& state_dir) {
  std::string dir = state_dir + "/cache/steps";
  MF_TRY_VOID(MkdirP(dir));
  return StepCache(dir);
}

Expected<std::optional<StepRecord>> StepCache::Get(const std::string& key) const {
  MF_TRY(hex, KeyHex(key));
  std::ifstream in(dir_ + "/" + hex + ".json", std::ios::binary);
  if (!in) return std::optional<StepRecord>();
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    auto j = nlohmann::json::parse(ss.str());
    StepRecord r;
    r.config_digest = j.at("config").get<std::string>();
    if (!oci::ParseDigest(r.config_digest).ok()) throw std::runtime_error("bad config digest");
    for (const auto& l : j.at("layers")) {
      CachedLayer c;
      c.media_type = l.at("mediaType").get<std::string>();
      c.digest = l.at("digest").get<std::string>();
      c.diff_id = l.at("diffID").get<std::string>();
      c.size = l.at("size").get<std::uint64_t>();
      if (!oci::ParseDigest(c.digest).ok() || !oci::ParseDigest(c.diff_id).ok())
        throw std::runtime_error("bad layer digest");
      r.layers.push_back(std::move(c));
    }
    return std::optional<StepRecord>(std::move(r));
  } catch (const std::exception& e) {
    MF_LOG_WARN("cache record {} unreadable ({}); treated as a miss", key, e.what());
    return std::optional<StepRecord>();
  }
}

Expected<void> StepCache::Put(const std::string& key, const StepRecord& record) const {
  MF_TRY(hex, KeyHex(key));
  nlohmann::json j;
  j["config"] = record.config_digest;
  j["layers"] = nlohmann::json::array();
  for (const auto& l : record.layers)
    j["layers"].push_back(
        {{"mediaType", l.media_type}, {"digest", l.digest}, {"diffID", l.diff_id}, {"size", l.size}});
  std::string data = j.dump();
  std::string path = dir_ + "/" + hex + ".json";
  // The cache's own error code, whatever the cause (disk full included).
  auto written = fs::WriteFileAtomic(path, data, 0600);
  if (!written.ok()) return MakeError(ErrorKind::kInternal, "cache.io", written.error().message);
  return Ok();
}

}  // namespace manifold::cache
