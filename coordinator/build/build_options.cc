// The build flags that need parsing beyond CLI11: --output and --secret.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "common/dockerfile/mount.h"
#include "coordinator/build/builder.h"

namespace manifold::coordinator {
namespace {

Error InvalidOutput(const std::string& spec, const std::string& why) {
  return MakeError(ErrorKind::kInvalidInput, "cli.output",
                   "invalid --output \"" + spec + "\": " + why);
}

std::map<std::string, std::string> ParseCsvKv(const std::string& spec) {
  std::map<std::string, std::string> out;
  auto fields = dockerfile::SplitCsv(spec);
  if (!fields.ok()) return out;
  for (const auto& f : *fields) {
    auto eq = f.find('=');
    if (eq == std::string::npos) out[f] = "";
    else out[f.substr(0, eq)] = f.substr(eq + 1);
  }
  return out;
}

}  // namespace

Expected<std::string> ReadWholeFile(const std::string& path, std::size_t max) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return MakeError(ErrorKind::kInvalidInput, "build.file",
                     path + ": " + std::strerror(errno));
  std::stringstream ss;
  ss << in.rdbuf();
  std::string s = ss.str();
  if (s.size() > max)
    return MakeError(ErrorKind::kInvalidInput, "build.file",
                     path + ": larger than " + std::to_string(max) + " bytes");
  return s;
}

Expected<OutputSpec> ParseOutputSpec(const std::string& spec) {
  OutputSpec o;
  if (spec.find('=') == std::string::npos && spec.find(',') == std::string::npos) {
    if (spec.empty()) return InvalidOutput(spec, "empty");
    o.type = OutputSpec::Type::kLocal;
    o.dest = spec;
    return o;
  }
  auto kv = ParseCsvKv(spec);
  std::string type = kv.count("type") ? kv["type"] : "";
  if (type == "oci") o.type = OutputSpec::Type::kOci;
  else if (type == "oci-dir") o.type = OutputSpec::Type::kOciDir;
  else if (type == "local") o.type = OutputSpec::Type::kLocal;
  else if (type == "image" || type == "registry") {
    o.type = OutputSpec::Type::kImage;
    o.name = kv.count("name") ? kv["name"] : "";
    if (o.name.empty()) return InvalidOutput(spec, "missing name=");
    std::string push = kv.count("push") ? kv["push"] : (type == "registry" ? "true" : "false");
    if (push != "true" && push != "false") return InvalidOutput(spec, "push= must be true or false");
    o.push = push == "true";
    for (const auto& [k, v] : kv)
      if (k != "type" && k != "name" && k != "push") return InvalidOutput(spec, "unknown key \"" + k + "\"");
    return o;
  }
  else if (type.empty()) return InvalidOutput(spec, "missing type= (oci, oci-dir, local, image or registry)");
  else
    return MakeError(ErrorKind::kUnimplemented, "cli.output",
                     "invalid --output \"" + spec + "\": output type \"" + type +
                         "\" is not supported (oci, oci-dir, local, image, registry)");
  o.dest = kv.count("dest") ? kv["dest"] : "";
  if (o.dest.empty()) return InvalidOutput(spec, "missing dest=");
  for (const auto& [k, v] : kv)
    if (k != "type" && k != "dest") return InvalidOutput(spec, "unknown key \"" + k + "\"");
  return o;
}

Expected<std::pair<std::string, std::string>> ParseSecretSpec(const std::string& spec) {
  auto kv = ParseCsvKv(spec);
  auto bad = [&](const std::string& why) {
    return MakeError(ErrorKind::kInvalidInput, "cli.secret",
                     "invalid --secret \"" + spec + "\": " + why);
  };
  std::string id = kv.count("id") ? kv["id"] : "";
  if (id.empty()) return bad("missing id=");
  std::string src = kv.count("src") ? kv["src"] : (kv.count("source") ? kv["source"] : "");
  std::string env = kv.count("env") ? kv["env"] : "";
  std::string type = kv.count("type") ? kv["type"] : "";
  if (type == "env" && env.empty()) env = src.empty() ? id : src, src.clear();
  if (!src.empty()) {
    auto data = ReadWholeFile(src, 500 * 1024);
    if (!data.ok()) return bad(data.error().message);
    return std::make_pair(id, *data);
  }
  if (env.empty()) env = id;
  const char* v = std::getenv(env.c_str());
  if (!v) return bad("environment variable " + env + " is not set");
  return std::make_pair(id, std::string(v));
}

}  // namespace manifold::coordinator
