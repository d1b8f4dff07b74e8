#include "common/cache/cache_key.h"

#include <algorithm>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "common/crypto/sha256.h"

namespace manifold::cache {
namespace field_count {

// ---- Tripwire: a field added to an encoded struct must be folded in below. ----
// Counts the members of an aggregate: the largest N for which T{any x N} compiles.
struct AnyField {
  template <class T>
  operator T() const;  // never defined; used in unevaluated contexts only
};

template <class T, std::size_t... I>
constexpr bool BraceInitWith(std::index_sequence<I...>) {
  return requires { T{(void(I), AnyField{})...}; };
}

template <class T, std::size_t N = 0>
constexpr std::size_t FieldCount() {
  if constexpr (N > 64) {
    return N;
  } else if constexpr (BraceInitWith<T>(std::make_index_sequence<N + 1>{})) {
    return FieldCount<T, N + 1>();
  } else {
    return N;
  }
}

}  // namespace field_count

namespace {

using dockerfile::Instruction;
using field_count::FieldCount;

// If one of these fails, a struct gained (or lost) a field: decide whether it
// affects a step's result, encode it in EncodeInstruction() (CVE-2024-24557 came
// from fields that did not reach the key), add a mutator to cache_key_test.cc,
// then update the count.
static_assert(FieldCount<Instruction>() == 33, "dockerfile::Instruction changed: update the cache key");
static_assert(FieldCount<dockerfile::Heredoc>() == 5, "dockerfile::Heredoc changed: update the cache key");
static_assert(FieldCount<dockerfile::KeyValue>() == 3, "dockerfile::KeyValue changed: update the cache key");
static_assert(FieldCount<dockerfile::ArgDecl>() == 2, "dockerfile::ArgDecl changed: update the cache key");
static_assert(FieldCount<dockerfile::HeredocSource>() == 3, "dockerfile::HeredocSource changed: update the cache key");
static_assert(FieldCount<oci::Platform>() == 3, "oci::Platform changed: update the cache key");
static_assert(FieldCount<SourceDigest>() == 6, "SourceDigest changed: update the cache key");
static_assert(FieldCount<FromInput>() == 2, "FromInput changed: update the cache key");
static_assert(FieldCount<StepInputs>() == 8, "StepInputs changed: update the cache key");

// Appends `name=<len>:<bytes>\n`. Names are fixed identifiers chosen here, so
// with the length prefix the byte stream parses back one way only.
class Encoder {
 public:
  explicit Encoder(std::string* out) : out_(out) {}

  void Str(std::string_view name, std::string_view value) {
    out_->append(name);
    out_->push_back('=');
    out_->append(std::to_string(value.size()));
    out_->push_back(':');
    out_->append(value);
    out_->push_back('\n');
  }
  void Int(std::string_view name, int64_t v) { Str(name, std::to_string(v)); }
  void Uint(std::string_view name, uint64_t v) { Str(name, std::to_string(v)); }
  void Bool(std::string_view name, bool v) { Str(name, v ? "1" : "0"); }
  void Count(std::string_view name, std::size_t n) { Str(std::string(name) + "#", std::to_string(n)); }
  void StrList(const std::string& name, const std::vector<std::string>& v) {
    Count(name, v.size());
    for (const auto& s : v) Str(name + "[]", s);
  }

