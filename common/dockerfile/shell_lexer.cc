// BuildKit's shell lexer (frontend/dockerfile/shell/lex.go) re-implemented. Where BuildKit
// leans on Go (text/scanner, unicode, %q, regexp) we reproduce Go's behaviour: invalid UTF-8
// reads as U+FFFD, a leading BOM is skipped, names use Unicode letters and digits, and the
// `#` `%` `/` patterns match as the Go regexp BuildKit builds from them would.
#include "common/dockerfile/shell_lexer.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>

namespace manifold::dockerfile {

namespace {

constexpr int32_t kEof = -1;  // text/scanner's EOF
constexpr int32_t kRuneError = 0xFFFD;
constexpr char kCode[] = "dockerfile.expansion";
constexpr char kCodeTooLarge[] = "dockerfile.expansion.too_large";
// Work (bytes copied plus pattern-matching steps) allowed per byte of the output limit, so
// that discarded expansions (`${x:+$big}` repeated) and patterns cannot take unbounded time.
constexpr uint64_t kWorkPerOutputByte = 64;

// ---- Go text: UTF-8, unicode classes, %q ----

struct Rune {
  int32_t value;
  size_t width;
};

/// utf8.DecodeRune: every byte of an invalid sequence is U+FFFD of width 1.
Rune DecodeRune(std::string_view s) {
  auto c = static_cast<uint8_t>(s[0]);
  if (c < 0x80) return {c, 1};
  // Length, payload bits and the allowed range of the second byte, by lead byte.
  size_t n = c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
  if (n == 0 || s.size() < n) return {kRuneError, 1};
  int32_t r = c & (0x7F >> n);
  uint8_t lo = c == 0xE0 ? 0xA0 : c == 0xF0 ? 0x90 : 0x80;
  uint8_t hi = c == 0xED ? 0x9F : c == 0xF4 ? 0x8F : 0xBF;
  for (size_t i = 1; i < n; ++i, lo = 0x80, hi = 0xBF) {
    auto x = static_cast<uint8_t>(s[i]);
    if (x < lo || x > hi) return {kRuneError, 1};
    r = (r << 6) | (x & 0x3F);
  }
  return {r, n};
}

/// utf8.AppendRune: invalid runes (and EOF) become U+FFFD.
void AppendRune(std::string& out, int32_t r) {
  if (r < 0 || r > 0x10FFFF || (r >= 0xD800 && r <= 0xDFFF)) r = kRuneError;
  if (r < 0x80) {
    out += static_cast<char>(r);
    return;
  }
  int n = r < 0x800 ? 2 : r < 0x10000 ? 3 : 4;
  out += static_cast<char>((0xF00 >> n) | (r >> (6 * (n - 1))));
  for (int i = n - 2; i >= 0; --i) out += static_cast<char>(0x80 | ((r >> (6 * i)) & 0x3F));
}

std::string RuneString(int32_t r) {
  std::string s;
  AppendRune(s, r);
  return s;
}

/// []rune(s), and back.
std::vector<int32_t> Runes(std::string_view s) {
  std::vector<int32_t> out;
  for (size_t i = 0; i < s.size(); i += DecodeRune(s.substr(i)).width) {
    out.push_back(DecodeRune(s.substr(i)).value);
  }
  return out;
}

std::string FromRunes(const std::vector<int32_t>& runes) {
  std::string s;
  for (int32_t r : runes) AppendRune(s, r);
  return s;
}

// Go's unicode tables (Unicode 15.0.0, Go >= 1.21), generated from UnicodeData.txt. Each
// range is two numbers: the gap since the previous range and the length minus one. A number
// is base-26 digits, all but the last lowercase ('a' = 0), the last uppercase ('A' = 0).
// kPrintable is categories L, M, N, P, S and U+0020 (unicode.IsPrint).
constexpr std::string_view kLetters =
    "cNZGZbVAKAEAFWBbEBrPELOEHABAeZEBBCDBAGABCBABTBdEBfIIgJBbLCAGbOcTbAEDbTbQbJBBdUBAPBHBKCCAQABbDb"
    "DdKLAYbGJBEAFVEAJADAXYHKFXBFRbPcGcBDASAHJPPEHCBCVBGBADDDAQANBBCOBKAIFEBCVBGBBBBBBbFDBATCQIBCBV"
    "BGBBBEDASAPBXALHCBCVBGBBBEDAbEBBCPARABFDCBDDBBABBDBDCDLWAcAHBCBWBPDAbACCACBbEAEHBCBWBJBEDAbFBB"
    "BPBRIBCBbOCAQAFCICYFFRDXBIBACGcGbVBBMGcGBBABEBXBABJBBJACEBAVDbGAcLHBbJbBEeLbQUAQFEDDADBHCEMMAR"
    "bLBAFACbQBmUBDCGBABDCbOBDCbGBDCGBABDCOBcEBDCcObLPQdHCFDxVCQBZFcWGHHRNSOROMBCPbZbJAEAcPdKHECbHB"
    "AFcRKbEbXbDCELbREZcCWJcAdEAdPbURHcCbDNBKbRbAbJbPCKbJCIHbQCCbPDBFBBDAFhJcMkRCFCbLCFCHBABABABbEC"
    "cABGBADCBGDDCFEMFCBGeMANAQMdXAEACJBADEGABABABDBKCDFEEAcABdzFiUGDDBMbLBAFACcDHAQWJGBGBGBGBGBGBG"
    "BGdCAsBBbQEFBEdHGCBdLBDFbQBdPRbFbWPtSjtNcMbguEcPbTCkIDPKBUbUQbECcRbXICdYCcLFBBABEYPBCBDBWbDbZO"
    "bXcKFDABBLbBKWZbCHbUbCAQEBJKEBbOXCBHUWDADbXBADBCECABAYCCKHCMFCFCFJGBGBbQBNGeKbDqnRMWEbWmnCoBCe"
    "BbMGMEFABJBMBEBABBBBBeDbHnYScLCcBbOLeMEBfEbKZGZLdKDFCFCFCCbJLBZBSBBBOCNbIeSoZbCDbWbVbFNTBHGbLK"
    "bDCbJEHbWgBSbJEbJEbNIbZMKBOBGBBBKBOBGBBcPlYJVKHYFBbPBIcRFCABbRBBDACWKWJbEcNSBBKVKZcScDGBcMAPDB"
    "CBbCbQbCDbCbJHBbBbBcBKVKSNReGcUcDbYNbYNbJnKbPGBdAbCKAIVbQRbUUbBWMcAcFBCANbSbGYbAbJbDACAIbIDAMb"
    "VODVABAbJRBYTBcLGBABDBOBJHbUbMHCBCVBGBBBEDASAMEgCcASDUCbEbVUBBAhCbUbPDbKbVUAcHbQNAcTbAbLGhDbRe"
    "McLbFHCACHBBBXPABAdQHCbMQABAbCAKbNHAVALbTTAScUkDIBbKRAbXbDeIGBBBbLVAZFBBBbFOAmPSPABMBbHeUAdBbj"
    "LiWhNdxKdSPbpFRFfyVwKmuBvWHbERdARbDSbVQDbFUFSbaMcLeYcWFAcOMcMBBAbCjbZIbvPbQInfRDBGBBBlEPAbDCCA"
    "ODIpFdkUeCFMDIHJiwKdGBcSBBCACBCDBLBABGBcMBDCHBGBbBBDBEBADGBnBCYBYBbEBYBbEBYBbEBYBbEBYBHcsYbEGF"
    "kBcJfQbSKGQAmJbDSbRsQbBbdCGBDBBBOBhOcHcPHAbuIDBbABBBACABJBDBABAGAEABABABCBBBACABABABABABBBACDB"
    "GBDBDBABJBQFCBEBQgoAclfBbGgdTGiNCinPOlbKepJuVcfYhhYFgfF";
constexpr std::string_view kDigits =
    "bWJciOJfEJhQJpWJeOJeOJeOJeOJeOJeOJeOJeOJeOJdSJeOJcSJkSJcSJctQJbMJlOJeYJgKJGJhAJdIJfEJGJcaeOJba"
    "CJbMJhQJWJdIJpQJbfmCJccKJdfYJbfGJeYJcIJfOJkSJnEJeOJoKJdYJdYJqGJdYJbdEJjMJcSJqGJbckSJdIJfEJbpbW"
    "bXdnCJqGJtIJbqSJhbAJ";
constexpr std::string_view kPrintable =
    "bGdQbILBbbLCFEGBABTBpGBbLCbXCCBcCIbAEFRVBhJBbVCcGCdWOcGCbWCOBbBCABKFbEJcVBgEBHCBCVBGBADDCICBCD"
    "IAEBBECYCCBFEBCVBGBBBBBBCABEEBCCDAHDBAHQKCBIBCBVBGBBBECJBCBCCAPDCLHGBCBHCBCVBGBBBECICBCCHCEBBE"
    "CRKBBFDCBDDBBABBDBDCDLEEDCBDCAGAOUFMBCBWBPCIBCBDHBBCCACDCJHVBCBWBJBECIBCBDHBGBBDCJBCMMBCBbYBCB"
    "FEPCZBCBRDXBIBACGDAEFBABHGJCCMcFEbCbLBBABEBXBABWCEBABGBJCDbGcTBbJEbMBbJBOBMbLhPBAFACoMBDCGBABD"
    "CbOBDCbGBDCGBABDCOBcEBDCcOCbFDZGdHCFCyPBbBDdKHVJXJTMMBCBBMdPCJGJGNBKGdKHbQFcRKbEBLELEADbPCELbR"
    "EZGKDcJCcMBbCCKGJGNCbEbXcYDbUBeLIcHDODcHHbQCKIbQFuNCFCbLCFCHBABABABbECcABOBNCFBSCCBIRXIbURBCbA"
    "BMDbGPbGPfJEzMZKVcrRCbFBnKFbSBAFACcDHBOXJGBGBGBGBGBGBGBGBeVbIZBdKMiFbALFcKBdHCdYFbQBdPBdFMbUBb"
    "riQDcCJnJUhBIhUFBBABEYcGDJGcDIcRILGeLLbDDcZBKEbGBcCJNCJCdYYbBKFCFCFJGBGBcHEeVCJGqnRMWEbWmnCoBC"
    "eBbMGMEFZBEBABBBBBeUQrCCcBHAbGbPGbYBSBDEEBfEEhHDFCFCFCCDGBGNBCLBZBSBBBOCNbIeSFCEbSDdJBMDAbVbTf"
    "AbCDbWPbBEbJJbDFbQFbDBbKENbQgBCJGbJEbJEbNIbZLLBOBGBBBKBOBGBBcPlYJVKHYFBbPBIcRFCABbRBBDACWBcTII"
    "bWSBBFbGDbAFAcMcDETCbXBBFHBCBbCCCEJHIHcLbGbMELJcBDbCCbAFZHDMGdCcUcDbYNbYHbTIJlIbEBbPBCCBcXbQIb"
    "PWZbMbBUWJcZEbJJcJBENYHJGcABRIbMJdRBTLRBbUcKGBABDBOBKGcGFJGDBHCBCVBGBBBEBJCBCCCAGAFGCGDEfJdNBE"
    "bEcTIJgKcBCbLbIcQLJGMTcFGJcCbACOEWhDcHdWdEMHCACHBBBbDBBCLJJcSHCbTCKbBcTIdENcUHJjMIBbSBNKbCDbFC"
    "VBNcVGBBBbRDABBBIIJGFBBBbKBBBFHJlYYHQBbODbBdIAPbXNbjMdYeGBELhNdxKdUNbpFQVfyGwKmuBvWHbEBJEdCBJG"
    "bDCFKcRKJBGBUFSbaMdMdXcWEcEHQcMELBOjbZIbvPbQInfRDBGBBBlEPAbDCCAODIpFdkUeCFMDIHJCDgyYbTCWJeLcIj"
    "LKbMCcVIeHVcReSTMTMdIJYfFdGBcSBBCACBCDBLBABGBcMBDCHBGBbBBDBEBADGBnBClFCbaZPEBObqMbEGFiFGBQCGBB"
    "BEFcJbHAeIbSDNCJEBmIbERcFFArWbPbcOGBDBBBOBhOCPbPcXEJEBbeFcPcYcIhMDBbABBBACABJBDBABAGAEABABABCB"
    "BBACABABABABABBBACDBGBDBDBABJBQFCBEBQcABkKbREdVMOCOBOBbKKgRcEbCNbREIHBOFfYblVEQDMDeOEdQGLEAPLE"
    "cDIJGbNIbDCBdAnBMNCMDIHbTBGINEIHIHfQBcCbLJbnQclfBbGgdTGiNCinPOlbKepJuVcfYhhYFgfFbonhGjF";

bool InTable(std::string_view table, int32_t r) {
  auto read = [&](size_t& i) {
    uint32_t v = 0;
    while (table[i] >= 'a') v = v * 26 + static_cast<uint32_t>(table[i++] - 'a');
    return v * 26 + static_cast<uint32_t>(table[i++] - 'A');
  };
  uint32_t next = 0;
  for (size_t i = 0; i < table.size();) {
    uint32_t lo = next + read(i);
    uint32_t hi = lo + read(i);
    if (static_cast<uint32_t>(r) < lo) return false;
    if (static_cast<uint32_t>(r) <= hi) return true;
    next = hi + 1;
  }
  return false;
}

bool IsLetter(int32_t r) {
  return r < 0x80 ? (r | 0x20) >= 'a' && (r | 0x20) <= 'z' : InTable(kLetters, r);
}
bool IsDigit(int32_t r) { return r < 0x80 ? r >= '0' && r <= '9' : InTable(kDigits, r); }
bool IsPrint(int32_t r) { return r < 0x80 ? r >= 0x20 && r < 0x7F : InTable(kPrintable, r); }
bool IsSpace(int32_t r) {
  return (r >= '\t' && r <= '\r') || r == ' ' || r == 0x85 || r == 0xA0 || r == 0x1680 ||
         (r >= 0x2000 && r <= 0x200A) || r == 0x2028 || r == 0x2029 || r == 0x202F ||
         r == 0x205F || r == 0x3000;
}
bool IsOneOf(int32_t r, std::string_view set) {
  return r > 0 && r < 0x80 && set.find(static_cast<char>(r)) != std::string_view::npos;
}

/// strconv.Quote, as in BuildKit's "failed to process %q".
std::string GoQuote(std::string_view s) {
  auto hex = [](std::string& out, uint32_t v, int digits) {
    for (int i = digits - 1; i >= 0; --i) out += "0123456789abcdef"[(v >> (4 * i)) & 0xF];
  };
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    Rune r = DecodeRune(s.substr(i));
    auto u = static_cast<uint32_t>(r.value);
    if (r.width == 1 && r.value == kRuneError) {
      out += "\\x", hex(out, static_cast<uint8_t>(s[i]), 2);
    } else if (r.value == '"' || r.value == '\\') {
      out += '\\', out += static_cast<char>(r.value);
    } else if (IsPrint(r.value)) {
      out.append(s.substr(i, r.width));
    } else if (r.value >= '\a' && r.value <= '\r') {
      out += '\\', out += "abtnvfr"[r.value - '\a'];
    } else if (r.value < ' ' || r.value == 0x7F) {
      out += "\\x", hex(out, u, 2);
    } else {
      out += r.value < 0x10000 ? "\\u" : "\\U", hex(out, u, r.value < 0x10000 ? 4 : 8);
    }
    i += r.width;
  }
  return out + "\"";
}

/// text/scanner's Next and Peek: runes as DecodeRune reads them, a leading BOM skipped.
class Scanner {
 public:
  explicit Scanner(std::string_view src) : src_(src) {
    if (src_.substr(0, 3) == "\xEF\xBB\xBF") pos_ = 3;
  }
  int32_t Peek() const { return pos_ < src_.size() ? DecodeRune(src_.substr(pos_)).value : kEof; }
  int32_t Next() {
    if (pos_ >= src_.size()) return kEof;
    Rune r = DecodeRune(src_.substr(pos_));
    pos_ += r.width;
    return r.value;
  }

