#include "common/wire/stage_job.h"

#include <limits>
#include <memory>

#include <capnp/message.h>
#include <kj/string.h>

#include "common/oci/digest.h"
#include "schemas/common.capnp.h"
#include "schemas/scheduler.capnp.h"
#include "common/wire/fields.h"

namespace manifold::wire {
using namespace fields;  // NOLINT: the codec helpers

namespace {

using dockerfile::Cmd;

constexpr Cmd kAllCmds[] = {
    Cmd::kFrom,  Cmd::kRun,     Cmd::kCmd,    Cmd::kEntrypoint, Cmd::kShell,   Cmd::kHealthcheck,
    Cmd::kCopy,  Cmd::kAdd,     Cmd::kEnv,    Cmd::kLabel,      Cmd::kArg,     Cmd::kExpose,
    Cmd::kVolume, Cmd::kUser,   Cmd::kWorkdir, Cmd::kOnbuild,   Cmd::kStopsignal, Cmd::kMaintainer,
};

// ONBUILD triggers nest once (ONBUILD ONBUILD is refused by the parser).
constexpr int kMaxSubDepth = 1;

// ---------------------------------------------------------------- errors

// Every text field of an Instruction, with its wire name, for bounds checks.
Expected<void> CheckInstructionTexts(const std::string& at, const dockerfile::Instruction& in) {
  const std::pair<const char*, const std::string*> texts[] = {
      {"original", &in.original}, {"fromBase", &in.base},      {"stageName", &in.stage_name},
      {"fromPlatform", &in.platform}, {"network", &in.network}, {"security", &in.security},
      {"dest", &in.dest},         {"copyFrom", &in.from},      {"chown", &in.chown},
      {"chmod", &in.chmod},       {"checksum", &in.checksum},
      {"onbuildExpression", &in.onbuild_expression},
  };
  for (const auto& [name, s] : texts) MF_TRY_VOID(CheckText(at + "." + name, s->size()));
  return Ok();
}

Expected<void> WriteInstruction(const std::string& at, const dockerfile::Instruction& in,
                                std::uint32_t index, const std::string& cache_key, int depth,
                                schema::Instruction::Builder b) {
  b.setIndex(index);
  MF_TRY(line, ToU32(at + ".line", in.line));
  MF_TRY(end_line, ToU32(at + ".endLine", in.end_line));
  b.setLine(line);
  b.setEndLine(end_line);
  b.setCommand(dockerfile::CmdName(in.cmd));
  MF_TRY_VOID(CheckInstructionTexts(at, in));
  b.setOriginal(Kj(in.original));

  MF_TRY_VOID(CheckList(at + ".args", in.args.size()));
  MF_TRY_VOID(FillTexts(at + ".args", in.args, b.initArgs(static_cast<unsigned>(in.args.size()))));
  b.setPrependShell(in.prepend_shell);

  MF_TRY_VOID(CheckList(at + ".heredocs", in.files.size()));
  auto heredocs = b.initHeredocs(static_cast<unsigned>(in.files.size()));
  for (std::size_t i = 0; i < in.files.size(); ++i) {
    const auto& h = in.files[i];
    const std::string hat = Idx(at + ".heredocs", i);
    MF_TRY_VOID(CheckText(hat + ".name", h.name.size()));
    MF_TRY_VOID(CheckText(hat + ".content", h.content.size()));
    auto hb = heredocs[static_cast<unsigned>(i)];
    hb.setName(Kj(h.name));
    hb.setContent(KjData(h.content));
    hb.setExpand(h.expand);
    hb.setChomp(h.chomp);
    hb.setFd(h.fd);
  }

  MF_TRY_VOID(CheckList(at + ".keyValues", in.kvs.size()));
  auto kvs = b.initKeyValues(static_cast<unsigned>(in.kvs.size()));
  for (std::size_t i = 0; i < in.kvs.size(); ++i) {
    const auto& kv = in.kvs[i];
    const std::string kat = Idx(at + ".keyValues", i);
    MF_TRY_VOID(CheckText(kat + ".key", kv.key.size()));
    MF_TRY_VOID(CheckText(kat + ".value", kv.value.size()));
    auto kb = kvs[static_cast<unsigned>(i)];
    kb.setKey(Kj(kv.key));
    kb.setValue(Kj(kv.value));
    kb.setLegacy(kv.legacy);
  }

  MF_TRY_VOID(CheckList(at + ".argDecls", in.arg_decls.size()));
  auto decls = b.initArgDecls(static_cast<unsigned>(in.arg_decls.size()));
  for (std::size_t i = 0; i < in.arg_decls.size(); ++i) {
    const auto& d = in.arg_decls[i];
    const std::string dat = Idx(at + ".argDecls", i);
    MF_TRY_VOID(CheckText(dat + ".name", d.name.size()));
    auto db = decls[static_cast<unsigned>(i)];
    db.setName(Kj(d.name));
    db.setHasDefault(d.value.has_value());
    if (d.value) {
      MF_TRY_VOID(CheckText(dat + ".defaultValue", d.value->size()));
      db.setDefaultValue(Kj(*d.value));
    }
  }

  b.setFromBase(Kj(in.base));
  b.setStageName(Kj(in.stage_name));
  b.setFromPlatform(Kj(in.platform));

  MF_TRY_VOID(CheckList(at + ".mounts", in.mounts.size()));
  MF_TRY_VOID(FillTexts(at + ".mounts", in.mounts,
                        b.initMounts(static_cast<unsigned>(in.mounts.size()))));
  b.setNetwork(Kj(in.network));
  b.setSecurity(Kj(in.security));

  MF_TRY_VOID(CheckList(at + ".heredocSources", in.heredoc_sources.size()));
  auto sources = b.initHeredocSources(static_cast<unsigned>(in.heredoc_sources.size()));
  for (std::size_t i = 0; i < in.heredoc_sources.size(); ++i) {
    const auto& h = in.heredoc_sources[i];
    const std::string sat = Idx(at + ".heredocSources", i);
    MF_TRY_VOID(CheckText(sat + ".name", h.name.size()));
    MF_TRY_VOID(CheckText(sat + ".data", h.data.size()));
    auto sb = sources[static_cast<unsigned>(i)];
    sb.setName(Kj(h.name));
    sb.setData(KjData(h.data));
    sb.setExpand(h.expand);
  }
  b.setDest(Kj(in.dest));
  b.setCopyFrom(Kj(in.from));
  b.setChown(Kj(in.chown));
  b.setChmod(Kj(in.chmod));
  b.setChecksum(Kj(in.checksum));
  b.setLink(in.link);
  b.setParents(in.parents);
  b.setKeepGitDir(in.keep_git_dir);
  MF_TRY_VOID(CheckList(at + ".excludes", in.excludes.size()));
  MF_TRY_VOID(FillTexts(at + ".excludes", in.excludes,
                        b.initExcludes(static_cast<unsigned>(in.excludes.size()))));

  MF_TRY_VOID(CheckList(at + ".healthTest", in.health_test.size()));
  MF_TRY_VOID(FillTexts(at + ".healthTest", in.health_test,
                        b.initHealthTest(static_cast<unsigned>(in.health_test.size()))));
  b.setIntervalNs(in.interval_ns);
  b.setTimeoutNs(in.timeout_ns);
  b.setStartPeriodNs(in.start_period_ns);
  b.setStartIntervalNs(in.start_interval_ns);
  b.setRetries(in.retries);

  b.setOnbuildExpression(Kj(in.onbuild_expression));
  if (in.sub) {
    if (depth >= kMaxSubDepth) return FieldError(at + ".sub", "ONBUILD triggers nest too deep");
    MF_TRY_VOID(WriteInstruction(at + ".sub", *in.sub, 0, "", depth + 1, b.initSub(1)[0]));
  }

  if (!cache_key.empty()) {
    MF_TRY(d, CheckDigest(at + ".cacheKey", cache_key));
    SetDigest(b.initCacheKey(), d);
  }
  return Ok();
}

// ---------------------------------------------------------------- reading

Expected<Cmd> ReadCmd(const std::string& field, capnp::Text::Reader t) {
  std::string_view name(t.begin(), t.size());
  for (Cmd c : kAllCmds)
    if (name == dockerfile::CmdName(c)) return c;
  std::string shown(name.substr(0, 32));
  return FieldError(field, "unknown instruction \"" + shown + "\"");
}

Expected<dockerfile::Instruction> ReadInstruction(const std::string& at,
                                                  schema::Instruction::Reader r, int depth) {
  dockerfile::Instruction in;
  MF_TRY(cmd, ReadCmd(at + ".command", r.getCommand()));
  in.cmd = cmd;
  constexpr auto kIntMax = static_cast<std::uint32_t>(std::numeric_limits<int>::max());
  if (r.getLine() > kIntMax) return FieldError(at + ".line", "out of range");
  if (r.getEndLine() > kIntMax) return FieldError(at + ".endLine", "out of range");
  in.line = static_cast<int>(r.getLine());
  in.end_line = static_cast<int>(r.getEndLine());
  MF_TRY(original, ReadText(at + ".original", r.getOriginal()));
  in.original = std::move(original);
  MF_TRY(args, ReadTexts(at + ".args", r.getArgs()));
  in.args = std::move(args);
  in.prepend_shell = r.getPrependShell();

  auto heredocs = r.getHeredocs();
  MF_TRY_VOID(CheckList(at + ".heredocs", heredocs.size()));
  for (unsigned i = 0; i < heredocs.size(); ++i) {
    auto h = heredocs[i];
    const std::string hat = Idx(at + ".heredocs", i);
    dockerfile::Heredoc out;
    MF_TRY(name, ReadText(hat + ".name", h.getName()));
    MF_TRY(content, ReadData(hat + ".content", h.getContent()));
    out.name = std::move(name);
    out.content = std::move(content);
    out.expand = h.getExpand();
    out.chomp = h.getChomp();
    out.fd = h.getFd();
    if (out.fd < 0) return FieldError(hat + ".fd", "negative file descriptor");
    in.files.push_back(std::move(out));
  }

  auto kvs = r.getKeyValues();
  MF_TRY_VOID(CheckList(at + ".keyValues", kvs.size()));
  for (unsigned i = 0; i < kvs.size(); ++i) {
    const std::string kat = Idx(at + ".keyValues", i);
    dockerfile::KeyValue kv;
    MF_TRY(key, ReadText(kat + ".key", kvs[i].getKey()));
    MF_TRY(value, ReadText(kat + ".value", kvs[i].getValue()));
    kv.key = std::move(key);
    kv.value = std::move(value);
    kv.legacy = kvs[i].getLegacy();
    in.kvs.push_back(std::move(kv));
  }

  auto decls = r.getArgDecls();
  MF_TRY_VOID(CheckList(at + ".argDecls", decls.size()));
  for (unsigned i = 0; i < decls.size(); ++i) {
    const std::string dat = Idx(at + ".argDecls", i);
    dockerfile::ArgDecl d;
    MF_TRY(name, ReadText(dat + ".name", decls[i].getName()));
    d.name = std::move(name);
    if (decls[i].getHasDefault()) {
      MF_TRY(value, ReadText(dat + ".defaultValue", decls[i].getDefaultValue()));
      d.value = std::move(value);
    }
    in.arg_decls.push_back(std::move(d));
  }

  MF_TRY(base, ReadText(at + ".fromBase", r.getFromBase()));
  MF_TRY(stage_name, ReadText(at + ".stageName", r.getStageName()));
  MF_TRY(platform, ReadText(at + ".fromPlatform", r.getFromPlatform()));
  in.base = std::move(base);
  in.stage_name = std::move(stage_name);
  in.platform = std::move(platform);

  MF_TRY(mounts, ReadTexts(at + ".mounts", r.getMounts()));
  MF_TRY(network, ReadText(at + ".network", r.getNetwork()));
  MF_TRY(security, ReadText(at + ".security", r.getSecurity()));
  in.mounts = std::move(mounts);
  in.network = std::move(network);
  in.security = std::move(security);

  auto sources = r.getHeredocSources();
  MF_TRY_VOID(CheckList(at + ".heredocSources", sources.size()));
  for (unsigned i = 0; i < sources.size(); ++i) {
    const std::string sat = Idx(at + ".heredocSources", i);
    dockerfile::HeredocSource s;
    MF_TRY(name, ReadText(sat + ".name", sources[i].getName()));
    MF_TRY(data, ReadData(sat + ".data", sources[i].getData()));
    s.name = std::move(name);
    s.data = std::move(data);
    s.expand = sources[i].getExpand();
    in.heredoc_sources.push_back(std::move(s));
  }
  MF_TRY(dest, ReadText(at + ".dest", r.getDest()));
  MF_TRY(from, ReadText(at + ".copyFrom", r.getCopyFrom()));
  MF_TRY(chown, ReadText(at + ".chown", r.getChown()));
  MF_TRY(chmod, ReadText(at + ".chmod", r.getChmod()));
  MF_TRY(checksum, ReadText(at + ".checksum", r.getChecksum()));
  in.dest = std::move(dest);
  in.from = std::move(from);
  in.chown = std::move(chown);
  in.chmod = std::move(chmod);
  in.checksum = std::move(checksum);
  in.link = r.getLink();
  in.parents = r.getParents();
  in.keep_git_dir = r.getKeepGitDir();
  MF_TRY(excludes, ReadTexts(at + ".excludes", r.getExcludes()));
  in.excludes = std::move(excludes);

  MF_TRY(health_test, ReadTexts(at + ".healthTest", r.getHealthTest()));
  in.health_test = std::move(health_test);
  in.interval_ns = r.getIntervalNs();
  in.timeout_ns = r.getTimeoutNs();
  in.start_period_ns = r.getStartPeriodNs();
  in.start_interval_ns = r.getStartIntervalNs();
  in.retries = r.getRetries();

  MF_TRY(onbuild, ReadText(at + ".onbuildExpression", r.getOnbuildExpression()));
  in.onbuild_expression = std::move(onbuild);
  auto subs = r.getSub();
  if (subs.size() > 1) return FieldError(at + ".sub", "more than one trigger");
  if (subs.size() == 1) {
    if (depth >= kMaxSubDepth) return FieldError(at + ".sub", "ONBUILD triggers nest too deep");
    MF_TRY(sub, ReadInstruction(at + ".sub", subs[0], depth + 1));
    in.sub = std::make_shared<const dockerfile::Instruction>(std::move(sub));
  }
  return in;
}

// ---------------------------------------------------------------- errors on the wire


}  // namespace

bool IsZ85Key(std::string_view key) {
  static constexpr std::string_view kZ85 =
      "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
  if (key.size() != 40) return false;
  for (char c : key)
    if (kZ85.find(c) == std::string_view::npos) return false;
  return true;
}

bool IsValidWireId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// ---------------------------------------------------------------- StageJob

static Expected<void> CheckInputValue(const std::string& field, const std::string& value) {
  std::string_view v = value;
  if (v.starts_with("stage:")) v.remove_prefix(6);
  else if (v.starts_with("image:")) v.remove_prefix(6);
  else return FieldError(field, "must start with \"stage:\" or \"image:\"");
  MF_TRY_VOID(CheckDigest(field, v));
  return Ok();
}

static Expected<void> CheckCompression(const std::string& c) {
  if (c == "gzip" || c == "zstd" || c == "none") return Ok();
  return FieldError("StageJob.options.compression", "unknown compression \"" + c.substr(0, 32) + "\"");
}

// ---------------------------------------------------------------- JobSupplement

static Expected<void> CheckHolder(const std::string& at, const BlobHolder& h) {
  if (h.endpoint.empty() != h.public_key.empty())
    return FieldError(at, "endpoint and publicKey are set together or not at all");
  MF_TRY_VOID(CheckEndpoint(at + ".endpoint", h.endpoint));
  if (!h.public_key.empty()) MF_TRY_VOID(CheckKey(at + ".publicKey", h.public_key));
  return Ok();
}

static Expected<void> WriteSupplement(const JobSupplement& sup, schema::JobSupplement::Builder b) {
  MF_TRY_VOID(CheckList("StageJob.supplement.sources", sup.sources.size()));
  auto sources = b.initSources(static_cast<unsigned>(sup.sources.size()));
  for (std::size_t i = 0; i < sup.sources.size(); ++i) {
    const auto& src = sup.sources[i];
    const std::string at = Idx("StageJob.supplement.sources", i);
    auto sb = sources[static_cast<unsigned>(i)];
    MF_TRY_VOID(CheckText(at + ".mediaType", src.media_type.size()));
    MF_TRY(d, CheckDigest(at + ".digest", src.digest));
    if (!src.diff_id.empty()) MF_TRY_VOID(CheckDigest(at + ".diffId", src.diff_id));
    sb.setMediaType(Kj(src.media_type));
    sb.setDigest(d.ToString());
    sb.setSize(src.size);
    sb.setDiffId(Kj(src.diff_id));
    MF_TRY_VOID(CheckList(at + ".holders", src.holders.size(), 64));
    auto hs = sb.initHolders(static_cast<unsigned>(src.holders.size()));
    for (std::size_t j = 0; j < src.holders.size(); ++j) {
      MF_TRY_VOID(CheckHolder(Idx(at + ".holders", j), src.holders[j]));
      hs[static_cast<unsigned>(j)].setEndpoint(Kj(src.holders[j].endpoint));
      hs[static_cast<unsigned>(j)].setPublicKey(Kj(src.holders[j].public_key));
    }
  }
  MF_TRY_VOID(CheckList("StageJob.supplement.cachedSteps", sup.cached_steps.size()));
  auto steps = b.initCachedSteps(static_cast<unsigned>(sup.cached_steps.size()));
  for (std::size_t i = 0; i < sup.cached_steps.size(); ++i) {
    const auto& cs = sup.cached_steps[i];
    const std::string at = Idx("StageJob.supplement.cachedSteps", i);
    MF_TRY(k, CheckDigest(at + ".key", cs.key));
    MF_TRY(c, CheckDigest(at + ".configDigest", cs.config_digest));
    auto sb = steps[static_cast<unsigned>(i)];
    sb.setKey(k.ToString());
    sb.setConfigDigest(c.ToString());
    MF_TRY_VOID(CheckList(at + ".layers", cs.layers.size()));
    auto ls = sb.initLayers(static_cast<unsigned>(cs.layers.size()));
    for (std::size_t j = 0; j < cs.layers.size(); ++j)
      MF_TRY_VOID(WriteLayer(Idx(at + ".layers", j), cs.layers[j], ls[static_cast<unsigned>(j)]));
  }
  MF_TRY_VOID(CheckList("StageJob.supplement.context", sup.context.size(), kMaxContextFiles));
  auto ctx = b.initContext(static_cast<unsigned>(sup.context.size()));
  for (std::size_t i = 0; i < sup.context.size(); ++i)
    MF_TRY_VOID(WriteContextFile(Idx("StageJob.supplement.context", i), sup.context[i],
                                 ctx[static_cast<unsigned>(i)]));
  b.setHasDockerignore(sup.dockerignore.has_value());
  b.setReadsContext(sup.reads_context);
  if (sup.dockerignore) {
    MF_TRY_VOID(CheckText("StageJob.supplement.dockerignore", sup.dockerignore->size()));
    b.setDockerignore(KjData(*sup.dockerignore));
  }
  MF_TRY_VOID(CheckList("StageJob.supplement.secrets", sup.secrets.size(), 1000));
  auto secrets = b.initSecrets(static_cast<unsigned>(sup.secrets.size()));
  unsigned si = 0;
  for (const auto& [id, data] : sup.secrets) {
    const std::string at = Idx("StageJob.supplement.secrets", si);
    if (id.empty()) return FieldError(at + ".id", "empty");
    MF_TRY_VOID(CheckText(at + ".id", id.size()));
    MF_TRY_VOID(CheckText(at + ".data", data.size()));
    secrets[si].setId(Kj(id));
    secrets[si].setData(KjData(data));
    ++si;
  }
  return Ok();
}

static Expected<JobSupplement> ReadSupplement(schema::JobSupplement::Reader r) {
  JobSupplement sup;
  auto sources = r.getSources();
  MF_TRY_VOID(CheckList("StageJob.supplement.sources", sources.size()));
  for (unsigned i = 0; i < sources.size(); ++i) {
    const std::string at = Idx("StageJob.supplement.sources", i);
    BlobSourceData src;
    MF_TRY(media_type, ReadText(at + ".mediaType", sources[i].getMediaType()));
    MF_TRY(digest, ReadText(at + ".digest", sources[i].getDigest()));
    MF_TRY(d, CheckDigest(at + ".digest", digest));
    MF_TRY(diff_id, ReadText(at + ".diffId", sources[i].getDiffId()));
    if (!diff_id.empty()) MF_TRY_VOID(CheckDigest(at + ".diffId", diff_id));
    src.media_type = std::move(media_type);
    src.digest = d.ToString();
    src.size = sources[i].getSize();
    src.diff_id = std::move(diff_id);
    auto hs = sources[i].getHolders();
    MF_TRY_VOID(CheckList(at + ".holders", hs.size(), 64));
    for (unsigned j = 0; j < hs.size(); ++j) {
      BlobHolder h;
      MF_TRY(endpoint, ReadText(Idx(at + ".holders", j) + ".endpoint", hs[j].getEndpoint()));
      MF_TRY(key, ReadText(Idx(at + ".holders", j) + ".publicKey", hs[j].getPublicKey()));
      h.endpoint = std::move(endpoint);
      h.public_key = std::move(key);
      MF_TRY_VOID(CheckHolder(Idx(at + ".holders", j), h));
      src.holders.push_back(std::move(h));
    }
    sup.sources.push_back(std::move(src));
  }
  auto steps = r.getCachedSteps();
  MF_TRY_VOID(CheckList("StageJob.supplement.cachedSteps", steps.size()));
  for (unsigned i = 0; i < steps.size(); ++i) {
    const std::string at = Idx("StageJob.supplement.cachedSteps", i);
    JobSupplement::CachedStep cs;
    MF_TRY(key, ReadText(at + ".key", steps[i].getKey()));
    MF_TRY(config, ReadText(at + ".configDigest", steps[i].getConfigDigest()));
    MF_TRY(k, CheckDigest(at + ".key", key));
    MF_TRY(c, CheckDigest(at + ".configDigest", config));
    cs.key = k.ToString();
    cs.config_digest = c.ToString();
    auto ls = steps[i].getLayers();
    MF_TRY_VOID(CheckList(at + ".layers", ls.size()));
    for (unsigned j = 0; j < ls.size(); ++j) {
      MF_TRY(l, ReadLayer(Idx(at + ".layers", j), ls[j]));
      cs.layers.push_back(std::move(l));
    }
    sup.cached_steps.push_back(std::move(cs));
  }
  auto ctx = r.getContext();
  MF_TRY_VOID(CheckList("StageJob.supplement.context", ctx.size(), kMaxContextFiles));
  for (unsigned i = 0; i < ctx.size(); ++i) {
    MF_TRY(f, ReadContextFile(Idx("StageJob.supplement.context", i), ctx[i]));
    sup.context.push_back(std::move(f));
  }
  sup.reads_context = r.getReadsContext();
  if (r.getHasDockerignore()) {
    MF_TRY(text, ReadData("StageJob.supplement.dockerignore", r.getDockerignore()));
    sup.dockerignore = std::move(text);
  }
  auto secrets = r.getSecrets();
  MF_TRY_VOID(CheckList("StageJob.supplement.secrets", secrets.size(), 1000));
  for (unsigned i = 0; i < secrets.size(); ++i) {
    const std::string at = Idx("StageJob.supplement.secrets", i);
    MF_TRY(id, ReadText(at + ".id", secrets[i].getId()));
    MF_TRY(data, ReadData(at + ".data", secrets[i].getData()));
    if (id.empty()) return FieldError(at + ".id", "empty");
    if (!sup.secrets.emplace(std::move(id), std::move(data)).second)
      return FieldError(at + ".id", "duplicate");
  }
  return sup;
}

Expected<std::string> EncodeStageJob(const StageJobData& job) {
  MF_TRY_VOID(CheckId("StageJob.buildId", job.build_id));
  MF_TRY_VOID(CheckId("StageJob.jobId", job.job_id));
  MF_TRY_VOID(CheckText("StageJob.stage", job.stage.size()));
  if (job.stage.empty()) return FieldError("StageJob.stage", "empty");
  MF_TRY(platform, CheckPlatform("StageJob.platform", job.platform));
  MF_TRY(target, CheckPlatform("StageJob.targetPlatform", job.target_platform));
  MF_TRY(stage_index, ToU32("StageJob.stageIndex", job.stage_index));
  MF_TRY_VOID(CheckList("StageJob.instructions", job.instructions.size(), kMaxJobInstructions));
  MF_TRY_VOID(CheckList("StageJob.dependsOn", job.depends_on.size()));
  MF_TRY_VOID(CheckList("StageJob.buildArgs", job.args.size()));
  MF_TRY_VOID(CheckList("StageJob.env", job.env.size()));
  if (!job.cache_keys.empty() && job.cache_keys.size() != job.instructions.size())
    return FieldError("StageJob.instructions.cacheKey",
                      std::to_string(job.cache_keys.size()) + " keys for " +
                          std::to_string(job.instructions.size()) + " instructions");

  OutgoingMessage<schema::StageJob> out;
  auto b = out.Body();
  b.setBuildId(Kj(job.build_id));
  b.setJobId(Kj(job.job_id));
  b.setStage(Kj(job.stage));
  b.setStageIndex(stage_index);
  SetPlatform(b.initPlatform(), platform);
  SetPlatform(b.initTargetPlatform(), target);
  b.setLeaseEpoch(job.lease_epoch);

  auto base = b.initBase();
  if (!job.base_job.empty()) {
    if (!job.base.empty())
      return FieldError("StageJob.base", "both an image and a stage are set");
    if (!job.base_manifest_digest.empty())
      return FieldError("StageJob.base", "a stage base has no manifest digest");
    MF_TRY_VOID(CheckId("StageJob.base.stage", job.base_job));
    base.setStage(Kj(job.base_job));
  } else if (job.base == "scratch") {
    if (!job.base_manifest_digest.empty())
      return FieldError("StageJob.base", "scratch has no manifest digest");
    base.setScratch();
  } else if (!job.base.empty()) {
    MF_TRY_VOID(CheckText("StageJob.base.image.reference", job.base.size()));
    auto image = base.initImage();
    image.setReference(Kj(job.base));
    if (!job.base_manifest_digest.empty()) {
      MF_TRY(d, CheckDigest("StageJob.base.image.manifestDigest", job.base_manifest_digest));
      SetDigest(image.initManifestDigest(), d);
    }
  } else {
    return FieldError("StageJob.base", "neither an image nor a stage is set");
  }

  auto deps = b.initDependsOn(static_cast<unsigned>(job.depends_on.size()));
  for (std::size_t i = 0; i < job.depends_on.size(); ++i) {
    MF_TRY_VOID(CheckId(Idx("StageJob.dependsOn", i), job.depends_on[i]));
    deps.set(static_cast<unsigned>(i), Kj(job.depends_on[i]));
  }

  auto instructions = b.initInstructions(static_cast<unsigned>(job.instructions.size()));
  static const std::string kNoKey;
  for (std::size_t i = 0; i < job.instructions.size(); ++i) {
    MF_TRY_VOID(WriteInstruction(Idx("StageJob.instructions", i), job.instructions[i],
                                 static_cast<std::uint32_t>(i),
                                 job.cache_keys.empty() ? kNoKey : job.cache_keys[i], 0,
                                 instructions[static_cast<unsigned>(i)]));
  }

  auto args = b.initBuildArgs(static_cast<unsigned>(job.args.size()));
  unsigned ai = 0;
  for (const auto& [name, value] : job.args) {
    const std::string at = Idx("StageJob.buildArgs", ai);
    MF_TRY_VOID(CheckText(at + ".name", name.size()));
    MF_TRY_VOID(CheckText(at + ".value", value.size()));
    args[ai].setName(Kj(name));
    args[ai].setValue(Kj(value));
    ++ai;
  }
  auto env = b.initEnv(static_cast<unsigned>(job.env.size()));
  for (std::size_t i = 0; i < job.env.size(); ++i) {
    const std::string at = Idx("StageJob.env", i);
    MF_TRY_VOID(CheckText(at + ".name", job.env[i].first.size()));
    MF_TRY_VOID(CheckText(at + ".value", job.env[i].second.size()));
    env[static_cast<unsigned>(i)].setName(Kj(job.env[i].first));
    env[static_cast<unsigned>(i)].setValue(Kj(job.env[i].second));
  }
  MF_TRY_VOID(CheckList("StageJob.inputs", job.inputs.size()));
  auto inputs = b.initInputs(static_cast<unsigned>(job.inputs.size()));
  for (std::size_t i = 0; i < job.inputs.size(); ++i) {
    const std::string at = Idx("StageJob.inputs", i);
    const auto& [name, value] = job.inputs[i];
    if (name.empty()) return FieldError(at + ".name", "empty");
    MF_TRY_VOID(CheckText(at + ".name", name.size()));
    MF_TRY_VOID(CheckInputValue(at + ".value", value));
    inputs[static_cast<unsigned>(i)].setName(Kj(name));
    inputs[static_cast<unsigned>(i)].setValue(Kj(value));
  }
  auto o = b.initOptions();
  o.setNoCache(job.options.no_cache);
  o.setHasSourceDateEpoch(job.options.source_date_epoch.has_value());
  o.setSourceDateEpoch(job.options.source_date_epoch.value_or(0));
  o.setAllowInsecure(job.options.allow_insecure);
  MF_TRY_VOID(FillTexts("StageJob.options.volumes", job.options.volumes, o.initVolumes(
      static_cast<unsigned>(job.options.volumes.size()))));
  MF_TRY_VOID(CheckCompression(job.options.compression));
  o.setCompression(Kj(job.options.compression));
  MF_TRY_VOID(FillTexts("StageJob.options.secretIds", job.options.secret_ids,
                        o.initSecretIds(static_cast<unsigned>(job.options.secret_ids.size()))));
  if (!job.step_digests.empty() && job.step_digests.size() != job.instructions.size())
    return FieldError("StageJob.stepDigests", std::to_string(job.step_digests.size()) +
                                                  " digests for " +
                                                  std::to_string(job.instructions.size()) +
                                                  " instructions");
  for (std::size_t i = 0; i < job.step_digests.size(); ++i)
    MF_TRY_VOID(CheckDigest(Idx("StageJob.stepDigests", i), job.step_digests[i]));
  MF_TRY_VOID(FillTexts("StageJob.stepDigests", job.step_digests,
                        b.initStepDigests(static_cast<unsigned>(job.step_digests.size()))));
  if (job.supplement) MF_TRY_VOID(WriteSupplement(*job.supplement, b.initSupplement()));

  std::string bytes = out.Encode();
  if (bytes.size() > kMaxMessageBytes)
    return LimitError("StageJob (bytes)", bytes.size(), kMaxMessageBytes);
  return bytes;
}

Expected<StageJobData> DecodeStageJob(std::string_view bytes, const DecodeLimits& limits) {
  MF_TRY(decoded, Decode<schema::StageJob>(bytes, limits));
  auto r = decoded.Body();
  StageJobData job;

  MF_TRY(build_id, ReadText("StageJob.buildId", r.getBuildId()));
  MF_TRY_VOID(CheckId("StageJob.buildId", build_id));
  MF_TRY(job_id, ReadText("StageJob.jobId", r.getJobId()));
  MF_TRY_VOID(CheckId("StageJob.jobId", job_id));
  job.build_id = std::move(build_id);
  job.job_id = std::move(job_id);

  MF_TRY(stage, ReadText("StageJob.stage", r.getStage()));
  if (stage.empty()) return FieldError("StageJob.stage", "empty");
  job.stage = std::move(stage);
  if (r.getStageIndex() > static_cast<std::uint32_t>(std::numeric_limits<int>::max()))
    return FieldError("StageJob.stageIndex", "out of range");
  job.stage_index = static_cast<int>(r.getStageIndex());

  MF_TRY(platform, ReadPlatform("StageJob.platform", r.hasPlatform(), r.getPlatform()));
  MF_TRY(target, ReadPlatform("StageJob.targetPlatform", r.hasTargetPlatform(),
                              r.getTargetPlatform()));
  job.platform = std::move(platform);
  job.target_platform = std::move(target);
  job.lease_epoch = r.getLeaseEpoch();

  if (!r.hasBase()) return FieldError("StageJob.base", "missing");
  auto base = r.getBase();
  switch (base.which()) {
    case schema::BaseImage::SCRATCH:
      job.base = "scratch";
      break;
    case schema::BaseImage::IMAGE: {
      auto image = base.getImage();
      MF_TRY(ref, ReadText("StageJob.base.image.reference", image.getReference()));
      if (ref.empty()) return FieldError("StageJob.base.image.reference", "empty");
      MF_TRY(digest, ReadDigest("StageJob.base.image.manifestDigest", image.hasManifestDigest(),
                                image.getManifestDigest()));
      job.base = std::move(ref);
      job.base_manifest_digest = std::move(digest);
      break;
    }
    case schema::BaseImage::STAGE: {
      MF_TRY(base_job, ReadText("StageJob.base.stage", base.getStage()));
      MF_TRY_VOID(CheckId("StageJob.base.stage", base_job));
      job.base_job = std::move(base_job);
      break;
    }
    default:
      return FieldError("StageJob.base", "unknown kind of base");
  }

  MF_TRY(deps, ReadTexts("StageJob.dependsOn", r.getDependsOn()));
  for (std::size_t i = 0; i < deps.size(); ++i)
    MF_TRY_VOID(CheckId(Idx("StageJob.dependsOn", i), deps[i]));
  job.depends_on = std::move(deps);

  auto instructions = r.getInstructions();
  MF_TRY_VOID(CheckList("StageJob.instructions", instructions.size(), kMaxJobInstructions));
  job.instructions.reserve(instructions.size());
  std::vector<std::string> keys(instructions.size());
  bool any_key = false;
  for (unsigned i = 0; i < instructions.size(); ++i) {
    const std::string at = Idx("StageJob.instructions", i);
    auto ir = instructions[i];
    if (ir.getIndex() != i)
      return FieldError(at + ".index", "is " + std::to_string(ir.getIndex()));
    MF_TRY(in, ReadInstruction(at, ir, 0));
    MF_TRY(key, ReadDigest(at + ".cacheKey", ir.hasCacheKey(), ir.getCacheKey()));
    any_key = any_key || !key.empty();
    keys[i] = std::move(key);
    job.instructions.push_back(std::move(in));
  }
  if (any_key) job.cache_keys = std::move(keys);

  auto args = r.getBuildArgs();
  MF_TRY_VOID(CheckList("StageJob.buildArgs", args.size()));
  for (unsigned i = 0; i < args.size(); ++i) {
    const std::string at = Idx("StageJob.buildArgs", i);
    MF_TRY(name, ReadText(at + ".name", args[i].getName()));
    MF_TRY(value, ReadText(at + ".value", args[i].getValue()));
    if (name.empty()) return FieldError(at + ".name", "empty");
    if (!job.args.emplace(std::move(name), std::move(value)).second)
      return FieldError(at + ".name", "duplicate");
  }
  auto env = r.getEnv();
  MF_TRY_VOID(CheckList("StageJob.env", env.size()));
  for (unsigned i = 0; i < env.size(); ++i) {
    const std::string at = Idx("StageJob.env", i);
    MF_TRY(name, ReadText(at + ".name", env[i].getName()));
    MF_TRY(value, ReadText(at + ".value", env[i].getValue()));
    job.env.emplace_back(std::move(name), std::move(value));
  }
  auto inputs = r.getInputs();
  MF_TRY_VOID(CheckList("StageJob.inputs", inputs.size()));
  for (unsigned i = 0; i < inputs.size(); ++i) {
    const std::string at = Idx("StageJob.inputs", i);
    MF_TRY(name, ReadText(at + ".name", inputs[i].getName()));
    MF_TRY(value, ReadText(at + ".value", inputs[i].getValue()));
    if (name.empty()) return FieldError(at + ".name", "empty");
    MF_TRY_VOID(CheckInputValue(at + ".value", value));
    job.inputs.emplace_back(std::move(name), std::move(value));
  }
  if (r.hasOptions()) {
    auto o = r.getOptions();
    job.options.no_cache = o.getNoCache();
    if (o.getHasSourceDateEpoch()) {
      if (o.getSourceDateEpoch() < 0)
        return FieldError("StageJob.options.sourceDateEpoch", "negative");
      job.options.source_date_epoch = o.getSourceDateEpoch();
    }
    job.options.allow_insecure = o.getAllowInsecure();
    MF_TRY(volumes, ReadTexts("StageJob.options.volumes", o.getVolumes()));
    job.options.volumes = std::move(volumes);
    MF_TRY(compression, ReadText("StageJob.options.compression", o.getCompression()));
    if (compression.empty()) compression = "gzip";
    MF_TRY_VOID(CheckCompression(compression));
    job.options.compression = std::move(compression);
    MF_TRY(secret_ids, ReadTexts("StageJob.options.secretIds", o.getSecretIds()));
    job.options.secret_ids = std::move(secret_ids);
  }
  MF_TRY(step_digests, ReadTexts("StageJob.stepDigests", r.getStepDigests(), kMaxJobInstructions));
  if (!step_digests.empty() && step_digests.size() != job.instructions.size())
    return FieldError("StageJob.stepDigests", std::to_string(step_digests.size()) +
                                                  " digests for " +
                                                  std::to_string(job.instructions.size()) +
                                                  " instructions");
  for (std::size_t i = 0; i < step_digests.size(); ++i)
    MF_TRY_VOID(CheckDigest(Idx("StageJob.stepDigests", i), step_digests[i]));
  job.step_digests = std::move(step_digests);
  if (r.hasSupplement()) {
    MF_TRY(sup, ReadSupplement(r.getSupplement()));
    job.supplement = std::move(sup);
  }
  return job;
}

// ---------------------------------------------------------------- StageResult

Expected<std::string> EncodeStageResult(const StageResultData& result) {
  MF_TRY_VOID(CheckId("StageResult.jobId", result.job_id));
  MF_TRY_VOID(CheckList("StageResult.layers", result.layers.size()));
  MF_TRY_VOID(CheckList("StageResult.steps", result.steps.size(), kMaxJobInstructions));
  if (result.config_digest.empty() && !result.error)
    return FieldError("StageResult.configDigest", "missing on a successful result");

  OutgoingMessage<schema::StageResult> out;
  auto b = out.Body();
  b.setJobId(Kj(result.job_id));
  b.setLeaseEpoch(result.lease_epoch);
  auto layers = b.initLayers(static_cast<unsigned>(result.layers.size()));
  for (std::size_t i = 0; i < result.layers.size(); ++i)
    MF_TRY_VOID(WriteLayer(Idx("StageResult.layers", i), result.layers[i],
                           layers[static_cast<unsigned>(i)]));
  auto steps = b.initSteps(static_cast<unsigned>(result.steps.size()));
  for (std::size_t i = 0; i < result.steps.size(); ++i) {
    const std::string at = Idx("StageResult.steps", i);
    const auto& s = result.steps[i];
    auto sb = steps[static_cast<unsigned>(i)];
    sb.setIndex(s.index);
    sb.setCached(s.cached);
    sb.setDurationMs(s.duration_ms);
    if (!s.config_digest.empty()) {
      MF_TRY(cd, CheckDigest(at + ".configDigest", s.config_digest));
      sb.setConfigDigest(cd.ToString());
    }
    if (s.chain_length > result.layers.size())
      return FieldError(at + ".chainLength", "longer than the stage's layers");
    sb.setChainLength(s.chain_length);
    if (!s.cache_key.empty()) {
      MF_TRY(d, CheckDigest(at + ".cacheKey", s.cache_key));
      SetDigest(sb.initCacheKey(), d);
    }
    if (s.layer) MF_TRY_VOID(WriteLayer(at + ".layer", *s.layer, sb.initLayer()));
  }
  if (!result.config_digest.empty()) {
    MF_TRY(d, CheckDigest("StageResult.configDigest", result.config_digest));
    SetDigest(b.initConfigDigest(), d);
  }
  if (result.error) MF_TRY_VOID(WriteError("StageResult.error", *result.error, b.initError()));

  std::string bytes = out.Encode();
  if (bytes.size() > kMaxMessageBytes)
    return LimitError("StageResult (bytes)", bytes.size(), kMaxMessageBytes);
  return bytes;
}

Expected<StageResultData> DecodeStageResult(std::string_view bytes, const DecodeLimits& limits) {
  MF_TRY(decoded, Decode<schema::StageResult>(bytes, limits));
  auto r = decoded.Body();
  StageResultData result;
  MF_TRY(job_id, ReadText("StageResult.jobId", r.getJobId()));
  MF_TRY_VOID(CheckId("StageResult.jobId", job_id));
  result.job_id = std::move(job_id);
  result.lease_epoch = r.getLeaseEpoch();

  auto layers = r.getLayers();
  MF_TRY_VOID(CheckList("StageResult.layers", layers.size()));
  for (unsigned i = 0; i < layers.size(); ++i) {
    MF_TRY(l, ReadLayer(Idx("StageResult.layers", i), layers[i]));
    result.layers.push_back(std::move(l));
  }
  auto steps = r.getSteps();
  MF_TRY_VOID(CheckList("StageResult.steps", steps.size(), kMaxJobInstructions));
  for (unsigned i = 0; i < steps.size(); ++i) {
    const std::string at = Idx("StageResult.steps", i);
    auto sr = steps[i];
    StepResultData s;
    s.index = sr.getIndex();
    s.cached = sr.getCached();
    s.duration_ms = sr.getDurationMs();
    MF_TRY(config_digest, ReadText(at + ".configDigest", sr.getConfigDigest()));
    if (!config_digest.empty()) MF_TRY_VOID(CheckDigest(at + ".configDigest", config_digest));
    s.config_digest = std::move(config_digest);
    s.chain_length = sr.getChainLength();
    if (s.chain_length > result.layers.size())
      return FieldError(at + ".chainLength", "longer than the stage's layers");
    MF_TRY(key, ReadDigest(at + ".cacheKey", sr.hasCacheKey(), sr.getCacheKey()));
    s.cache_key = std::move(key);
    if (sr.hasLayer()) {
      MF_TRY(l, ReadLayer(at + ".layer", sr.getLayer()));
      s.layer = std::move(l);
    }
    result.steps.push_back(std::move(s));
  }
  MF_TRY(config, ReadDigest("StageResult.configDigest", r.hasConfigDigest(), r.getConfigDigest()));
  result.config_digest = std::move(config);
  if (r.hasError()) {
    Error e;
    MF_TRY_VOID(ReadError("StageResult.error", r.getError(), e));
    result.error = std::move(e);
  }
  if (result.config_digest.empty() && !result.error)
    return MakeError(ErrorKind::kInvalidInput, "wire.digest",
                     "StageResult.configDigest: missing on a successful result");
  return result;
}

// ---------------------------------------------------------------- Progress

namespace {
schema::ProgressKind KindToWire(ProgressData::Kind k) {
  switch (k) {
    case ProgressData::Kind::kStart: return schema::ProgressKind::START;
    case ProgressData::Kind::kOutput: return schema::ProgressKind::OUTPUT;
    case ProgressData::Kind::kCached: return schema::ProgressKind::CACHED;
    case ProgressData::Kind::kDone: return schema::ProgressKind::DONE;
    case ProgressData::Kind::kInfo: break;
  }
  return schema::ProgressKind::INFO;
}
}  // namespace

Expected<std::string> EncodeProgress(const ProgressData& p) {
  MF_TRY_VOID(CheckId("Progress.jobId", p.job_id));
  MF_TRY_VOID(CheckText("Progress.text", p.text.size()));
  OutgoingMessage<schema::Progress> out;
  auto b = out.Body();
  b.setJobId(Kj(p.job_id));
  b.setLeaseEpoch(p.lease_epoch);
  b.setStep(p.step);
  b.setKind(KindToWire(p.kind));
  b.setText(KjData(p.text));
  b.setDurationMs(p.duration_ms);
  return out.Encode();
}

Expected<ProgressData> DecodeProgress(std::string_view bytes, const DecodeLimits& limits) {
  MF_TRY(decoded, Decode<schema::Progress>(bytes, limits));
  auto r = decoded.Body();
  ProgressData p;
  MF_TRY(job_id, ReadText("Progress.jobId", r.getJobId()));
  MF_TRY_VOID(CheckId("Progress.jobId", job_id));
  p.job_id = std::move(job_id);
  p.lease_epoch = r.getLeaseEpoch();
  if (r.getStep() < -1) return FieldError("Progress.step", "out of range");
  p.step = r.getStep();
  switch (r.getKind()) {
    case schema::ProgressKind::START: p.kind = ProgressData::Kind::kStart; break;
    case schema::ProgressKind::OUTPUT: p.kind = ProgressData::Kind::kOutput; break;
    case schema::ProgressKind::CACHED: p.kind = ProgressData::Kind::kCached; break;
    case schema::ProgressKind::DONE: p.kind = ProgressData::Kind::kDone; break;
    default: p.kind = ProgressData::Kind::kInfo; break;
  }
  MF_TRY(text, ReadData("Progress.text", r.getText()));
  p.text = std::move(text);
  p.duration_ms = r.getDurationMs();
  return p;
}

// ---------------------------------------------------------------- Register

Expected<std::string> EncodeWorkerHello(const WorkerHelloData& h) {
  MF_TRY_VOID(CheckId("Register.workerId", h.worker_id));
  MF_TRY_VOID(CheckText("Register.hostname", h.hostname.size()));
  MF_TRY_VOID(CheckList("Register.platforms", h.platforms.size()));
  OutgoingMessage<schema::Register> out;
  auto b = out.Body();
  b.setWorkerId(Kj(h.worker_id));
  b.setHostname(Kj(h.hostname));
  b.setSlots(h.slots);
  b.setSoftwareVersion(Kj(h.software_version));
  auto ps = b.initPlatforms(static_cast<unsigned>(h.platforms.size()));
  for (std::size_t i = 0; i < h.platforms.size(); ++i) {
    MF_TRY(p, CheckPlatform(Idx("Register.platforms", i), h.platforms[i].first));
    SetPlatform(ps[static_cast<unsigned>(i)].initPlatform(), p);
    ps[static_cast<unsigned>(i)].setEmulated(h.platforms[i].second);
  }
  return out.Encode();
}

Expected<WorkerHelloData> DecodeWorkerHello(std::string_view bytes, const DecodeLimits& limits) {
  MF_TRY(decoded, Decode<schema::Register>(bytes, limits));
  auto r = decoded.Body();
  WorkerHelloData h;
  MF_TRY(id, ReadText("Register.workerId", r.getWorkerId()));
  MF_TRY_VOID(CheckId("Register.workerId", id));
  h.worker_id = std::move(id);
  MF_TRY(host, ReadText("Register.hostname", r.getHostname()));
  h.hostname = std::move(host);
  h.slots = r.getSlots();
  MF_TRY(version, ReadText("Register.softwareVersion", r.getSoftwareVersion()));
  h.software_version = std::move(version);
  auto ps = r.getPlatforms();
  MF_TRY_VOID(CheckList("Register.platforms", ps.size()));
  for (unsigned i = 0; i < ps.size(); ++i) {
    MF_TRY(p, ReadPlatform(Idx("Register.platforms", i), ps[i].hasPlatform(), ps[i].getPlatform()));
    h.platforms.emplace_back(std::move(p), ps[i].getEmulated());
  }
  return h;
}

Expected<std::string> EncodeShutdown(const std::string& reason) {
  MF_TRY_VOID(CheckText("Shutdown.reason", reason.size()));
  OutgoingMessage<schema::Shutdown> out;
  out.Body().setReason(Kj(reason));
  return out.Encode();
}

Expected<MessageType> PeekMessageType(std::string_view bytes, const DecodeLimits& limits) {
  MF_TRY(info, PeekEnvelope(bytes, limits));
  if (info.body_type == capnp::typeId<schema::StageJob>()) return MessageType::kStageJob;
  if (info.body_type == capnp::typeId<schema::StageResult>()) return MessageType::kStageResult;
  if (info.body_type == capnp::typeId<schema::Progress>()) return MessageType::kProgress;
  if (info.body_type == capnp::typeId<schema::Register>()) return MessageType::kWorkerHello;
  if (info.body_type == capnp::typeId<schema::Shutdown>()) return MessageType::kShutdown;
  return MessageType::kOther;
}

}  // namespace manifold::wire
