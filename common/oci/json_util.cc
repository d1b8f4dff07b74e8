#include "common/oci/json_util.h"

#include <limits>

#include "common/oci/media_types.h"
#include "common/oci/quote.h"

namespace manifold::oci::detail {

namespace {

Error BadJson(std::string_view what, std::string code, std::string why) {
  return MakeError(ErrorKind::kInvalidInput, std::move(code), std::string(what) + " " + why);
}

// Counts bracket nesting outside strings before nlohmann builds anything, so a
// 4 MiB "[[[[..." cannot cost gigabytes of nodes. Malformed input is left to the parser.
bool NestsDeeperThan(std::string_view bytes, int max_depth) {
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : bytes) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return true;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return false;
}

bool HasNonNull(const Json& doc, std::string_view key) { return Member(doc, key) != nullptr; }

}  // namespace

Expected<Json> ParseDocument(std::string_view bytes, std::string_view what) {
  if (bytes.size() > kMaxDocumentBytes)
    return BadJson(what, "oci.too_large",
                   "is " + std::to_string(bytes.size()) + " bytes, over the 4 MiB (" +
                       std::to_string(kMaxDocumentBytes) + " bytes) limit");
  if (NestsDeeperThan(bytes, kMaxDepth))
    return BadJson(what, "oci.too_deep",
                   "nests deeper than " + std::to_string(kMaxDepth) + " levels");
  std::vector<std::set<std::string>> open_objects;
  std::optional<std::string> duplicate;
  auto on_event = [&open_objects, &duplicate](int /*depth*/, Json::parse_event_t event,
                                              Json& parsed) {
    if (event == Json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == Json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == Json::parse_event_t::key && !open_objects.empty()) {
      const auto& key = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(key).second && !duplicate) duplicate = key;
    }
    return true;
  };
  Json doc;
  try {
    doc = Json::parse(bytes.begin(), bytes.end(), on_event);
  } catch (const Json::parse_error& e) {
    return BadJson(what, "oci.invalid_json",
                   "is not valid JSON (error at byte " + std::to_string(e.byte) + ")");
  } catch (const Json::exception&) {
    return BadJson(what, "oci.invalid_json", "is not valid JSON");
  }
  // Go keeps the last duplicate, other parsers the first: refuse rather than guess
  // which one a registry or another client acted on.
  if (duplicate)
    return BadJson(what, "oci.duplicate_key", "has duplicate key " + QuoteForMessage(*duplicate));
  if (!doc.is_object()) return BadJson(what, "oci.invalid_json", "is not a JSON object");
  return doc;
}

Where Where::Key(std::string_view key) const {
  return Where{doc, path.empty() ? std::string(key) : path + "." + std::string(key)};
}

Where Where::Index(std::size_t i) const {
  return Where{doc, path + "[" + std::to_string(i) + "]"};
}

Error Invalid(const Where& w, std::string_view must_be) {
  return MakeError(ErrorKind::kInvalidInput, "oci.invalid",
                   std::string(w.doc) + ": \"" + w.path + "\" must be " + std::string(must_be));
}

Error Missing(const Where& w) {
  return MakeError(ErrorKind::kInvalidInput, "oci.invalid",
                   std::string(w.doc) + ": \"" + w.path + "\" is required");
}