 private:
  std::string_view src_;
  size_t pos_ = 0;
};

// ---- Shell patterns ----
// BuildKit turns a pattern into a Go regexp (convertShellPatternToRegex): `*` is `.*` (`.*?`
// when not greedy), `?` is `.`, `\*` `\?` `\\` are literals, `\}` and `\/` lose the backslash,
// anything else is literal. Go's `.` does not match a newline. We match that language with a
// Pike VM, which finds Go's leftmost-first match in linear time.

struct Atom {
  enum Kind : uint8_t { kLiteral, kAny, kStar } kind;
  int32_t rune;
};

/// Returns the atoms, or sets `error` as Go's converter words it.
std::vector<Atom> CompilePattern(std::string_view pattern, std::string* error) {
  std::vector<Atom> atoms;
  Scanner s(pattern);
  for (int32_t tok = s.Next(); tok != kEof; tok = s.Next()) {
    if (tok == '*' || tok == '?') {
      atoms.push_back({tok == '*' ? Atom::kStar : Atom::kAny, 0});
      continue;
    }
    if (tok == '\\') {
      if (s.Peek() == '}' || s.Peek() == '/') continue;
      tok = s.Next();
      if (!IsOneOf(tok, "*?\\")) {
        *error = "invalid escape '\\" + RuneString(tok) + "'";
        return {};
      }
    }
    atoms.push_back({Atom::kLiteral, tok});
  }
  return atoms;
}

/// Work spent by one expansion, against its budget.
struct WorkMeter {
  uint64_t used = 0;
  uint64_t budget = 0;
  bool Over() const { return used > budget; }
};

/// Nodes: i < n is atom i (for a star, the split), n is the match, n + 1 + i loops star i.
class Matcher {
 public:
  Matcher(std::vector<Atom> atoms, bool greedy)
      : atoms_(std::move(atoms)), greedy_(greedy), n_(static_cast<uint32_t>(atoms_.size())) {
    for (List* l : {&a_, &b_}) l->mark.assign(2 * atoms_.size() + 1, 0);
  }

