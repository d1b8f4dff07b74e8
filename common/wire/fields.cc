#include "common/wire/fields.h"

#include <limits>

namespace manifold::wire::fields {

Error FieldError(const std::string& field, std::string what) {
  return MakeError(ErrorKind::kInvalidInput, "wire.field", field + ": " + std::move(what));
}

Error LimitError(const std::string& field, std::size_t got, std::size_t max) {
  return MakeError(ErrorKind::kInvalidInput, "wire.limit",
                   field + ": " + std::to_string(got) + " exceeds the limit of " +
                       std::to_string(max));
}

Expected<void> CheckId(const std::string& field, std::string_view id) {
  if (IsValidWireId(id)) return Ok();
  std::string shown(id.substr(0, 80));
  for (char& c : shown)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e) c = '?';
  return MakeError(ErrorKind::kSecurity, "wire.id",
                   field + ": \"" + shown + "\" is not a valid id ([A-Za-z0-9_-]{1,64})");
}

Expected<void> CheckText(const std::string& field, std::size_t size) {
  if (size > kMaxTextBytes) return LimitError(field, size, kMaxTextBytes);
  return Ok();
}

Expected<void> CheckList(const std::string& field, std::size_t size,
                         std::size_t max) {
  if (size > max) return LimitError(field, size, max);
  return Ok();
}

Expected<oci::Platform> CheckPlatform(const std::string& field, const oci::Platform& p) {
  std::string spec = p.os + "/" + p.architecture;
  if (!p.variant.empty()) spec += "/" + p.variant;
  auto parsed = oci::ParsePlatform(spec);
  if (!parsed.ok())
    return MakeError(ErrorKind::kInvalidInput, "wire.platform",
                     field + ": " + parsed.error().message);
  return std::move(parsed).value();
}

Expected<oci::Digest> CheckDigest(const std::string& field, std::string_view s) {
  auto parsed = oci::ParseDigest(s);
  if (!parsed.ok())
    return MakeError(ErrorKind::kInvalidInput, "wire.digest",
                     field + ": " + parsed.error().message);
  return std::move(parsed).value();
}

Expected<void> CheckKey(const std::string& at, const std::string& key) {
  if (!IsZ85Key(key)) return FieldError(at, "not a 40-character Z85 key");
  return Ok();
}

Expected<void> CheckEndpoint(const std::string& at, const std::string& endpoint) {
  if (endpoint.empty()) return Ok();
  if (!endpoint.starts_with("tcp://") || endpoint.size() > 300) return FieldError(at, "not a tcp:// endpoint");
  return Ok();
}

std::string Idx(const std::string& field, std::size_t i) {
  return field + "[" + std::to_string(i) + "]";
}

// ---------------------------------------------------------------- writing

kj::StringPtr Kj(const std::string& s) { return kj::StringPtr(s.c_str(), s.size()); }

capnp::Data::Reader KjData(const std::string& s) {
  return capnp::Data::Reader(reinterpret_cast<const kj::byte*>(s.data()), s.size());
}

Expected<void> FillTexts(const std::string& field, const std::vector<std::string>& in,
                         capnp::List<capnp::Text>::Builder out) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    MF_TRY_VOID(CheckText(Idx(field, i), in[i].size()));
    out.set(static_cast<unsigned>(i), Kj(in[i]));
  }
  return Ok();
}

void SetDigest(schema::Digest::Builder b, const oci::Digest& d) {
  b.setAlgorithm(Kj(d.algorithm));
  b.setEncoded(Kj(d.hex));
}

void SetPlatform(schema::Platform::Builder b, const oci::Platform& p) {
  b.setOs(Kj(p.os));
  b.setArchitecture(Kj(p.architecture));
  b.setVariant(Kj(p.variant));
}

Expected<std::uint32_t> ToU32(const std::string& field, long long v) {
  if (v < 0 || v > std::numeric_limits<std::uint32_t>::max())
    return FieldError(field, "out of range: " + std::to_string(v));
  return static_cast<std::uint32_t>(v);
}


Expected<std::string> ReadText(const std::string& field, capnp::Text::Reader t) {
  MF_TRY_VOID(CheckText(field, t.size()));
  return std::string(t.begin(), t.size());
}

Expected<std::string> ReadData(const std::string& field, capnp::Data::Reader d) {
  MF_TRY_VOID(CheckText(field, d.size()));
  return std::string(reinterpret_cast<const char*>(d.begin()), d.size());
}

