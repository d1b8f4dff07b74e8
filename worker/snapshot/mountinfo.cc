#include "worker/snapshot/mountinfo.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

#include "common/fs/unique_fd.h"
#include "worker/snapshot/state_error.h"

namespace manifold::worker {
namespace {

// The kernel escapes ' ', '\t', '\n' and '\\' in paths as a backslash and
// three octal digits.
std::string Unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      std::string_view oct = s.substr(i + 1, 3);
      if (oct.find_first_not_of("01234567") == std::string_view::npos) {
        out.push_back(static_cast<char>((oct[0] - '0') * 64 + (oct[1] - '0') * 8 + (oct[2] - '0')));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

std::vector<std::string_view> Fields(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t pos = 0;
  while (pos < line.size()) {
    std::size_t end = line.find(' ', pos);
    if (end == std::string_view::npos) end = line.size();
    if (end > pos) out.push_back(line.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

}  // namespace

Expected<std::vector<MountInfo>> ParseMountInfo(std::string_view text) {
  std::vector<MountInfo> out;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    // id parent major:minor root mount-point options [optional...] - fstype source super-options
    std::vector<std::string_view> f = Fields(line);
    std::size_t dash = 6;
    while (dash < f.size() && f[dash] != "-") ++dash;
    MountInfo m;
    if (f.size() < 6 || dash + 2 >= f.size() ||
        std::from_chars(f[0].data(), f[0].data() + f[0].size(), m.id).ec != std::errc()) {
      return MakeError(ErrorKind::kInternal, "snapshot.mountinfo",
                       "malformed mountinfo line \"" + std::string(line) + "\"");
    }
    m.mount_point = Unescape(f[4]);
    m.fstype = std::string(f[dash + 1]);
    if (dash + 3 < f.size()) m.super_options = std::string(f[dash + 3]);
    out.push_back(std::move(m));
  }
  return out;
}

Expected<std::vector<MountInfo>> ReadMountInfo() {
  int fd = ::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return StateError("open", "/proc/self/mountinfo", errno);
  fs::UniqueFd owned(fd);
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(owned.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return StateError("read", "/proc/self/mountinfo", errno);
    if (n == 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  return ParseMountInfo(text);
}

}  // namespace manifold::worker