  /// The leftmost-first match [begin, end) at or after `from` (only at `from` when anchored),
  /// as Go's Regexp.FindStringIndex. Gives up, without a match, once `meter` is over budget.
  std::optional<std::pair<size_t, size_t>> Find(std::string_view text, size_t from, bool anchored,
                                                WorkMeter& meter) {
    List* cur = &a_;
    List* next = &b_;
    Clear(*cur);
    std::optional<std::pair<size_t, size_t>> found;
    for (size_t pos = from;;) {
      if (!found && (!anchored || pos == from)) AddClosure(*cur, 0, pos);  // lowest priority
      if (cur->threads.empty()) break;
      Rune r = pos < text.size() ? DecodeRune(text.substr(pos)) : Rune{kEof, 0};
      Clear(*next);
      meter.used += cur->threads.size();
      for (const Thread& t : cur->threads) {
        if (t.node == n_) {  // threads of lower priority are cut off
          found = std::make_pair(t.start, pos);
          break;
        }
        bool literal = t.node < n_ && atoms_[t.node].kind == Atom::kLiteral;
        if (r.value != kEof && (literal ? r.value == atoms_[t.node].rune : r.value != '\n')) {
          AddClosure(*next, t.node > n_ ? t.node - n_ - 1 : t.node + 1, t.start);
        }
      }
      if (r.value == kEof || meter.Over()) break;
      std::swap(cur, next);
      pos += r.width;
    }
    return meter.Over() ? std::nullopt : found;
  }