const Json* Member(const Json& obj, std::string_view key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

Expected<std::string> ReadString(const Json& obj, std::string_view key, const Where& w) {
  MF_TRY(s, ReadOptString(obj, key, w));
  return s ? std::move(*s) : std::string();
}

Expected<std::optional<std::string>> ReadOptString(const Json& obj, std::string_view key,
                                                   const Where& w) {
  const Json* v = Member(obj, key);
  if (!v) return std::optional<std::string>();
  if (!v->is_string()) return Invalid(w.Key(key), "a string");
  return std::optional<std::string>(v->get_ref<const std::string&>());
}

Expected<std::vector<std::string>> ReadStrings(const Json& obj, std::string_view key,
                                               const Where& w) {
  MF_TRY(list, ReadOptStrings(obj, key, w));
  return list ? std::move(*list) : std::vector<std::string>();
}

Expected<std::optional<std::vector<std::string>>> ReadOptStrings(const Json& obj,
                                                                 std::string_view key,
                                                                 const Where& w) {
  const Json* v = Member(obj, key);
  if (!v) return std::optional<std::vector<std::string>>();
  if (!v->is_array()) return Invalid(w.Key(key), "an array of strings");
  std::vector<std::string> out;
  out.reserve(v->size());
  for (const auto& item : *v) {
    if (!item.is_string()) return Invalid(w.Key(key).Index(out.size()), "a string");
    out.push_back(item.get_ref<const std::string&>());
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

Expected<std::map<std::string, std::string>> ReadStringMap(const Json& obj, std::string_view key,
                                                           const Where& w) {
  std::map<std::string, std::string> out;
  const Json* v = Member(obj, key);
  if (!v) return out;
  if (!v->is_object()) return Invalid(w.Key(key), "an object of strings");
  for (auto it = v->begin(); it != v->end(); ++it) {
    if (!it->is_string()) return Invalid(w.Key(key).Key(it.key()), "a string");
    out.emplace(it.key(), it->get_ref<const std::string&>());
  }
  return out;
}

Expected<std::set<std::string>> ReadKeySet(const Json& obj, std::string_view key, const Where& w) {
  std::set<std::string> out;
  const Json* v = Member(obj, key);
  if (!v) return out;
  if (!v->is_object()) return Invalid(w.Key(key), "an object");
  for (auto it = v->begin(); it != v->end(); ++it) out.insert(it.key());
  return out;
}

Expected<std::int64_t> ReadNonNegative(const Json& obj, std::string_view key, const Where& w) {
  const Json* v = Member(obj, key);
  if (!v) return std::int64_t{0};
  constexpr auto kMax = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (v->is_number_unsigned() && v->get<std::uint64_t>() <= kMax)
    return static_cast<std::int64_t>(v->get<std::uint64_t>());
  return Invalid(w.Key(key), "a non-negative integer");
}

Expected<bool> ReadBool(const Json& obj, std::string_view key, const Where& w) {
  const Json* v = Member(obj, key);
  if (!v) return false;
  if (!v->is_boolean()) return Invalid(w.Key(key), "a boolean");
  return v->get<bool>();
}

Expected<Digest> ReadDigest(const Json& obj, std::string_view key, const Where& w) {
  const Json* v = Member(obj, key);
  if (!v) return Missing(w.Key(key));
  if (!v->is_string()) return Invalid(w.Key(key), "a string");
  return DigestAt(v->get_ref<const std::string&>(), w.Key(key));
}

Expected<Digest> DigestAt(std::string_view s, const Where& w) {
  auto d = ParseDigest(s);
  if (d.ok()) return d;
  Error e = std::move(d).error();
  e.message = std::string(w.doc) + ": \"" + w.path + "\": " + e.message;
  return e;
}

Expected<void> CheckSchemaVersion2(const Json& doc, std::string_view what) {
  const Json* v = Member(doc, "schemaVersion");
  Where w{what, "schemaVersion"};
  if (!v) return Missing(w);
  if (!v->is_number_unsigned() || v->get<std::uint64_t>() != 2) return Invalid(w, "2");
  return Ok();
}

Expected<void> CheckNotAmbiguousOrSchema1(const Json& doc, std::string_view what) {
  if (HasNonNull(doc, "manifests") && (HasNonNull(doc, "layers") || HasNonNull(doc, "config")))
    return MakeError(ErrorKind::kInvalidInput, "oci.ambiguous",
                     std::string(what) +
                         " is ambiguous: it has both \"manifests\" and \"layers\" or \"config\""
                         " (CVE-2021-41190)");
  const Json* media_type = Member(doc, "mediaType");
  const Json* version = Member(doc, "schemaVersion");
  bool schema1 = (media_type && media_type->is_string() &&
                  IsDockerSchema1(media_type->get_ref<const std::string&>())) ||
                 (version && version->is_number_unsigned() && version->get<std::uint64_t>() == 1);
  if (schema1)
    return MakeError(ErrorKind::kUnimplemented, "oci.schema1",
                     "Docker schema1 manifests are not supported: rebuild the image and push it "
                     "as Docker schema2 or OCI");
  return Ok();
}

void PutString(OrderedJson& j, const char* key, const std::string& v) {
  if (!v.empty()) j[key] = v;
}

void PutStrings(OrderedJson& j, const char* key, const std::vector<std::string>& v) {
  if (!v.empty()) j[key] = v;
}

void PutStringMap(OrderedJson& j, const char* key, const std::map<std::string, std::string>& v) {
  if (v.empty()) return;
  OrderedJson m = OrderedJson::object();
  for (const auto& [k, val] : v) m[k] = val;  // std::map order: sorted, as Go writes maps
  j[key] = std::move(m);
}

void PutKeySet(OrderedJson& j, const char* key, const std::set<std::string>& v) {
  if (v.empty()) return;
  OrderedJson m = OrderedJson::object();
  for (const auto& k : v) m[k] = OrderedJson::object();
  j[key] = std::move(m);
}

std::string Dump(const OrderedJson& j) {
  return j.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

}  // namespace manifold::oci::detail
