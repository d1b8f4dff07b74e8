// libFuzzer target for .dockerignore: the input's first line is a context path,
// the rest is the ignore file. Parsing and matching must never crash, and the
// NFA keeps matching linear whatever the patterns (RELIABILITY A3). Oracles:
//   - without '!' patterns the walk (Excluded) and MatchesOrParentMatches agree;
//   - a directory fsutil would not descend into hides everything below it.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/dockerfile/dockerignore.h"

namespace {

// "a/b/c": no empty, "." or ".." components, so Go's filepath.Dir walks the same prefixes.
bool IsCleanRelative(std::string_view path) {
  if (path.empty()) return false;
  size_t start = 0;
  for (;;) {
    const size_t slash = path.find('/', start);
    const std::string_view part =
        path.substr(start, slash == std::string_view::npos ? slash : slash - start);
    if (part.empty() || part == "." || part == "..") return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace manifold::dockerfile;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nl = in.find('\n');
  const std::string_view path = in.substr(0, nl);
  const std::string_view content =
      nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);

  auto m = IgnoreMatcher::Parse(content, "fuzz/.dockerignore");
  if (!m.ok()) {
    if (m.error().message.empty() || m.error().code.empty()) __builtin_trap();
    return 0;
  }
  const bool excluded = m->Excluded(path);
  const bool parent_matches = m->MatchesOrParentMatches(path);
  const bool exact = m->MatchesExact(path);
  (void)m->MayReincludeUnder(path);

  if (IsCleanRelative(path)) {
    if (!m->HasExclusions() && excluded != parent_matches) __builtin_trap();
    if (!m->HasExclusions() && exact && !excluded) __builtin_trap();
    for (size_t slash = path.find('/'); slash != std::string_view::npos;
         slash = path.find('/', slash + 1)) {
      const std::string_view dir = path.substr(0, slash);
      if (m->Excluded(dir) && !m->MayReincludeUnder(dir) && !excluded) __builtin_trap();
    }
  }

  // The same patterns through patternmatcher.New, which keeps a leading '/'.
  std::vector<std::string> patterns;
  for (size_t start = 0; start <= content.size();) {
    const size_t e = content.find('\n', start);
    patterns.emplace_back(content.substr(start, e == std::string_view::npos ? e : e - start));
    if (e == std::string_view::npos) break;
    start = e + 1;
  }
  auto raw = IgnoreMatcher::FromPatterns(patterns);
  if (raw.ok()) (void)raw->Excluded(path);
  return 0;
}