 private:
  struct Thread {
    uint32_t node;
    size_t start;
  };
  struct List {
    std::vector<Thread> threads;
    std::vector<uint32_t> mark;  // == generation: node already on the list
    uint32_t generation = 0;
  };

  static void Clear(List& l) {
    l.threads.clear();
    if (++l.generation == 0) std::fill(l.mark.begin(), l.mark.end(), 0), l.generation = 1;
  }
  static bool Mark(List& l, uint32_t node) {
    if (l.mark[node] == l.generation) return false;
    l.mark[node] = l.generation;
    return true;
  }

  /// Adds the threads reachable from `node` in priority order, without recursion: a greedy
  /// star tries its loop before what follows, a lazy star after everything that follows.
  void AddClosure(List& l, uint32_t node, size_t start) {
    std::vector<uint32_t> lazy_loops;
    for (; node < n_ && atoms_[node].kind == Atom::kStar; ++node) {
      if (!Mark(l, node)) break;
      if (!greedy_) {
        lazy_loops.push_back(n_ + 1 + node);
      } else if (Mark(l, n_ + 1 + node)) {
        l.threads.push_back({n_ + 1 + node, start});
      }
    }
    if (Mark(l, node)) l.threads.push_back({node, start});
    for (auto it = lazy_loops.rbegin(); it != lazy_loops.rend(); ++it) {
      if (Mark(l, *it)) l.threads.push_back({*it, start});
    }
  }