Expected<std::vector<std::string>> ReadTexts(const std::string& field,
                                             capnp::List<capnp::Text>::Reader list,
                                             std::size_t max) {
  MF_TRY_VOID(CheckList(field, list.size(), max));
  std::vector<std::string> out;
  out.reserve(list.size());
  for (unsigned i = 0; i < list.size(); ++i) {
    MF_TRY(s, ReadText(Idx(field, i), list[i]));
    out.push_back(std::move(s));
  }
  return out;
}

Expected<oci::Platform> ReadPlatform(const std::string& field, bool present,
                                     schema::Platform::Reader r) {
  if (!present) return MakeError(ErrorKind::kInvalidInput, "wire.platform", field + ": missing");
  oci::Platform p;
  MF_TRY(os, ReadText(field + ".os", r.getOs()));
  MF_TRY(arch, ReadText(field + ".architecture", r.getArchitecture()));
  MF_TRY(variant, ReadText(field + ".variant", r.getVariant()));
  p.os = std::move(os);
  p.architecture = std::move(arch);
  p.variant = std::move(variant);
  return CheckPlatform(field, p);
}

// "" when unset; else the validated "algorithm:encoded".
Expected<std::string> ReadDigest(const std::string& field, bool present,
                                 schema::Digest::Reader r) {
  if (!present) return std::string();
  MF_TRY(alg, ReadText(field + ".algorithm", r.getAlgorithm()));
  MF_TRY(enc, ReadText(field + ".encoded", r.getEncoded()));
  MF_TRY(d, CheckDigest(field, alg + ":" + enc));
  return d.ToString();
}


Expected<void> WriteError(const std::string& at, const Error& e, schema::Error::Builder b) {
  b.setKind(static_cast<schema::ErrorKind>(static_cast<std::uint16_t>(e.kind)));
  MF_TRY_VOID(CheckText(at + ".code", e.code.size()));
  MF_TRY_VOID(CheckText(at + ".message", e.message.size()));
  MF_TRY_VOID(CheckText(at + ".detail", e.detail.size()));
  b.setCode(Kj(e.code));
  b.setMessage(Kj(e.message));
  b.setDetail(Kj(e.detail));
  MF_TRY_VOID(CheckList(at + ".context", e.context.size()));
  MF_TRY_VOID(FillTexts(at + ".context", e.context,
                        b.initContext(static_cast<unsigned>(e.context.size()))));
  if (e.where) {
    MF_TRY_VOID(CheckText(at + ".where.file", e.where->file.size()));
    MF_TRY(line, ToU32(at + ".where.line", e.where->line));
    MF_TRY(column, ToU32(at + ".where.column", e.where->column));
    MF_TRY(end_line, ToU32(at + ".where.endLine", e.where->end_line));
    auto w = b.initWhere();
    w.setFile(Kj(e.where->file));
    w.setLine(line);
    w.setColumn(column);
    w.setEndLine(end_line);
  }
  return Ok();
}

ErrorKind KindFromWire(schema::ErrorKind k) {
  switch (k) {
    case schema::ErrorKind::INVALID_INPUT: return ErrorKind::kInvalidInput;
    case schema::ErrorKind::INTEGRITY: return ErrorKind::kIntegrity;
    case schema::ErrorKind::SECURITY: return ErrorKind::kSecurity;
    case schema::ErrorKind::TRANSIENT: return ErrorKind::kTransient;
    case schema::ErrorKind::DISCONNECTED: return ErrorKind::kDisconnected;
    case schema::ErrorKind::RESOURCE_EXHAUSTED: return ErrorKind::kResourceExhausted;
    case schema::ErrorKind::UNIMPLEMENTED: return ErrorKind::kUnimplemented;
    case schema::ErrorKind::INTERNAL: return ErrorKind::kInternal;
  }
  return ErrorKind::kInternal;  // a kind added by a newer peer
}

// Fills `e` (Expected<Error> would be ambiguous: an Error is also its error type).
Expected<void> ReadError(const std::string& at, schema::Error::Reader r, Error& e) {
  e.kind = KindFromWire(r.getKind());
  MF_TRY(code, ReadText(at + ".code", r.getCode()));
  MF_TRY(message, ReadText(at + ".message", r.getMessage()));
  MF_TRY(detail, ReadText(at + ".detail", r.getDetail()));
  MF_TRY(context, ReadTexts(at + ".context", r.getContext()));
  e.code = std::move(code);
  e.message = std::move(message);
  e.detail = std::move(detail);
  e.context = std::move(context);
  if (r.hasWhere()) {
    auto w = r.getWhere();
    constexpr auto kIntMax = static_cast<std::uint32_t>(std::numeric_limits<int>::max());
    if (w.getLine() > kIntMax || w.getColumn() > kIntMax || w.getEndLine() > kIntMax)
      return FieldError(at + ".where", "out of range");
    MF_TRY(file, ReadText(at + ".where.file", w.getFile()));
    e.where = SourceRange{std::move(file), static_cast<int>(w.getLine()),
                          static_cast<int>(w.getColumn()), static_cast<int>(w.getEndLine())};
  }
  return Ok();
}

