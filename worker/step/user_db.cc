#include "worker/step/user_db.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <optional>
#include <string>

#include "common/fs/errno_error.h"
#include "common/fs/path.h"
#include "common/fs/root_dir.h"
#include "worker/step/in_root.h"

namespace manifold::worker {
namespace {

struct Entry {
  std::string name;
  std::uint32_t id = 0;
  std::uint32_t gid = 0;                 // passwd only
  std::vector<std::string> members;      // group only
};

std::optional<std::uint32_t> ParseId(std::string_view s) {
  if (s.empty() || s.size() > 10) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (v > 0xffffffffu) return std::nullopt;
  return static_cast<std::uint32_t>(v);
}

bool AllDigits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  for (;;) {
    std::size_t pos = s.find(sep, start);
    out.push_back(s.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
    if (pos == std::string_view::npos) return out;
    start = pos + 1;
  }
}

// Reads etc/<name> inside the root; nullopt when it does not exist.
Expected<std::optional<std::string>> ReadEtcFile(const fs::RootDir& root, std::string_view name) {
  MF_TRY(path, fs::Path::Parse(std::string("etc/") + std::string(name)));
  auto fd = OpenInRoot(root, path, O_RDONLY | O_NONBLOCK);
  if (!fd.ok()) {
    if (fd.error().code == "fs.not_found" || fd.error().code == "fs.not_dir")
      return std::optional<std::string>();
    return std::move(fd).error();
  }
  struct stat st;
  if (fstat(fd->get(), &st) != 0) return fs::ErrnoError("fstat", path.str(), errno);
  if (!S_ISREG(st.st_mode)) return std::optional<std::string>();
  std::string data;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd->get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fs::ErrnoError("read", path.str(), errno);
    if (n == 0) break;
    if (data.size() + static_cast<std::size_t>(n) > kMaxUserFileBytes)
      return MakeError(ErrorKind::kInvalidInput, "step.user.file_too_large",
                       "/" + path.str() + " is larger than " +
                           std::to_string(kMaxUserFileBytes) + " bytes");
    data.append(buf, static_cast<std::size_t>(n));
  }
  return std::optional<std::string>(std::move(data));
}

// libcontainer's parsers: lines split on ':'; blank lines and ones whose
// numeric fields do not parse are skipped; "#" comments are skipped.
std::vector<Entry> ParseFile(std::string_view data, bool passwd) {
  std::vector<Entry> out;
  for (std::string_view line : Split(data, '\n')) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
      line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    auto f = Split(line, ':');
    Entry e;
    e.name = std::string(f[0]);
    if (passwd) {
      if (f.size() < 4) continue;
      auto uid = ParseId(f[2]);
      auto gid = ParseId(f[3]);
      if (!uid || !gid) continue;
      e.id = *uid;
      e.gid = *gid;
    } else {
      if (f.size() < 3) continue;
      auto gid = ParseId(f[2]);
      if (!gid) continue;
      e.id = *gid;
      if (f.size() >= 4 && !f[3].empty())
        for (auto m : Split(f[3], ',')) e.members.emplace_back(m);
    }
    out.push_back(std::move(e));
  }
  return out;
}

Expected<std::vector<Entry>> Load(const fs::RootDir& root, bool passwd) {
  MF_TRY(data, ReadEtcFile(root, passwd ? "passwd" : "group"));
  if (!data) return std::vector<Entry>();
  return ParseFile(*data, passwd);
}

Expected<std::uint32_t> CheckRange(std::string_view what, std::string_view s) {
  auto id = ParseId(s);
  if (!id || *id > kMaxId)
    return MakeError(ErrorKind::kInvalidInput, "step.user.range",
                     std::string(what) + " " + std::string(s) + " is out of range 0-2147483647");
  return *id;
}

Expected<UidGid> Resolve(const fs::RootDir& root, std::string_view spec, bool chown) {
  if (spec.empty())
    return MakeError(ErrorKind::kInvalidInput, "step.user.empty", "user spec is empty");
  std::string_view user = spec, group;
  bool has_group = false;
  if (auto colon = spec.find(':'); colon != std::string_view::npos) {
    user = spec.substr(0, colon);
    group = spec.substr(colon + 1);
    has_group = true;
  }
  UidGid out;
  if (AllDigits(user)) {
    MF_TRY(uid, CheckRange("uid", user));
    out.uid = uid;
    out.gid = chown ? uid : 0;
    if (!chown && !has_group) {
      MF_TRY(users, Load(root, true));
      for (const auto& e : users)
        if (e.id == uid) {
          out.gid = e.gid;
          break;
        }
    }
  } else {
    if (user.empty())
      return MakeError(ErrorKind::kInvalidInput, "step.user.empty", "user spec is empty");
    MF_TRY(users, Load(root, true));
    const Entry* found = nullptr;
    for (const auto& e : users)
      if (e.name == user) {
        found = &e;
        break;
      }
    if (!found)
      return MakeError(ErrorKind::kInvalidInput, "step.user.unknown",
                       "unable to find user " + std::string(user) +
                           ": no matching entries in passwd file");
    out.uid = found->id;
    out.gid = found->gid;
  }
  if (has_group) {
    if (AllDigits(group)) {
      MF_TRY(gid, CheckRange("gid", group));
      out.gid = gid;
    } else {
      if (group.empty())
        return MakeError(ErrorKind::kInvalidInput, "step.user.empty", "group in user spec is empty");
      MF_TRY(groups, Load(root, false));
      const Entry* found = nullptr;
      for (const auto& e : groups)
        if (e.name == group) {
          found = &e;
          break;
        }
      if (!found)
        return MakeError(ErrorKind::kInvalidInput, "step.group.unknown",
                         "unable to find group " + std::string(group) +
                             ": no matching entries in group file");
      out.gid = found->id;
    }
  }
  return out;
}

}  // namespace

Expected<UidGid> ResolveUser(const fs::RootDir& rootfs, std::string_view spec) {
  return Resolve(rootfs, spec, false);
}

Expected<UidGid> ResolveChown(const fs::RootDir& rootfs, std::string_view spec) {
  return Resolve(rootfs, spec, true);
}

Expected<std::vector<std::uint32_t>> AdditionalGids(const fs::RootDir& rootfs,
                                                    std::string_view user) {
  std::string name(user);
  if (AllDigits(user)) {
    auto uid = ParseId(user);
    MF_TRY(users, Load(rootfs, true));
    name.clear();
    for (const auto& e : users)
      if (uid && e.id == *uid) {
        name = e.name;
        break;
      }
    if (name.empty()) return std::vector<std::uint32_t>();
  }
  MF_TRY(groups, Load(rootfs, false));
  std::vector<std::uint32_t> out;
  for (const auto& g : groups) {
    bool member = false;
    for (const auto& m : g.members)
      if (m == name) member = true;
    if (!member) continue;
    bool dup = false;
    for (auto id : out)
      if (id == g.id) dup = true;
    if (!dup) out.push_back(g.id);
  }
  return out;
}

}  // namespace manifold::worker