  std::vector<Atom> atoms_;
  bool greedy_;
  uint32_t n_;
  List a_, b_;
};

/// reversePattern: reverses the runes but keeps each `\x` pair in order.
std::string ReversePattern(std::string_view pattern) {
  std::vector<int32_t> in = Runes(pattern);
  std::vector<int32_t> out(in.size());
  for (size_t i = 0, last = in.size() - 1; i < in.size();) {
    if (in[i] == '\\' && i != last) {
      out[last - i - 1] = '\\';
      out[last - i] = in[i + 1];
      i += 2;
    } else {
      out[last - i] = in[i];
      ++i;
    }
  }
  return FromRunes(out);
}

std::string ReverseRunes(std::string_view s) {
  std::vector<int32_t> runes = Runes(s);
  std::reverse(runes.begin(), runes.end());
  return FromRunes(runes);
}

/// Regexp.Expand for a pattern without groups: `$0` and `${0}` are the match, `$$` is `$`,
/// other names are empty, a malformed reference keeps its `$`.
void AppendTemplate(std::string& out, std::string_view tmpl, std::string_view match) {
  for (size_t dollar; (dollar = tmpl.find('$')) != std::string_view::npos;) {
    out.append(tmpl.substr(0, dollar));
    tmpl.remove_prefix(dollar + 1);
    if (!tmpl.empty() && tmpl[0] == '$') {
      out += '$';
      tmpl.remove_prefix(1);
      continue;
    }
    bool brace = !tmpl.empty() && tmpl[0] == '{';
    std::string_view s = tmpl.substr(brace ? 1 : 0);
    size_t i = 0;
    for (Rune r; i < s.size() && (IsLetter((r = DecodeRune(s.substr(i))).value) ||
                                  IsDigit(r.value) || r.value == '_');) {
      i += r.width;
    }
    if (i == 0 || (brace && (i >= s.size() || s[i] != '}'))) {
      out += '$';
      continue;
    }
    if (s.substr(0, i) == "0") out.append(match);
    tmpl = s.substr(brace ? i + 1 : i);
  }
  out.append(tmpl);
}

// ---- Expansion ----

/// BuildKit's wordsStruct: `$` expansions split on whitespace, quotes and escapes do not.
struct Fields {
  std::string word;
  std::vector<std::string> words;
  bool in_word = false;
  size_t bytes = 0;  // everything ever added, for the output limit