Expected<void> WriteLayer(const std::string& at, const LayerData& l, schema::Layer::Builder b) {
  MF_TRY_VOID(CheckText(at + ".mediaType", l.media_type.size()));
  if (l.media_type.empty()) return FieldError(at + ".mediaType", "empty");
  MF_TRY(digest, CheckDigest(at + ".digest", l.digest));
  MF_TRY(diff_id, CheckDigest(at + ".diffId", l.diff_id));
  auto d = b.initDescriptor();
  d.setMediaType(Kj(l.media_type));
  d.setSize(l.size);
  SetDigest(d.initDigest(), digest);
  SetDigest(b.initDiffId(), diff_id);
  return Ok();
}

Expected<LayerData> ReadLayer(const std::string& at, schema::Layer::Reader r) {
  if (!r.hasDescriptor()) return FieldError(at + ".descriptor", "missing");
  auto d = r.getDescriptor();
  LayerData l;
  MF_TRY(media_type, ReadText(at + ".mediaType", d.getMediaType()));
  if (media_type.empty()) return FieldError(at + ".mediaType", "empty");
  MF_TRY(digest, ReadDigest(at + ".digest", d.hasDigest(), d.getDigest()));
  MF_TRY(diff_id, ReadDigest(at + ".diffId", r.hasDiffId(), r.getDiffId()));
  if (digest.empty()) return MakeError(ErrorKind::kInvalidInput, "wire.digest", at + ".digest: missing");
  if (diff_id.empty()) return MakeError(ErrorKind::kInvalidInput, "wire.digest", at + ".diffId: missing");
  l.media_type = std::move(media_type);
  l.digest = std::move(digest);
  l.diff_id = std::move(diff_id);
  l.size = d.getSize();
  return l;
}

Expected<void> CheckContextPath(const std::string& at, const std::string& path) {
  MF_TRY_VOID(CheckText(at, path.size()));
  bool bad = path.empty() || path.front() == '/' || path.find('\0') != std::string::npos;
  std::size_t start = 0;
  while (!bad && start <= path.size()) {
    auto end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view part(path.data() + start, end - start);
    bad = part.empty() || part == "." || part == "..";
    start = end + 1;
  }
  if (bad)
    return MakeError(ErrorKind::kSecurity, "wire.path",
                     at + ": \"" + path.substr(0, 80) + "\" is not a clean relative path");
  return Ok();
}

Expected<void> WriteContextFile(const std::string& at, const ContextFileData& f,
                                schema::ContextFile::Builder b) {
  MF_TRY_VOID(CheckContextPath(at + ".path", f.path));
  if (!f.digest.empty()) MF_TRY_VOID(CheckDigest(at + ".digest", f.digest));
  MF_TRY_VOID(CheckText(at + ".linkTarget", f.link_target.size()));
  b.setPath(Kj(f.path));
  b.setMode(f.mode);
  b.setUid(f.uid);
  b.setGid(f.gid);
  b.setSize(f.size);
  b.setDigest(Kj(f.digest));
  b.setLinkTarget(Kj(f.link_target));
  b.setMtimeNs(f.mtime_ns);
  return Ok();
}

Expected<ContextFileData> ReadContextFile(const std::string& at, schema::ContextFile::Reader r) {
  ContextFileData f;
  MF_TRY(path, ReadText(at + ".path", r.getPath()));
  MF_TRY_VOID(CheckContextPath(at + ".path", path));
  MF_TRY(digest, ReadText(at + ".digest", r.getDigest()));
  if (!digest.empty()) MF_TRY_VOID(CheckDigest(at + ".digest", digest));
  MF_TRY(link, ReadText(at + ".linkTarget", r.getLinkTarget()));
  f.path = std::move(path);
  f.mode = r.getMode();
  f.uid = r.getUid();
  f.gid = r.getGid();
  f.size = r.getSize();
  f.digest = std::move(digest);
  f.link_target = std::move(link);
  f.mtime_ns = r.getMtimeNs();
  return f;
}

}  // namespace manifold::wire::fields
