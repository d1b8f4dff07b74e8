#include "common/registry/challenge.h"

#include "common/base/ascii.h"

namespace manifold::registry {
namespace {

bool IsTokenChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-.^_`|~/").find(c) != std::string_view::npos;
}

class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}
  void SkipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_;
  }
  void SkipSpaceAndCommas() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == ',')) ++i_;
  }
  bool AtEnd() const { return i_ >= s_.size(); }
  char Peek() const { return AtEnd() ? '\0' : s_[i_]; }
  std::string Token() {
    std::size_t start = i_;
    while (i_ < s_.size() && IsTokenChar(s_[i_])) ++i_;
    return std::string(s_.substr(start, i_ - start));
  }
  /// A quoted-string (with \-escapes) or a token, after '='.
  std::string Value() {
    if (Peek() != '"') {
      std::size_t start = i_;
      while (i_ < s_.size() && s_[i_] != ',' && s_[i_] != ' ') ++i_;
      return std::string(s_.substr(start, i_ - start));
    }
    ++i_;
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      if (s_[i_] == '\\' && i_ + 1 < s_.size()) ++i_;
      out += s_[i_++];
    }
    if (i_ < s_.size()) ++i_;  // closing quote
    return out;
  }
  std::size_t pos() const { return i_; }
  void set_pos(std::size_t p) { i_ = p; }

 private:
  std::string_view s_;
  std::size_t i_ = 0;
};

}  // namespace

std::vector<Challenge> ParseChallenges(std::string_view header) {
  std::vector<Challenge> out;
  Scanner in(header);
  in.SkipSpaceAndCommas();
  while (!in.AtEnd()) {
    std::string scheme = in.Token();
    if (scheme.empty()) {  // garbage: skip to the next comma
      while (!in.AtEnd() && in.Peek() != ',') in.set_pos(in.pos() + 1);
      in.SkipSpaceAndCommas();
      continue;
    }
    Challenge challenge;
    challenge.scheme = AsciiLower(scheme);
    in.SkipSpace();
    // auth-params until a token that is not followed by '=' (the next scheme).
    while (!in.AtEnd()) {
      std::size_t mark = in.pos();
      in.SkipSpaceAndCommas();
      std::string name = in.Token();
      in.SkipSpace();
      if (name.empty() || in.Peek() != '=') {
        in.set_pos(mark);
        break;
      }
      in.set_pos(in.pos() + 1);
      in.SkipSpace();
      challenge.params[AsciiLower(name)] = in.Value();
      in.SkipSpace();
    }
    out.push_back(std::move(challenge));
    in.SkipSpaceAndCommas();
  }
  return out;
}

}  // namespace manifold::registry