  void AddChar(int32_t ch) {
    if (!IsSpace(ch)) {
      AddRawChar(ch);
    } else if (in_word && !word.empty()) {
      words.push_back(std::move(word));
      word.clear();
      in_word = false;
    }
  }
  void AddRawChar(int32_t ch) {
    size_t before = word.size();
    AppendRune(word, ch);
    bytes += word.size() - before;
    in_word = true;
  }
  void AddString(std::string_view s) {
    for (size_t i = 0; i < s.size(); i += DecodeRune(s.substr(i)).width) {
      AddChar(DecodeRune(s.substr(i)).value);
    }
  }
  void AddRawString(std::string_view s) {
    word.append(s);
    bytes += s.size();
    in_word = true;
  }
  std::vector<std::string> Take() {
    if (!word.empty()) words.push_back(std::move(word));
    return std::move(words);
  }
};

Error Fail(std::string message) {
  return MakeError(ErrorKind::kInvalidInput, kCode, std::move(message));
}

/// One expansion of one word (BuildKit's shellWord).
class Expander {
 public:
  Expander(std::string_view source, int32_t escape, const VarLookup& env,
           const ExpandOptions& opts, ExpandResult* result)
      : source_(source), scanner_(source), escape_(escape), env_(env), opts_(opts),
        result_(result), raw_escapes_(opts.raw_escapes) {
    uint64_t base = opts.max_output_bytes + uint64_t{4096};
    meter_.budget = base > std::numeric_limits<uint64_t>::max() / kWorkPerOutputByte
                        ? std::numeric_limits<uint64_t>::max()
                        : base * kWorkPerOutputByte;
  }

  /// Fills result->word and returns the fields.
  Expected<std::vector<std::string>> Run() {
    std::vector<std::string> words;
    auto word = StopOn(kEof, opts_.raw_escapes, &words);
    if (!word.ok()) return std::move(word).error().With("failed to process " + GoQuote(source_));
    result_->word = std::move(*word);
    return words;
  }

 private:
  /// Accounts `added` bytes of work and checks a buffer now `size` bytes long.
  Expected<void> Charge(size_t added, size_t size) {
    meter_.used += added;
    if (size <= opts_.max_output_bytes && !meter_.Over()) return Ok();
    std::string limit = std::to_string(opts_.max_output_bytes) + " bytes";
    return MakeError(ErrorKind::kInvalidInput, kCodeTooLarge,
                     size > opts_.max_output_bytes
                         ? "expansion exceeds the limit of " + limit
                         : "expansion needs too much work for the limit of " + limit);
  }

  std::optional<std::string> GetEnv(const std::string& name) {
    std::optional<std::string> value = env_ ? env_(name) : std::nullopt;
    (value ? result_->matched : result_->unmatched).insert(name);
    return value;
  }

  /// processStopOn: expands up to `stop` (consumed) or the end of the word.
  Expected<std::string> StopOn(int32_t stop, bool raw_escapes, std::vector<std::string>* words) {
    struct Restore {
      bool& flag;
      bool saved;
      ~Restore() { flag = saved; }
    } restore{raw_escapes_, raw_escapes_};
    raw_escapes_ = raw_escapes;
    std::string result;
    Fields fields;
    for (int32_t ch; (ch = scanner_.Peek()) != kEof;) {
      if (ch == stop) {
        scanner_.Next();
        if (words) *words = fields.Take();
        return result;
      }
      size_t before = result.size();
      if (ch == '$' || (!opts_.skip_process_quotes && (ch == '\'' || ch == '"'))) {
        MF_TRY(tmp, ch == '$' ? Dollar() : ch == '\'' ? SingleQuote() : DoubleQuote());
        result += tmp;
        ch == '$' ? fields.AddString(tmp) : fields.AddRawString(tmp);
      } else if ((ch = scanner_.Next()) == escape_) {
        if (raw_escapes_) fields.AddRawChar(ch), AppendRune(result, ch);
        if ((ch = scanner_.Next()) == kEof) break;  // a trailing escape is dropped
        fields.AddRawChar(ch);
        AppendRune(result, ch);
      } else {
        fields.AddChar(ch);
        AppendRune(result, ch);
      }
      MF_TRY_VOID(Charge(result.size() - before, std::max(result.size(), fields.bytes)));
    }
    if (stop != kEof) {
      return Fail("unexpected end of statement while looking for matching " + RuneString(stop));
    }
    if (words) *words = fields.Take();
    return result;
  }

