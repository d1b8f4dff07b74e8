#include "common/image/name_store.h"
#include "common/base/temp_name.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace manifold::image {

namespace {

constexpr const char* kFile = "images.json";
constexpr const char* kLock = "images.lock";

Error IoError(const std::string& what, int err) {
  return MakeError(err == ENOSPC || err == EDQUOT ? ErrorKind::kResourceExhausted : ErrorKind::kInternal,
                   "image.names.io", what + ": " + std::strerror(err));
}

// Holds an flock on <dir>/images.lock for its lifetime.
class FileLock {
 public:
  static Expected<FileLock> Take(const std::string& dir, int op) {
    std::string path = dir + "/" + kLock;
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return IoError("opening " + path, errno);
    while (::flock(fd, op) != 0) {
      if (errno != EINTR) {
        int e = errno;
        ::close(fd);
        return IoError("locking " + path, e);
      }
    }
    return FileLock(fd);
  }
  FileLock(FileLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace

Expected<NameStore> NameStore::Open(const std::string& state_dir) {
  if (::access(state_dir.c_str(), W_OK) != 0) return IoError("state directory " + state_dir, errno);
  return NameStore(state_dir);
}

Expected<std::map<std::string, NameRecord>> NameStore::ReadLocked() const {
  std::map<std::string, NameRecord> out;
  std::string path = dir_ + "/" + kFile;
  std::ifstream in(path);
  if (!in) return out;  // no names yet
  std::stringstream ss;
  ss << in.rdbuf();
  auto j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("images") || !j["images"].is_object())
    return MakeError(ErrorKind::kIntegrity, "image.names.corrupt", path + " is not a valid image table");
  for (const auto& [name, rec] : j["images"].items()) {
    if (!rec.is_object() || !rec.contains("digest") || !rec["digest"].is_string())
      return MakeError(ErrorKind::kIntegrity, "image.names.corrupt", path + ": bad entry for " + name);
    out[name] = NameRecord{rec["digest"].get<std::string>(), rec.value("mediaType", "")};
  }
  return out;
}

Expected<std::optional<NameRecord>> NameStore::Get(const std::string& name) const {
  MF_TRY(all, List());
  auto it = all.find(name);
  if (it == all.end()) return std::optional<NameRecord>();
  return std::optional<NameRecord>(it->second);
}

Expected<std::map<std::string, NameRecord>> NameStore::List() const {
  MF_TRY(lock, FileLock::Take(dir_, LOCK_SH));
  return ReadLocked();
}

Expected<void> NameStore::Update(
    const std::function<Expected<void>(std::map<std::string, NameRecord>*)>& change) {
  MF_TRY(lock, FileLock::Take(dir_, LOCK_EX));
  MF_TRY(table, ReadLocked());
  MF_TRY_VOID(change(&table));
  nlohmann::ordered_json j;
  j["images"] = nlohmann::ordered_json::object();
  for (const auto& [name, rec] : table)
    j["images"][name] = {{"digest", rec.digest}, {"mediaType", rec.media_type}};
  std::string body = j.dump(2) + "\n";
  std::string path = dir_ + "/" + kFile;
  std::string tmp = path + UniqueTempSuffix();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return IoError("writing " + tmp, errno);
  const char* p = body.data();
  size_t left = body.size();
  while (left > 0) {
    ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return IoError("writing " + tmp, e);
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return IoError("syncing " + tmp, e);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return IoError("renaming " + tmp, e);
  }
  return Ok();
}

}  // namespace manifold::image
