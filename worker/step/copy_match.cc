// MatchComponent (Go filepath.Match) and ApplyChmod, declared in copy_step.h.
#include "worker/step/copy_step.h"

#include <string>

namespace manifold::worker {
namespace {

Error BadPattern(std::string_view pattern) {
  return MakeError(ErrorKind::kInvalidInput, "copy.pattern.invalid",
                   "bad pattern \"" + std::string(pattern) + "\": syntax error in pattern");
}

// Matches one character class starting after '['; sets `end` past ']'.
// Returns -1 on a syntax error, else 0/1 for no match / match.
int MatchClass(std::string_view p, std::size_t& i, unsigned char c) {
  bool negated = false;
  if (i < p.size() && p[i] == '^') {
    negated = true;
    ++i;
  }
  bool matched = false;
  int nrange = 0;
  for (;;) {
    if (i < p.size() && p[i] == ']' && nrange > 0) {
      ++i;
      break;
    }
    auto take = [&](unsigned char& out) {
      if (i >= p.size()) return false;
      if (p[i] == '\\') {
        ++i;
        if (i >= p.size()) return false;
      } else if (p[i] == '-' || p[i] == ']') {
        return false;
      }
      out = static_cast<unsigned char>(p[i++]);
      return true;
    };
    unsigned char lo, hi;
    if (!take(lo)) return -1;
    hi = lo;
    if (i < p.size() && p[i] == '-') {
      ++i;
      if (!take(hi)) return -1;
    }
    if (lo <= c && c <= hi) matched = true;
    ++nrange;
  }
  return matched != negated ? 1 : 0;
}

// Validates the rest of a pattern (Go reports syntax errors even after a mismatch).
bool ValidPattern(std::string_view p) {
  for (std::size_t i = 0; i < p.size();) {
    if (p[i] == '\\') {
      if (i + 1 >= p.size()) return false;
      i += 2;
    } else if (p[i] == '[') {
      ++i;
      if (MatchClass(p, i, 0) < 0) return false;
    } else {
      ++i;
    }
  }
  return true;
}

// Backtracking over '*' only (single star fallback point): linear enough for
// one path component.
int Match(std::string_view p, std::string_view s) {
  std::size_t pi = 0, si = 0, star_p = std::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (pi < p.size()) {
      char pc = p[pi];
      if (pc == '*') {
        star_p = ++pi;
        star_s = si;
        continue;
      }
      if (pc == '?') {
        ++pi;
        ++si;
        continue;
      }
      if (pc == '[') {
        std::size_t j = pi + 1;
        int r = MatchClass(p, j, static_cast<unsigned char>(s[si]));
        if (r < 0) return -1;
        if (r == 1) {
          pi = j;
          ++si;
          continue;
        }
      } else {
        if (pc == '\\') {
          if (pi + 1 >= p.size()) return -1;
          pc = p[pi + 1];
          if (pc == s[si]) {
            pi += 2;
            ++si;
            continue;
          }
        } else if (pc == s[si]) {
          ++pi;
          ++si;
          continue;
        }
      }
    }
    if (star_p == std::string_view::npos) return 0;
    pi = star_p;
    si = ++star_s;
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size() ? 1 : 0;
}

}  // namespace

Expected<bool> MatchComponent(std::string_view pattern, std::string_view name) {
  if (!ValidPattern(pattern)) return BadPattern(pattern);
  int r = Match(pattern, name);
  if (r < 0) return BadPattern(pattern);
  return r == 1;
}

Expected<std::uint32_t> ApplyChmod(std::string_view spec, std::uint32_t mode, bool is_dir) {
  auto bad = [&] {
    return MakeError(ErrorKind::kInvalidInput, "copy.chmod.invalid",
                     "invalid chmod \"" + std::string(spec) + "\"");
  };
  if (spec.empty()) return bad();
  if (spec.find_first_not_of("01234567") == std::string_view::npos) {
    if (spec.size() > 4) return bad();
    std::uint32_t m = 0;
    for (char c : spec) m = m * 8 + static_cast<std::uint32_t>(c - '0');
    return m;
  }
  std::uint32_t m = mode & 07777;
  std::size_t i = 0;
  while (i <= spec.size()) {
    std::uint32_t who = 0;
    for (; i < spec.size() && std::string_view("ugoa").find(spec[i]) != std::string_view::npos; ++i) {
      switch (spec[i]) {
        case 'u': who |= 04700; break;
        case 'g': who |= 02070; break;
        case 'o': who |= 01007; break;
        default: who |= 07777; break;
      }
    }
    if (who == 0) who = 07777;
    if (i >= spec.size() || std::string_view("+-=").find(spec[i]) == std::string_view::npos)
      return bad();
    while (i < spec.size() && std::string_view("+-=").find(spec[i]) != std::string_view::npos) {
      char op = spec[i++];
      std::uint32_t perm = 0;
      for (; i < spec.size() && spec[i] != ',' &&
             std::string_view("+-=").find(spec[i]) == std::string_view::npos;
           ++i) {
        switch (spec[i]) {
          case 'r': perm |= 0444; break;
          case 'w': perm |= 0222; break;
          case 'x': perm |= 0111; break;
          case 'X': if (is_dir || (mode & 0111)) perm |= 0111; break;
          case 's': perm |= 06000; break;
          case 't': perm |= 01000; break;
          default: return bad();
        }
      }
      perm &= who;
      if (op == '+') m |= perm;
      else if (op == '-') m &= ~perm;
      else m = (m & ~(who & 0777)) | perm;
    }
    if (i == spec.size()) break;
    if (spec[i] != ',') return bad();
    ++i;
    if (i == spec.size()) return bad();
  }
  return m;
}

}  // namespace manifold::worker
