#include "common/dockerfile/parse_json.h"

#include "common/base/ascii.h"

#include <nlohmann/json.hpp>

namespace manifold::dockerfile {

namespace {

using nlohmann::ordered_json;

ordered_json NodeJson(const Node& n) {
  ordered_json j;
  j["cmd"] = n.cmd;
  j["flags"] = n.flags;
  if (n.cmd == "env" || n.cmd == "label") {
    ordered_json kvs = ordered_json::array();
    for (const auto& kv : n.kvs)
      kvs.push_back({{"key", kv.key}, {"value", kv.value}, {"legacy", kv.legacy}});
    j["args"] = kvs;
  } else {
    j["args"] = n.args;
  }
  j["json"] = n.json;
  ordered_json docs = ordered_json::array();
  for (const auto& h : n.heredocs)
    docs.push_back({{"name", h.name}, {"content", h.content}, {"expand", h.expand},
                    {"chomp", h.chomp}, {"fd", h.fd}});
  j["heredocs"] = docs;
  if (n.sub) j["sub"] = NodeJson(*n.sub);
  if (!n.known) j["unknown"] = true;
  j["line"] = n.line;
  j["end_line"] = n.end_line;
  return j;
}

// Invalid UTF-8 would make dump() throw: replace bad bytes.
std::string Dump(const ordered_json& j) {
  return j.dump(2, ' ', false, ordered_json::error_handler_t::replace);
}

std::string Words(const Node& n) {
  std::string out;
  for (const auto& f : n.flags) out += " " + f;
  if (n.cmd == "env" || n.cmd == "label") {
    for (const auto& kv : n.kvs) out += " " + kv.key + (kv.legacy ? " " : "=") + kv.value;
  } else if (n.json) {
    ordered_json a = n.args;
    out += " " + a.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
  } else {
    for (const auto& a : n.args) out += " " + a;
  }
  return out;
}

}  // namespace

std::string SyntaxTreeToJson(const SyntaxTree& tree) {
  ordered_json j;
  j["directives"] = ordered_json::object();
  for (const auto& [k, v] : tree.directives) j["directives"][k] = v;
  j["warnings"] = ordered_json::array();
  for (const auto& w : tree.warnings)
    j["warnings"].push_back({{"message", w.message}, {"line", w.line}});
  j["instructions"] = ordered_json::array();
  for (const auto& n : tree.nodes) j["instructions"].push_back(NodeJson(n));
  return Dump(j) + "\n";
}

std::string SyntaxTreeToText(const SyntaxTree& tree) {
  std::string out;
  for (const auto& [k, v] : tree.directives) out += "# " + k + "=" + v + "\n";
  for (const auto& w : tree.warnings) out += "warning: line " + std::to_string(w.line) + ": " + w.message + "\n";
  for (const auto& n : tree.nodes) {
    std::string kw = AsciiUpper(n.cmd);
    out += std::to_string(n.line) + ": " + kw + Words(n);
    if (n.sub) {
      std::string skw = AsciiUpper(n.sub->cmd);
      out += " " + skw + Words(*n.sub);
    }
    out += "\n";
    for (const auto& h : n.heredocs) {
      out += "  <<" + std::string(h.chomp ? "-" : "") + h.name + (h.expand ? "" : " (no expansion)") + "\n";
      out += h.content;
    }
  }
  return out;
}

}  // namespace manifold::dockerfile
