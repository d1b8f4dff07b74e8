// Field-level helpers shared by the wire codecs (stage_job.cc, cluster.cc):
// bounds checks that name the offending field ("StageJob.platform: ..."),
// capnp text/data/digest/platform readers and writers, and errors and layers
// on the wire. Internal to common/wire.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <capnp/list.h>
#include <kj/string.h>

#include "common/base/error.h"
#include "common/base/expected.h"
#include "common/oci/digest.h"
#include "common/oci/platform.h"
#include "common/wire/stage_job.h"
#include "schemas/common.capnp.h"
#include "schemas/scheduler.capnp.h"

namespace manifold::wire::fields {

Error FieldError(const std::string& field, std::string what);
Error LimitError(const std::string& field, std::size_t got, std::size_t max);
/// kSecurity "wire.id" unless `id` matches [A-Za-z0-9_-]{1,64}.
Expected<void> CheckId(const std::string& field, std::string_view id);
Expected<void> CheckText(const std::string& field, std::size_t size);
Expected<void> CheckList(const std::string& field, std::size_t size,
                         std::size_t max = kMaxListEntries);
Expected<oci::Platform> CheckPlatform(const std::string& field, const oci::Platform& p);
Expected<oci::Digest> CheckDigest(const std::string& field, std::string_view s);
/// A CURVE key in Z85. Errors: "wire.field" "<at>: not a 40-character Z85 key".
Expected<void> CheckKey(const std::string& at, const std::string& key);
/// "" or tcp://... (at most 300 bytes). Errors: "wire.field".
Expected<void> CheckEndpoint(const std::string& at, const std::string& endpoint);
/// "field[i]".
std::string Idx(const std::string& field, std::size_t i);

kj::StringPtr Kj(const std::string& s);
capnp::Data::Reader KjData(const std::string& s);
Expected<void> FillTexts(const std::string& field, const std::vector<std::string>& in,
                         capnp::List<capnp::Text>::Builder out);
void SetDigest(schema::Digest::Builder b, const oci::Digest& d);
void SetPlatform(schema::Platform::Builder b, const oci::Platform& p);
Expected<std::uint32_t> ToU32(const std::string& field, long long v);

Expected<std::string> ReadText(const std::string& field, capnp::Text::Reader t);
Expected<std::string> ReadData(const std::string& field, capnp::Data::Reader d);
Expected<std::vector<std::string>> ReadTexts(const std::string& field,
                                             capnp::List<capnp::Text>::Reader list,
                                             std::size_t max = kMaxListEntries);
Expected<oci::Platform> ReadPlatform(const std::string& field, bool present,
                                     schema::Platform::Reader r);
/// "" when unset; else the validated "algorithm:encoded".
Expected<std::string> ReadDigest(const std::string& field, bool present,
                                 schema::Digest::Reader r);

Expected<void> WriteError(const std::string& at, const Error& e, schema::Error::Builder b);
ErrorKind KindFromWire(schema::ErrorKind k);
/// Fills `e` (Expected<Error> would be ambiguous: an Error is also its error type).
Expected<void> ReadError(const std::string& at, schema::Error::Reader r, Error& e);
Expected<void> WriteLayer(const std::string& at, const LayerData& l, schema::Layer::Builder b);
Expected<LayerData> ReadLayer(const std::string& at, schema::Layer::Reader r);

/// kSecurity "wire.path" unless `path` is relative, without empty, "." or
/// ".." components and NUL: "<at>: \"p\" is not a clean relative path".
Expected<void> CheckContextPath(const std::string& at, const std::string& path);
Expected<void> WriteContextFile(const std::string& at, const ContextFileData& f,
                                schema::ContextFile::Builder b);
Expected<ContextFileData> ReadContextFile(const std::string& at, schema::ContextFile::Reader r);

}  // namespace manifold::wire::fields