  Expected<std::string> SingleQuote() {
    std::string result;
    int32_t ch = scanner_.Next();
    if (opts_.raw_quotes) AppendRune(result, ch);
    while ((ch = scanner_.Next()) != '\'') {
      if (ch == kEof) {
        return Fail("unexpected end of statement while looking for matching single-quote");
      }
      AppendRune(result, ch);
    }
    if (opts_.raw_quotes) AppendRune(result, ch);
    return result;
  }

  Expected<std::string> DoubleQuote() {
    std::string result;
    int32_t ch = scanner_.Next();
    if (opts_.raw_quotes) AppendRune(result, ch);
    for (int32_t peek; (peek = scanner_.Peek()) != '"';) {
      if (peek == kEof) {
        return Fail("unexpected end of statement while looking for matching double-quote");
      }
      if (peek == '$') {
        MF_TRY(value, Dollar());
        result += value;
        MF_TRY_VOID(Charge(value.size(), result.size()));
        continue;
      }
      if ((ch = scanner_.Next()) == escape_) {
        // Escapes only `"`, `$` and itself. A kept escape that escapes nothing is written
        // twice, as BuildKit does.
        if (raw_escapes_) AppendRune(result, ch);
        if ((peek = scanner_.Peek()) == kEof) continue;
        if (peek == '"' || peek == '$' || peek == escape_) ch = scanner_.Next();
      }
      AppendRune(result, ch);
    }
    ch = scanner_.Next();
    if (opts_.raw_quotes) AppendRune(result, ch);
    return result;
  }

  /// processName: digits, or one special parameter, or letters, digits and `_`.
  std::string Name() {
    std::string name;
    for (int32_t ch; (ch = scanner_.Peek()) != kEof;) {
      if (name.empty() && IsDigit(ch)) {
        while (IsDigit(scanner_.Peek())) AppendRune(name, scanner_.Next());
        return name;
      }
      if (name.empty() && IsOneOf(ch, "@*#?-$!0")) return RuneString(scanner_.Next());
      if (!IsLetter(ch) && !IsDigit(ch) && ch != '_') break;
      AppendRune(name, scanner_.Next());
    }
    return name;
  }

  Expected<std::string> Dollar() {
    scanner_.Next();
    if (scanner_.Peek() == '{') return Braced();
    std::string name = Name();
    if (name.empty()) return std::string("$");
    auto value = GetEnv(name);
    if (!value && opts_.skip_unset_env) return "$" + name;
    return value.value_or("");
  }

  /// A nested word up to `stop`; a syntax error at the end of the input becomes `missing`.
  Expected<std::string> Inner(int32_t stop, bool raw_escapes, const char* missing) {
    auto word = StopOn(stop, raw_escapes, nullptr);
    if (!word.ok() && word.error().code == kCode && scanner_.Peek() == kEof) return Fail(missing);
    return word;
  }

  Expected<std::string> Braced() {
    struct Depth {
      int& depth;
      ~Depth() { --depth; }
    } depth{++depth_};
    if (depth_ > ShellLexer::kMaxNesting) {
      return MakeError(ErrorKind::kInvalidInput, "dockerfile.expansion.too_deep",
                       "${...} nested deeper than " + std::to_string(ShellLexer::kMaxNesting) +
                           " levels");
    }
    scanner_.Next();  // '{'
    int32_t peek = scanner_.Peek();
    if (peek == kEof) return Fail("syntax error: missing '}'");
    if (IsOneOf(peek, "{}:")) return Fail("syntax error: bad substitution");
    std::string name = Name();
    int32_t ch = scanner_.Next();
    std::string op = RuneString(ch);
    if (ch == '}') {
      auto value = GetEnv(name);
      if (!value && opts_.skip_unset_env) return "${" + name + "}";
      return value.value_or("");
    }
    if (ch == '/') return Replace(name);
    bool null_is_unset = ch == ':';  // ${v:-w} treats empty as unset, ${v-w} does not
    if (null_is_unset) {
      op += RuneString(ch = scanner_.Next());
    } else if (!IsOneOf(ch, "+-?#%")) {
      return Fail("unsupported modifier (" + op + ") in substitution");
    }
    MF_TRY(word, Inner('}', ch == '#' || ch == '%', "syntax error: missing '}'"));
    auto value = GetEnv(name);
    if (!value && opts_.skip_unset_env) return "${" + name + op + word + "}";
    bool unset = !value || (null_is_unset && value->empty());
    switch (ch) {
      case '-':
        return unset ? word : *value;
      case '+':
        return unset ? std::string() : word;
      case '?':
        if (!unset) return *value;
        if (!word.empty()) return Fail(name + ": " + word);
        return Fail(name + ": is not allowed to be " + (value ? "empty" : "unset"));
      case '#':
      case '%': {
        bool greedy = !word.empty() && word[0] == ch;  // ## and %% take the longest match
        if (greedy) word.erase(0, 1);
        if (ch == '#') return TrimPrefix(word, value.value_or(""), greedy);
        // Go's regexp cannot find the shortest suffix, so BuildKit reverses both sides.
        MF_TRY(trimmed, TrimPrefix(ReversePattern(word), ReverseRunes(value.value_or("")), greedy));
        return ReverseRunes(trimmed);
      }
      default:
        return Fail("unsupported modifier (" + op + ") in substitution");
    }
  }

