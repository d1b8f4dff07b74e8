#include "common/oci/image_config.h"

#include "common/oci/json_util.h"

namespace manifold::oci {

namespace {

using detail::Json;
using detail::Member;
using detail::OrderedJson;
using detail::Where;

constexpr std::string_view kWhat = "image config";

static_assert(kMaxConfigBytes == detail::kMaxDocumentBytes);

Expected<std::optional<HealthCheck>> ReadHealthCheck(const Json& obj, const Where& w) {
  const Json* h = Member(obj, "Healthcheck");
  if (!h) return std::optional<HealthCheck>();
  Where hw = w.Key("Healthcheck");
  if (!h->is_object()) return detail::Invalid(hw, "an object");
  HealthCheck out;
  MF_TRY(test, detail::ReadStrings(*h, "Test", hw));
  MF_TRY(interval, detail::ReadNonNegative(*h, "Interval", hw));
  MF_TRY(timeout, detail::ReadNonNegative(*h, "Timeout", hw));
  MF_TRY(start_period, detail::ReadNonNegative(*h, "StartPeriod", hw));
  MF_TRY(start_interval, detail::ReadNonNegative(*h, "StartInterval", hw));
  MF_TRY(retries, detail::ReadNonNegative(*h, "Retries", hw));
  out.test = std::move(test);
  out.interval_ns = interval;
  out.timeout_ns = timeout;
  out.start_period_ns = start_period;
  out.start_interval_ns = start_interval;
  out.retries = retries;
  return std::optional<HealthCheck>(std::move(out));
}

Expected<ExecConfig> ReadExecConfig(const Json& doc) {
  ExecConfig c;
  const Json* obj = Member(doc, "config");
  if (!obj) return c;
  Where w{kWhat, "config"};
  if (!obj->is_object()) return detail::Invalid(w, "an object");
  MF_TRY(user, detail::ReadString(*obj, "User", w));
  MF_TRY(exposed_ports, detail::ReadKeySet(*obj, "ExposedPorts", w));
  MF_TRY(env, detail::ReadStrings(*obj, "Env", w));
  MF_TRY(entrypoint, detail::ReadOptStrings(*obj, "Entrypoint", w));
  MF_TRY(cmd, detail::ReadOptStrings(*obj, "Cmd", w));
  MF_TRY(volumes, detail::ReadKeySet(*obj, "Volumes", w));
  MF_TRY(working_dir, detail::ReadString(*obj, "WorkingDir", w));
  MF_TRY(labels, detail::ReadStringMap(*obj, "Labels", w));
  MF_TRY(stop_signal, detail::ReadString(*obj, "StopSignal", w));
  MF_TRY(args_escaped, detail::ReadBool(*obj, "ArgsEscaped", w));
  MF_TRY(healthcheck, ReadHealthCheck(*obj, w));
  MF_TRY(on_build, detail::ReadStrings(*obj, "OnBuild", w));
  MF_TRY(shell, detail::ReadStrings(*obj, "Shell", w));
  c.user = std::move(user);
  c.exposed_ports = std::move(exposed_ports);
  c.env = std::move(env);
  c.entrypoint = std::move(entrypoint);
  c.cmd = std::move(cmd);
  c.volumes = std::move(volumes);
  c.working_dir = std::move(working_dir);
  c.labels = std::move(labels);
  c.stop_signal = std::move(stop_signal);
  c.args_escaped = args_escaped;
  c.healthcheck = std::move(healthcheck);
  c.on_build = std::move(on_build);
  c.shell = std::move(shell);
  return c;
}

Expected<RootFs> ReadRootFs(const Json& doc) {
  Where w{kWhat, "rootfs"};
  const Json* obj = Member(doc, "rootfs");
  if (!obj) return detail::Missing(w);
  if (!obj->is_object()) return detail::Invalid(w, "an object");
  MF_TRY(type, detail::ReadString(*obj, "type", w));
  // image-spec: implementations MUST error on a type other than "layers".
  if (type != "layers") return detail::Invalid(w.Key("type"), "\"layers\"");
  RootFs out;
  const Json* ids = Member(*obj, "diff_ids");
  if (!ids) return out;
  if (!ids->is_array()) return detail::Invalid(w.Key("diff_ids"), "an array");
  out.diff_ids.reserve(ids->size());
  for (const auto& id : *ids) {
    Where iw = w.Key("diff_ids").Index(out.diff_ids.size());
    if (!id.is_string()) return detail::Invalid(iw, "a string");
    MF_TRY(d, detail::DigestAt(id.get_ref<const std::string&>(), iw));
    out.diff_ids.push_back(std::move(d));
  }
  return out;
}

Expected<std::vector<HistoryEntry>> ReadHistory(const Json& doc) {
  std::vector<HistoryEntry> out;
  const Json* list = Member(doc, "history");
  if (!list) return out;
  Where w{kWhat, "history"};
  if (!list->is_array()) return detail::Invalid(w, "an array");
  out.reserve(list->size());
  for (const auto& item : *list) {
    Where iw = w.Index(out.size());
    if (!item.is_object()) return detail::Invalid(iw, "an object");
    MF_TRY(created, detail::ReadOptString(item, "created", iw));
    MF_TRY(created_by, detail::ReadString(item, "created_by", iw));
    MF_TRY(author, detail::ReadString(item, "author", iw));
    MF_TRY(comment, detail::ReadString(item, "comment", iw));
    MF_TRY(empty_layer, detail::ReadBool(item, "empty_layer", iw));
    out.push_back(HistoryEntry{std::move(created), std::move(created_by), std::move(author),
                               std::move(comment), empty_layer});
  }
  return out;
}

OrderedJson ExecConfigToJson(const ExecConfig& c) {
  OrderedJson j = OrderedJson::object();
  detail::PutString(j, "User", c.user);
  detail::PutKeySet(j, "ExposedPorts", c.exposed_ports);
  detail::PutStrings(j, "Env", c.env);
  if (c.entrypoint) j["Entrypoint"] = *c.entrypoint;
  if (c.cmd) j["Cmd"] = *c.cmd;
  detail::PutKeySet(j, "Volumes", c.volumes);
  detail::PutString(j, "WorkingDir", c.working_dir);
  detail::PutStringMap(j, "Labels", c.labels);
  detail::PutString(j, "StopSignal", c.stop_signal);
  if (c.args_escaped) j["ArgsEscaped"] = true;
  if (c.healthcheck) {
    const HealthCheck& h = *c.healthcheck;
    OrderedJson hj = OrderedJson::object();
    detail::PutStrings(hj, "Test", h.test);
    if (h.interval_ns) hj["Interval"] = h.interval_ns;
    if (h.timeout_ns) hj["Timeout"] = h.timeout_ns;
    if (h.start_period_ns) hj["StartPeriod"] = h.start_period_ns;
    if (h.start_interval_ns) hj["StartInterval"] = h.start_interval_ns;
    if (h.retries) hj["Retries"] = h.retries;
    j["Healthcheck"] = std::move(hj);
  }
  detail::PutStrings(j, "OnBuild", c.on_build);
  detail::PutStrings(j, "Shell", c.shell);
  return j;
}

}  // namespace

Expected<ImageConfig> ParseImageConfig(std::string_view bytes) {
  MF_TRY(doc, detail::ParseDocument(bytes, kWhat));
  Where w{kWhat, ""};
  ImageConfig c;
  MF_TRY(created, detail::ReadOptString(doc, "created", w));
  MF_TRY(author, detail::ReadString(doc, "author", w));
  MF_TRY(architecture, detail::ReadString(doc, "architecture", w));
  MF_TRY(os, detail::ReadString(doc, "os", w));
  MF_TRY(variant, detail::ReadString(doc, "variant", w));
  MF_TRY(config, ReadExecConfig(doc));
  MF_TRY(rootfs, ReadRootFs(doc));
  MF_TRY(history, ReadHistory(doc));
  c.created = std::move(created);
  c.author = std::move(author);
  c.architecture = std::move(architecture);
  c.os = std::move(os);
  c.variant = std::move(variant);
  c.config = std::move(config);
  c.rootfs = std::move(rootfs);
  c.history = std::move(history);
  return c;
}

std::string ImageConfig::ToJson() const {
  OrderedJson j = OrderedJson::object();
  if (created) j["created"] = *created;
  detail::PutString(j, "author", author);
  j["architecture"] = architecture;
  j["os"] = os;
  detail::PutString(j, "variant", variant);
  j["config"] = ExecConfigToJson(config);
  OrderedJson diff_ids = OrderedJson::array();
  for (const auto& d : rootfs.diff_ids) diff_ids.push_back(d.ToString());
  OrderedJson rootfs_json = OrderedJson::object();
  rootfs_json["type"] = rootfs.type;
  rootfs_json["diff_ids"] = std::move(diff_ids);
  j["rootfs"] = std::move(rootfs_json);
  if (!history.empty()) {
    OrderedJson list = OrderedJson::array();
    for (const auto& h : history) {
      OrderedJson hj = OrderedJson::object();
      if (h.created) hj["created"] = *h.created;
      detail::PutString(hj, "created_by", h.created_by);
      detail::PutString(hj, "author", h.author);
      detail::PutString(hj, "comment", h.comment);
      if (h.empty_layer) hj["empty_layer"] = true;
      list.push_back(std::move(hj));
    }
    j["history"] = std::move(list);
  }
  return detail::Dump(j);
}

}  // namespace manifold::oci