 private:
  std::string* out_;
};

const char* ParentKindName(Parent::Kind k) {
  switch (k) {
    case Parent::Kind::kStep: return "step";
    case Parent::Kind::kImage: return "image";
    case Parent::Kind::kScratch: return "scratch";
    case Parent::Kind::kStage: return "stage";
  }
  return "unknown";
}

void EncodePlatform(Encoder& e, const std::string& p, const oci::Platform& pl) {
  e.Str(p + ".os", pl.os);
  e.Str(p + ".architecture", pl.architecture);
  e.Str(p + ".variant", pl.variant);
}

// Every field except: `line`, `end_line` (position in the file), `original`
// (the text before expansion; the expanded fields below carry its meaning) and
// `stage_name` (naming a stage does not change what it builds).
void EncodeInstruction(Encoder& e, const std::string& p, const Instruction& in) {
  e.Str(p + "cmd", dockerfile::CmdName(in.cmd));
  e.StrList(p + "args", in.args);
  e.Bool(p + "prepend_shell", in.prepend_shell);

  e.Count(p + "files", in.files.size());
  for (const auto& h : in.files) {
    e.Str(p + "files[].name", h.name);
    e.Str(p + "files[].content", h.content);
    e.Bool(p + "files[].expand", h.expand);
    e.Bool(p + "files[].chomp", h.chomp);
    e.Int(p + "files[].fd", h.fd);
  }
  e.Count(p + "kvs", in.kvs.size());
  for (const auto& kv : in.kvs) {
    e.Str(p + "kvs[].key", kv.key);
    e.Str(p + "kvs[].value", kv.value);
    e.Bool(p + "kvs[].legacy", kv.legacy);
  }
  e.Count(p + "arg_decls", in.arg_decls.size());
  for (const auto& a : in.arg_decls) {
    e.Str(p + "arg_decls[].name", a.name);
    e.Bool(p + "arg_decls[].has_value", a.value.has_value());
    if (a.value) e.Str(p + "arg_decls[].value", *a.value);
  }

  e.Str(p + "base", in.base);
  e.Str(p + "platform", in.platform);

  // Each --mount spec whole, as written after expansion: every option counts.
  // Secret mounts name an id/target/env/required/mode/uid/gid; their content is
  // never an input.
  e.StrList(p + "mounts", in.mounts);
  e.Str(p + "network", in.network);
  e.Str(p + "security", in.security);

  e.Count(p + "heredoc_sources", in.heredoc_sources.size());
  for (const auto& h : in.heredoc_sources) {
    e.Str(p + "heredoc_sources[].name", h.name);
    e.Str(p + "heredoc_sources[].data", h.data);
    e.Bool(p + "heredoc_sources[].expand", h.expand);
  }
  e.Str(p + "dest", in.dest);
  e.Str(p + "from", in.from);
  e.Str(p + "chown", in.chown);
  e.Str(p + "chmod", in.chmod);
  e.Str(p + "checksum", in.checksum);
  e.Bool(p + "link", in.link);
  e.Bool(p + "parents", in.parents);
  e.Bool(p + "keep_git_dir", in.keep_git_dir);
  e.StrList(p + "excludes", in.excludes);

  e.StrList(p + "health_test", in.health_test);
  e.Int(p + "interval_ns", in.interval_ns);
  e.Int(p + "timeout_ns", in.timeout_ns);
  e.Int(p + "start_period_ns", in.start_period_ns);
  e.Int(p + "start_interval_ns", in.start_interval_ns);
  e.Int(p + "retries", in.retries);

  e.Str(p + "onbuild_expression", in.onbuild_expression);
  e.Bool(p + "sub.present", in.sub != nullptr);
  if (in.sub) EncodeInstruction(e, p + "sub.", *in.sub);
}

}  // namespace

bool IsProxyBuildArg(const std::string& name) {
  static const char* const kProxy[] = {"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
                                       "FTP_PROXY",  "ftp_proxy",  "NO_PROXY",    "no_proxy",
                                       "ALL_PROXY",  "all_proxy"};
  for (const char* p : kProxy)
    if (name == p) return true;
  return false;
}

std::string EncodeForDebug(const StepInputs& in) {
  std::string out = EncodeStep(in);
  Encoder e(&out);
  e.Str("parent.kind", ParentKindName(in.parent.kind));
  e.Str("parent.value", in.parent.value);
  return out;
}

std::string EncodeStep(const StepInputs& in) {
  std::string out;
  Encoder e(&out);
  e.Str("format", kFormatVersion);

  EncodePlatform(e, "target_platform", in.target_platform);
  EncodePlatform(e, "exec_platform", in.exec_platform);

  EncodeInstruction(e, "instruction.", in.instruction);

  // std::map orders names bytewise (char_traits<char> compares as unsigned char).
  std::size_t nargs = 0;
  for (const auto& [k, v] : in.build_args) nargs += IsProxyBuildArg(k) ? 0 : 1;
  e.Count("build_args", nargs);
  for (const auto& [k, v] : in.build_args) {
    if (IsProxyBuildArg(k)) continue;
    e.Str("build_args[].name", k);
    e.Str("build_args[].value", v);
  }

  std::vector<const SourceDigest*> sources;
  for (const auto& s : in.sources) sources.push_back(&s);
  std::sort(sources.begin(), sources.end(), [](const SourceDigest* a, const SourceDigest* b) {
    return std::tie(a->path, a->digest, a->mode, a->uid, a->gid, a->link_target) <
           std::tie(b->path, b->digest, b->mode, b->uid, b->gid, b->link_target);
  });
  e.Count("sources", sources.size());
  for (const SourceDigest* s : sources) {
    e.Str("sources[].path", s->path);
    e.Str("sources[].digest", s->digest.ToString());
    e.Uint("sources[].mode", s->mode);
    e.Uint("sources[].uid", s->uid);
    e.Uint("sources[].gid", s->gid);
    e.Str("sources[].link_target", s->link_target);
  }

  std::vector<const FromInput*> froms;
  for (const auto& f : in.from_inputs) froms.push_back(&f);
  std::sort(froms.begin(), froms.end(), [](const FromInput* a, const FromInput* b) {
    return std::tie(a->ref, a->key) < std::tie(b->ref, b->key);
  });
  e.Count("from_inputs", froms.size());
  for (const FromInput* f : froms) {
    e.Str("from_inputs[].ref", f->ref);
    e.Str("from_inputs[].key", f->key);
  }

  e.Bool("source_date_epoch.set", in.source_date_epoch.has_value());
  if (in.source_date_epoch) e.Int("source_date_epoch", *in.source_date_epoch);
  return out;
}

std::string StepDigest(const StepInputs& in) { return "sha256:" + crypto::Sha256Hex(EncodeStep(in)); }

std::string ChainKey(const Parent& parent, const std::string& step_digest) {
  std::string out;
  Encoder e(&out);
  e.Str("format", kFormatVersion);
  e.Str("chain.parent.kind", ParentKindName(parent.kind));
  e.Str("chain.parent.value", parent.value);
  e.Str("chain.step", step_digest);
  return "sha256:" + crypto::Sha256Hex(out);
}

std::string RefinedKey(const std::string& parent_key, const std::string& step_digest,
                       const std::string& content) {
  std::string out;
  Encoder e(&out);
  e.Str("format", kFormatVersion);
  e.Str("refined.parent", parent_key);
  e.Str("refined.step", step_digest);
  e.Str("refined.content", content);
  return "sha256:" + crypto::Sha256Hex(out);
}

std::string ComputeKey(const StepInputs& in) { return ChainKey(in.parent, StepDigest(in)); }

}  // namespace manifold::cache