  Expected<Matcher> Compile(const std::string& pattern, bool greedy) {
    std::string error;
    std::vector<Atom> atoms = CompilePattern(pattern, &error);
    if (!error.empty()) return Fail("invalid pattern (" + pattern + ") in substitution: " + error);
    return Matcher(std::move(atoms), greedy);
  }

  Expected<std::string> TrimPrefix(const std::string& pattern, std::string value, bool greedy) {
    MF_TRY(matcher, Compile(pattern, greedy));
    auto match = matcher.Find(value, 0, /*anchored=*/true, meter_);
    MF_TRY_VOID(Charge(0, 0));
    if (match) value.erase(0, match->second);
    return value;
  }

  /// ${name/pattern/replacement} replaces the first match, ${name//pattern/replacement} all.
  Expected<std::string> Replace(const std::string& name) {
    bool all = scanner_.Peek() == '/';
    if (all) scanner_.Next();
    MF_TRY(pattern, Inner('/', true, "syntax error: missing '/' in ${}"));
    MF_TRY(replacement, Inner('}', true, "syntax error: missing '}'"));
    auto value = GetEnv(name);
    if (!value && opts_.skip_unset_env) {
      return "${" + name + "/" + pattern + "/" + replacement + "}";  // `//` comes back as `/`
    }
    MF_TRY(matcher, Compile(pattern, /*greedy=*/true));
    const std::string value_or_empty = value.value_or("");
    std::string_view v = value_or_empty;
    std::string out;
    size_t last_end = 0;
    // Regexp.ReplaceAllString, with its rules for empty matches; Find for a single one.
    for (size_t search = 0; search <= v.size();) {
      auto m = matcher.Find(v, search, /*anchored=*/false, meter_);
      MF_TRY_VOID(Charge(0, 0));
      if (!m) break;
      size_t before = out.size();
      out.append(v, last_end, m->first - last_end);
      if (!all) {
        out += replacement;
      } else if (m->second > last_end || m->first == 0) {
        AppendTemplate(out, replacement, v.substr(m->first, m->second - m->first));
      }
      last_end = m->second;
      MF_TRY_VOID(Charge(out.size() - before, out.size()));
      if (!all) break;
      size_t width = search < v.size() ? DecodeRune(v.substr(search)).width : 0;
      search = search + width > m->second ? search + width : std::max(search + 1, m->second);
    }
    return out.append(v, last_end);
  }

  std::string_view source_;
  Scanner scanner_;
  int32_t escape_;
  const VarLookup& env_;
  const ExpandOptions& opts_;
  ExpandResult* result_;
  bool raw_escapes_;
  int depth_ = 0;
  WorkMeter meter_;
};

}  // namespace

ShellLexer::ShellLexer(char escape_token) : escape_token_(escape_token) {}

Expected<ExpandResult> ShellLexer::ProcessWord(std::string_view word, const VarLookup& env,
                                               const ExpandOptions& opts) const {
  ExpandResult result;
  Expander expander(word, static_cast<unsigned char>(escape_token_), env, opts, &result);
  MF_TRY_VOID(expander.Run());
  return result;
}

Expected<std::vector<std::string>> ShellLexer::ProcessWords(std::string_view word,
                                                            const VarLookup& env,
                                                            const ExpandOptions& opts) const {
  ExpandResult result;
  Expander expander(word, static_cast<unsigned char>(escape_token_), env, opts, &result);
  return expander.Run();
}

}  // namespace manifold::dockerfile
