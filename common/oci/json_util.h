// Internal to common/oci: the one JSON door for untrusted documents (size, nesting
// and duplicate-key limits), typed field readers with exact error messages, and
// canonical writing. Not for use outside this folder: public headers stay free of
// nlohmann_json.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/base/expected.h"
#include "common/oci/digest.h"

namespace manifold::oci {

struct Descriptor;

namespace detail {

using Json = nlohmann::json;                 // reading: members sorted, order irrelevant
using OrderedJson = nlohmann::ordered_json;  // writing: insertion order is the canonical order

/// Manifests, indexes and configs: containerd-style cap (RELIABILITY.md 3.3).
inline constexpr std::size_t kMaxDocumentBytes = std::size_t{4} << 20;
/// Deepest real document: config.Healthcheck.Test[] (4 levels). Bounded so that a
/// "[[[[..." bomb is refused before any tree is built.
inline constexpr int kMaxDepth = 32;

/// Parses an untrusted document `what` ("manifest", "image index", ...): at most
/// kMaxDocumentBytes (kInvalidInput "oci.too_large"), kMaxDepth nesting
/// ("oci.too_deep"), valid UTF-8 JSON ("oci.invalid_json"), no duplicate keys
/// ("oci.duplicate_key": parsers disagree on which one wins), an object at the top
/// ("oci.invalid_json").
Expected<Json> ParseDocument(std::string_view bytes, std::string_view what);

/// Where a field sits, for messages: doc "manifest", path "layers[2].digest".
struct Where {
  std::string_view doc;
  std::string path;

  Where Key(std::string_view key) const;
  Where Index(std::size_t i) const;
};

/// kInvalidInput "oci.invalid": `<doc>: "<path>" must be <what>`.
Error Invalid(const Where& w, std::string_view must_be);
/// kInvalidInput "oci.invalid": `<doc>: "<path>" is required`.
Error Missing(const Where& w);

/// The member `key` of object `obj`, or nullptr when absent or JSON null (Docker
/// writes `"Cmd": null` for "not set").
const Json* Member(const Json& obj, std::string_view key);

// Readers: an absent or null member yields the empty value (or nullopt); a member of
// the wrong type is an Invalid() error.
Expected<std::string> ReadString(const Json& obj, std::string_view key, const Where& w);
Expected<std::optional<std::string>> ReadOptString(const Json& obj, std::string_view key,
                                                   const Where& w);
Expected<std::vector<std::string>> ReadStrings(const Json& obj, std::string_view key,
                                               const Where& w);
Expected<std::optional<std::vector<std::string>>> ReadOptStrings(const Json& obj,
                                                                 std::string_view key,
                                                                 const Where& w);
Expected<std::map<std::string, std::string>> ReadStringMap(const Json& obj, std::string_view key,
                                                           const Where& w);
/// An object used as a set (`{"80/tcp": {}}`): its keys; values are ignored.
Expected<std::set<std::string>> ReadKeySet(const Json& obj, std::string_view key, const Where& w);
/// An integer in [0, INT64_MAX]; floats ("1.0", "1e3") are refused.
Expected<std::int64_t> ReadNonNegative(const Json& obj, std::string_view key, const Where& w);
Expected<bool> ReadBool(const Json& obj, std::string_view key, const Where& w);
/// ParseDigest(s) with the error message prefixed by `<doc>: "<path>": `.
Expected<Digest> DigestAt(std::string_view s, const Where& w);
/// A required digest string, validated by ParseDigest (its code and kind are kept).
Expected<Digest> ReadDigest(const Json& obj, std::string_view key, const Where& w);
/// schemaVersion must be present and equal to 2.
Expected<void> CheckSchemaVersion2(const Json& doc, std::string_view what);

/// Refuses what neither ParseManifest nor ParseIndex may accept: documents with both
/// `manifests` and `layers`/`config` (CVE-2021-41190, kInvalidInput "oci.ambiguous")
/// and Docker schema1 (kUnimplemented "oci.schema1").
Expected<void> CheckNotAmbiguousOrSchema1(const Json& doc, std::string_view what);

// Writers, in the caller's key order; empty values are omitted.
void PutString(OrderedJson& j, const char* key, const std::string& v);
void PutStrings(OrderedJson& j, const char* key, const std::vector<std::string>& v);
void PutStringMap(OrderedJson& j, const char* key, const std::map<std::string, std::string>& v);
void PutKeySet(OrderedJson& j, const char* key, const std::set<std::string>& v);
/// Compact (no whitespace), UTF-8 kept; invalid UTF-8 in caller-built values is
/// replaced by U+FFFD rather than thrown (deterministically, so digests stay stable).
std::string Dump(const OrderedJson& j);

// Descriptor <-> JSON object, shared by manifests and indexes (defined in descriptor.cc).
Expected<Descriptor> DescriptorFromJson(const Json& j, const Where& w);
OrderedJson DescriptorToJson(const Descriptor& d);

}  // namespace detail
}  // namespace manifold::oci
