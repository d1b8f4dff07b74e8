#include "common/fs/path.h"

namespace manifold::fs {

bool IsValidComponent(std::string_view name) {
  if (name.empty() || name == "." || name == "..") return false;
  return name.find('/') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

Expected<Path> Path::Parse(std::string_view raw) {
  if (raw.find('\0') != std::string_view::npos) {
    return MakeError(ErrorKind::kSecurity, "fs.path.nul", "path contains a NUL byte");
  }
  std::vector<std::string_view> parts;
  std::size_t pos = 0;
  while (pos <= raw.size()) {
    std::size_t slash = raw.find('/', pos);
    if (slash == std::string_view::npos) slash = raw.size();
    std::string_view part = raw.substr(pos, slash - pos);
    pos = slash + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (parts.empty()) {
        return MakeError(ErrorKind::kSecurity, "fs.path.escape", "path escapes the root");
      }
      parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string clean;
  for (std::string_view part : parts) {
    if (!clean.empty()) clean += '/';
    clean += part;
  }
  return Path(std::move(clean));
}

Expected<Path> Path::Join(std::string_view name) const {
  if (!IsValidComponent(name)) {
    return MakeError(ErrorKind::kSecurity, "fs.path.component",
                     "\"" + std::string(name) + "\" is not a single path component");
  }
  return Path(path_.empty() ? std::string(name) : path_ + "/" + std::string(name));
}

std::size_t Path::Depth() const {
  if (path_.empty()) return 0;
  std::size_t n = 1;
  for (char c : path_) n += c == '/';
  return n;
}

Path Path::Parent() const {
  std::size_t slash = path_.rfind('/');
  if (slash == std::string::npos) return Path();
  return Path(path_.substr(0, slash));
}

std::string_view Path::Base() const {
  std::size_t slash = path_.rfind('/');
  if (slash == std::string::npos) return path_;
  return std::string_view(path_).substr(slash + 1);
}

std::vector<std::string_view> Path::Components() const {
  std::vector<std::string_view> out;
  std::string_view rest = path_;
  while (!rest.empty()) {
    std::size_t slash = rest.find('/');
    out.push_back(rest.substr(0, slash));
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return out;
}

Path Path::Prefix(std::size_t n) const {
  if (n == 0) return Path();
  std::size_t pos = 0;
  for (std::size_t i = 0; i < n; ++i) {
    pos = path_.find('/', pos);
    if (pos == std::string::npos) return *this;
    if (i + 1 < n) ++pos;
  }
  return Path(path_.substr(0, pos));
}

std::string CleanRootedPath(std::string_view raw) {
  std::vector<std::string_view> parts;
  std::size_t pos = 0;
  while (pos <= raw.size()) {
    std::size_t end = raw.find('/', pos);
    if (end == std::string_view::npos) end = raw.size();
    std::string_view part = raw.substr(pos, end - pos);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    pos = end + 1;
  }
  std::string out;
  for (std::string_view p : parts) {
    out += '/';
    out += p;
  }
  return out.empty() ? "/" : out;
}

}  // namespace manifold::fs
