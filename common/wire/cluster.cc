#include "common/wire/cluster.h"

#include <sstream>

#include "common/wire/fields.h"
#include "schemas/cluster.capnp.h"

namespace manifold::wire {
using namespace fields;  // NOLINT: the codec helpers

namespace {

Expected<void> WritePlatforms(const std::string& at, const PlatformList& in,
                              capnp::List<schema::WorkerPlatform>::Builder out) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    MF_TRY(p, CheckPlatform(Idx(at, i), in[i].first));
    SetPlatform(out[static_cast<unsigned>(i)].initPlatform(), p);
    out[static_cast<unsigned>(i)].setEmulated(in[i].second);
  }
  return Ok();
}

Expected<PlatformList> ReadPlatforms(const std::string& at,
                                     capnp::List<schema::WorkerPlatform>::Reader in) {
  MF_TRY_VOID(CheckList(at, in.size(), 64));
  PlatformList out;
  for (unsigned i = 0; i < in.size(); ++i) {
    MF_TRY(p, ReadPlatform(Idx(at, i), in[i].hasPlatform(), in[i].getPlatform()));
    out.emplace_back(std::move(p), in[i].getEmulated());
  }
  return out;
}

/// The same checks on both sides of the wire.
Expected<void> CheckProgress(const std::string& progress) {
  if (progress != "plain" && progress != "json")
    return FieldError("SubmitBuild.progress", "must be plain or json");
  return Ok();
}

Expected<void> CheckWorkersAction(const std::string& action, const std::string& worker_id) {
  if (action != "list" && action != "rm" && action != "drain")
    return FieldError("WorkersRequest.action", "unknown action \"" + action.substr(0, 32) + "\"");
  if (action != "list") MF_TRY_VOID(CheckId("WorkersRequest.workerId", worker_id));
  return Ok();
}

Expected<void> WriteLeases(const std::string& at, const std::vector<LeaseData>& in,
                           capnp::List<schema::JobLease>::Builder out) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    MF_TRY_VOID(CheckId(Idx(at, i) + ".jobId", in[i].job_id));
    out[static_cast<unsigned>(i)].setJobId(Kj(in[i].job_id));
    out[static_cast<unsigned>(i)].setLeaseEpoch(in[i].lease_epoch);
  }
  return Ok();
}

Expected<std::vector<LeaseData>> ReadLeases(const std::string& at,
                                            capnp::List<schema::JobLease>::Reader in) {
  MF_TRY_VOID(CheckList(at, in.size(), 1024));
  std::vector<LeaseData> out;
  for (unsigned i = 0; i < in.size(); ++i) {
    MF_TRY(id, ReadText(Idx(at, i) + ".jobId", in[i].getJobId()));
    MF_TRY_VOID(CheckId(Idx(at, i) + ".jobId", id));
    out.push_back({std::move(id), in[i].getLeaseEpoch()});
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------- Join

Expected<std::string> EncodeJoin(const JoinData& j) {
  if (!j.worker_id.empty()) MF_TRY_VOID(CheckId("Join.workerId", j.worker_id));
  MF_TRY_VOID(CheckKey("Join.publicKey", j.public_key));
  MF_TRY_VOID(CheckText("Join.hostname", j.hostname.size()));
  MF_TRY_VOID(CheckList("Join.platforms", j.platforms.size(), 64));
  MF_TRY_VOID(CheckEndpoint("Join.peerEndpoint", j.peer_endpoint));
  MF_TRY_VOID(CheckText("Join.softwareVersion", j.software_version.size()));
  OutgoingMessage<schema::Join> out;
  auto b = out.Body();
  b.setWorkerId(Kj(j.worker_id));
  b.setPublicKey(Kj(j.public_key));
  b.setHostname(Kj(j.hostname));
  MF_TRY_VOID(WritePlatforms("Join.platforms", j.platforms,
                             b.initPlatforms(static_cast<unsigned>(j.platforms.size()))));
  b.setSlots(j.slots);
  b.setPeerEndpoint(Kj(j.peer_endpoint));
  b.setCpus(j.cpus);
  b.setMemoryBytes(j.memory_bytes);
  b.setSoftwareVersion(Kj(j.software_version));
  return out.Encode();
}

Expected<JoinData> DecodeJoin(std::string_view bytes, const DecodeLimits& limits) {
  MF_TRY(d, Decode<schema::Join>(bytes, limits));
  auto r = d.Body();
  JoinData j;
  MF_TRY(id, ReadText("Join.workerId", r.getWorkerId()));
  if (!id.empty()) MF_TRY_VOID(CheckId("Join.workerId", id));
  MF_TRY(key, ReadText("Join.publicKey", r.getPublicKey()));
  MF_TRY_VOID(CheckKey("Join.publicKey", key));
  MF_TRY(host, ReadText("Join.hostname", r.getHostname()));
  MF_TRY(platforms, ReadPlatforms("Join.platforms", r.getPlatforms()));
  MF_TRY(peer, ReadText("Join.peerEndpoint", r.getPeerEndpoint()));
  MF_TRY_VOID(CheckEndpoint("Join.peerEndpoint", peer));
  MF_TRY(version, ReadText("Join.softwareVersion", r.getSoftwareVersion()));
  j.worker_id = std::move(id);
  j.public_key = std::move(key);
  j.hostname = std::move(host);
  j.platforms = std::move(platforms);
  j.slots = r.getSlots();
  if (j.slots == 0 || j.slots > 1024) return FieldError("Join.slots", "must be 1..1024");
  j.peer_endpoint = std::move(peer);
  j.cpus = r.getCpus();
  j.memory_bytes = r.getMemoryBytes();
  j.software_version = std::move(version);
  return j;
}

Expected<std::string> EncodeJoinReply(const JoinReplyData& r) {
  if (!r.error) MF_TRY_VOID(CheckId("JoinReply.workerId", r.worker_id));
  OutgoingMessage<schema::JoinReply> out;
  auto b = out.Body();
  b.setWorkerId(Kj(r.worker_id));
  b.setHeartbeatIntervalMs(r.heartbeat_interval_ms);
  if (r.error) MF_TRY_VOID(WriteError("JoinReply.error", *r.error, b.initError()));
  return out.Encode();
}

Expected<JoinReplyData> DecodeJoinReply(std::string_view bytes, const DecodeLimits& limits) {
  MF_TRY(d, Decode<schema::JoinReply>(bytes, limits));
  auto r = d.Body();
  JoinReplyData j;
  if (r.hasError()) {
    Error e;
    MF_TRY_VOID(ReadError("JoinReply.error", r.getError(), e));
    j.error = std::move(e);
    return j;
  }
  MF_TRY(id, ReadText("JoinReply.workerId", r.getWorkerId()));
  MF_TRY_VOID(CheckId("JoinReply.workerId", id));
  j.worker_id = std::move(id);
  j.heartbeat_interval_ms = r.getHeartbeatIntervalMs();
  return j;
}

// ---------------------------------------------------------------- Heartbeat

Expected<std::string> EncodeHeartbeat(const HeartbeatData& h) {
  MF_TRY_VOID(CheckId("Heartbeat.workerId", h.worker_id));
  MF_TRY_VOID(CheckList("Heartbeat.platforms", h.platforms.size(), 64));
  MF_TRY_VOID(CheckList("Heartbeat.runningJobs", h.running_jobs.size(), 1024));
  MF_TRY_VOID(CheckEndpoint("Heartbeat.peerEndpoint", h.peer_endpoint));
  MF_TRY_VOID(CheckText("Heartbeat.hostname", h.hostname.size()));
  MF_TRY_VOID(CheckText("Heartbeat.degraded", h.degraded.size()));
  MF_TRY_VOID(CheckList("Heartbeat.runningLeases", h.running_leases.size(), 1024));
  OutgoingMessage<schema::Heartbeat> out;
  auto b = out.Body();
  b.setWorkerId(Kj(h.worker_id));
  MF_TRY_VOID(WritePlatforms("Heartbeat.platforms", h.platforms,
                             b.initPlatforms(static_cast<unsigned>(h.platforms.size()))));
  b.setSlots(h.slots);
  auto jobs = b.initRunningJobs(static_cast<unsigned>(h.running_jobs.size()));
  for (std::size_t i = 0; i < h.running_jobs.size(); ++i) {
    MF_TRY_VOID(CheckId(Idx("Heartbeat.runningJobs", i), h.running_jobs[i]));
    jobs.set(static_cast<unsigned>(i), Kj(h.running_jobs[i]));
  }
  b.setDiskFreeBytes(h.disk_free_bytes);
  b.setLoadMilli(h.load_milli);
  b.setDraining(h.draining);
  b.setPeerEndpoint(Kj(h.peer_endpoint));
  b.setCpus(h.cpus);
  b.setMemoryBytes(h.memory_bytes);
  b.setHostname(Kj(h.hostname));
  b.setDegraded(Kj(h.degraded));
  b.setMembersVersion(h.members_version);
  MF_TRY_VOID(WriteLeases("Heartbeat.runningLeases", h.running_leases,
                          b.initRunningLeases(static_cast<unsigned>(h.running_leases.size()))));
  return out.Encode();
}

Expected<HeartbeatData> DecodeHeartbeat(std::string_view bytes, const DecodeLimits& limits) {
  MF_TRY(d, Decode<schema::Heartbeat>(bytes, limits));
  auto r = d.Body();
  HeartbeatData h;
  MF_TRY(id, ReadText("Heartbeat.workerId", r.getWorkerId()));
  MF_TRY_VOID(CheckId("Heartbeat.workerId", id));
  MF_TRY(platforms, ReadPlatforms("Heartbeat.platforms", r.getPlatforms()));
  MF_TRY(jobs, ReadTexts("Heartbeat.runningJobs", r.getRunningJobs(), 1024));
  for (std::size_t i = 0; i < jobs.size(); ++i) MF_TRY_VOID(CheckId(Idx("Heartbeat.runningJobs", i), jobs[i]));
  MF_TRY(peer, ReadText("Heartbeat.peerEndpoint", r.getPeerEndpoint()));
  MF_TRY_VOID(CheckEndpoint("Heartbeat.peerEndpoint", peer));
  MF_TRY(host, ReadText("Heartbeat.hostname", r.getHostname()));
  MF_TRY(degraded, ReadText("Heartbeat.degraded", r.getDegraded()));
  h.worker_id = std::move(id);
  h.platforms = std::move(platforms);
  h.slots = r.getSlots();
  if (h.slots > 1024) return FieldError("Heartbeat.slots", "more than 1024");
  h.running_jobs = std::move(jobs);
  h.disk_free_bytes = r.getDiskFreeBytes();
  h.load_milli = r.getLoadMilli();
  h.draining = r.getDraining();
  h.peer_endpoint = std::move(peer);
  h.cpus = r.getCpus();
  h.memory_bytes = r.getMemoryBytes();
  h.hostname = std::move(host);
  h.degraded = std::move(degraded);
  h.members_version = r.getMembersVersion();
  MF_TRY(leases, ReadLeases("Heartbeat.runningLeases", r.getRunningLeases()));
  h.running_leases = std::move(leases);
  return h;
}

Expected<std::string> EncodeHeartbeatReply(const HeartbeatReplyData& r) {
  MF_TRY_VOID(CheckList("HeartbeatReply.members", r.members.size()));
  MF_TRY_VOID(CheckList("HeartbeatReply.cancel", r.cancel.size(), 1024));
  MF_TRY_VOID(CheckText("HeartbeatReply.cancelReason", r.cancel_reason.size()));
  OutgoingMessage<schema::HeartbeatReply> out;
  auto b = out.Body();
  auto ms = b.initMembers(static_cast<unsigned>(r.members.size()));
  for (std::size_t i = 0; i < r.members.size(); ++i) {
    const auto& m = r.members[i];
    const std::string at = Idx("HeartbeatReply.members", i);
    MF_TRY_VOID(CheckId(at + ".workerId", m.worker_id));
    MF_TRY_VOID(CheckKey(at + ".publicKey", m.public_key));
    MF_TRY_VOID(CheckEndpoint(at + ".endpoint", m.endpoint));
    ms[static_cast<unsigned>(i)].setWorkerId(Kj(m.worker_id));
    ms[static_cast<unsigned>(i)].setPublicKey(Kj(m.public_key));
    ms[static_cast<unsigned>(i)].setEndpoint(Kj(m.endpoint));
  }
  b.setDrain(r.drain);
  b.setMembersFull(r.members_full);
  b.setMembersVersion(r.members_version);
  MF_TRY_VOID(WriteLeases("HeartbeatReply.cancel", r.cancel, b.initCancel(static_cast<unsigned>(r.cancel.size()))));
  b.setCancelReason(Kj(r.cancel_reason));
  if (r.error) MF_TRY_VOID(WriteError("HeartbeatReply.error", *r.error, b.initError()));
  return out.Encode();
}

Expected<HeartbeatReplyData> DecodeHeartbeatReply(std::string_view bytes,
                                                  const DecodeLimits& limits) {
  MF_TRY(d, Decode<schema::HeartbeatReply>(bytes, limits));
  auto r = d.Body();
  HeartbeatReplyData h;
  auto ms = r.getMembers();
  MF_TRY_VOID(CheckList("HeartbeatReply.members", ms.size()));
  for (unsigned i = 0; i < ms.size(); ++i) {
    const std::string at = Idx("HeartbeatReply.members", i);
    MemberData m;
    MF_TRY(id, ReadText(at + ".workerId", ms[i].getWorkerId()));
    MF_TRY(key, ReadText(at + ".publicKey", ms[i].getPublicKey()));
    MF_TRY(endpoint, ReadText(at + ".endpoint", ms[i].getEndpoint()));
    MF_TRY_VOID(CheckId(at + ".workerId", id));
    MF_TRY_VOID(CheckKey(at + ".publicKey", key));
    MF_TRY_VOID(CheckEndpoint(at + ".endpoint", endpoint));
    m.worker_id = std::move(id);
    m.public_key = std::move(key);
    m.endpoint = std::move(endpoint);
    h.members.push_back(std::move(m));
  }
  h.drain = r.getDrain();
  h.members_full = r.getMembersFull();
  h.members_version = r.getMembersVersion();
  MF_TRY(cancel, ReadLeases("HeartbeatReply.cancel", r.getCancel()));
  MF_TRY(reason, ReadText("HeartbeatReply.cancelReason", r.getCancelReason()));
  h.cancel = std::move(cancel);
  h.cancel_reason = std::move(reason);
  if (r.hasError()) {
    Error e;
    MF_TRY_VOID(ReadError("HeartbeatReply.error", r.getError(), e));
    h.error = std::move(e);
  }
  return h;
}

// ---------------------------------------------------------------- blobs

Expected<std::string> EncodeBlobRequest(const BlobRequestData& r) {
  MF_TRY(dg, CheckDigest("BlobRequest.digest", r.digest));
  if (r.length == 0 || r.length > kMaxChunkBytes)
    return FieldError("BlobRequest.length", "must be 1.." + std::to_string(kMaxChunkBytes));
  OutgoingMessage<schema::BlobRequest> out;
  auto b = out.Body();
  b.setDigest(dg.ToString());
  b.setOffset(r.offset);
  b.setLength(r.length);
  return out.Encode();
}

Expected<BlobRequestData> DecodeBlobRequest(std::string_view bytes, const DecodeLimits& limits) {
  MF_TRY(d, Decode<schema::BlobRequest>(bytes, limits));
  auto r = d.Body();
  BlobRequestData out;
  MF_TRY(digest, ReadText("BlobRequest.digest", r.getDigest()));
  MF_TRY(dg, CheckDigest("BlobRequest.digest", digest));
  out.digest = dg.ToString();
  out.offset = r.getOffset();
  out.length = r.getLength();
  if (out.length == 0 || out.length > kMaxChunkBytes)
    return FieldError("BlobRequest.length", "must be 1.." + std::to_string(kMaxChunkBytes));
  return out;
}

Expected<std::string> EncodeBlobChunk(const BlobChunkData& c) {
  MF_TRY(dg, CheckDigest("BlobChunk.digest", c.digest));
  OutgoingMessage<schema::BlobChunk> out;
  auto b = out.Body();
  b.setDigest(dg.ToString());
  b.setOffset(c.offset);
  b.setTotalSize(c.total_size);
  if (c.error) MF_TRY_VOID(WriteError("BlobChunk.error", *c.error, b.initError()));
  return out.Encode();
}

Expected<BlobChunkData> DecodeBlobChunk(std::string_view bytes, const DecodeLimits& limits) {
  MF_TRY(d, Decode<schema::BlobChunk>(bytes, limits));
  auto r = d.Body();
  BlobChunkData c;
  MF_TRY(digest, ReadText("BlobChunk.digest", r.getDigest()));
  MF_TRY(dg, CheckDigest("BlobChunk.digest", digest));
  c.digest = dg.ToString();
  c.offset = r.getOffset();
  c.total_size = r.getTotalSize();
  if (r.hasError()) {
    Error e;
    MF_TRY_VOID(ReadError("BlobChunk.error", r.getError(), e));
    c.error = std::move(e);
  }
  return c;
}

// ---------------------------------------------------------------- SubmitBuild

Expected<std::string> EncodeSubmitBuild(const SubmitBuildData& s) {
  MF_TRY_VOID(CheckText("SubmitBuild.dockerfile", s.dockerfile.size()));
  MF_TRY_VOID(CheckText("SubmitBuild.dockerfileName", s.dockerfile_name.size()));
  MF_TRY_VOID(CheckList("SubmitBuild.context", s.context.size(), kMaxContextFiles));
  MF_TRY_VOID(CheckList("SubmitBuild.platforms", s.platforms.size(), 64));
  MF_TRY_VOID(CheckList("SubmitBuild.buildArgs", s.build_args.size()));
  MF_TRY_VOID(CheckList("SubmitBuild.tags", s.tags.size(), 1000));
  MF_TRY_VOID(CheckList("SubmitBuild.secrets", s.secrets.size(), 1000));
  OutgoingMessage<schema::SubmitBuild> out;
  auto b = out.Body();
  b.setDockerfile(KjData(s.dockerfile));
  b.setDockerfileName(Kj(s.dockerfile_name));
  b.setHasDockerignore(s.dockerignore.has_value());
  if (s.dockerignore) {
    MF_TRY_VOID(CheckText("SubmitBuild.dockerignore", s.dockerignore->size()));
    b.setDockerignore(KjData(*s.dockerignore));
  }
  auto ctx = b.initContext(static_cast<unsigned>(s.context.size()));
  for (std::size_t i = 0; i < s.context.size(); ++i)
    MF_TRY_VOID(WriteContextFile(Idx("SubmitBuild.context", i), s.context[i], ctx[static_cast<unsigned>(i)]));
  auto ps = b.initPlatforms(static_cast<unsigned>(s.platforms.size()));
  for (std::size_t i = 0; i < s.platforms.size(); ++i) {
    MF_TRY(p, CheckPlatform(Idx("SubmitBuild.platforms", i), s.platforms[i]));
    SetPlatform(ps[static_cast<unsigned>(i)], p);
  }
  MF_TRY_VOID(CheckText("SubmitBuild.target", s.target.size()));
  b.setTarget(Kj(s.target));
  auto args = b.initBuildArgs(static_cast<unsigned>(s.build_args.size()));
  unsigned ai = 0;
  for (const auto& [k, v] : s.build_args) {
    MF_TRY_VOID(CheckText(Idx("SubmitBuild.buildArgs", ai), k.size() + v.size()));
    args[ai].setName(Kj(k));
    args[ai].setValue(Kj(v));
    ++ai;
  }
  MF_TRY_VOID(FillTexts("SubmitBuild.tags", s.tags, b.initTags(static_cast<unsigned>(s.tags.size()))));
  b.setNoCache(s.no_cache);
  MF_TRY_VOID(CheckList("SubmitBuild.noCacheFilter", s.no_cache_filter.size()));
  MF_TRY_VOID(FillTexts("SubmitBuild.noCacheFilter", s.no_cache_filter,
                        b.initNoCacheFilter(static_cast<unsigned>(s.no_cache_filter.size()))));
  auto secrets = b.initSecrets(static_cast<unsigned>(s.secrets.size()));
  unsigned si = 0;
  for (const auto& [id, data] : s.secrets) {
    MF_TRY_VOID(CheckText(Idx("SubmitBuild.secrets", si), data.size()));
    secrets[si].setId(Kj(id));
    secrets[si].setData(KjData(data));
    ++si;
  }
  MF_TRY_VOID(CheckList("SubmitBuild.allow", s.allow.size(), 16));
  MF_TRY_VOID(FillTexts("SubmitBuild.allow", s.allow, b.initAllow(static_cast<unsigned>(s.allow.size()))));
  b.setHasSourceDateEpoch(s.source_date_epoch.has_value());
  b.setSourceDateEpoch(s.source_date_epoch.value_or(0));
  b.setCompression(Kj(s.compression));
  b.setPull(s.pull);
  b.setPush(s.push);
  MF_TRY_VOID(CheckProgress(s.progress));
  b.setProgress(Kj(s.progress));
  b.setNoResult(s.no_result);
  MF_TRY_VOID(CheckList("SubmitBuild.images", s.images.size(), 1000));
  auto images = b.initImages(static_cast<unsigned>(s.images.size()));
  for (std::size_t i = 0; i < s.images.size(); ++i) {
    const auto& im = s.images[i];
    const std::string at = Idx("SubmitBuild.images", i);
    MF_TRY_VOID(CheckText(at + ".name", im.reference.size()));
    MF_TRY(d, CheckDigest(at + ".digest", im.digest));
    if (im.media_type.empty() || im.media_type.find(' ') != std::string::npos || im.media_type.size() > 255)
      return FieldError(at + ".mediaType", "not a media type");
    images[static_cast<unsigned>(i)].setName(Kj(im.reference));
    images[static_cast<unsigned>(i)].setValue(im.media_type + " " + d.ToString() + " " + std::to_string(im.size));
  }
  std::string bytes = out.Encode();
  if (bytes.size() > kMaxMessageBytes)
    return LimitError("SubmitBuild (bytes)", bytes.size(), kMaxMessageBytes);
  return bytes;
}

Expected<SubmitBuildData> DecodeSubmitBuild(std::string_view bytes, const DecodeLimits& limits) {
  MF_TRY(d, Decode<schema::SubmitBuild>(bytes, limits));
  auto r = d.Body();
  SubmitBuildData s;
  MF_TRY(dockerfile, ReadData("SubmitBuild.dockerfile", r.getDockerfile()));
  MF_TRY(name, ReadText("SubmitBuild.dockerfileName", r.getDockerfileName()));
  s.dockerfile = std::move(dockerfile);
  s.dockerfile_name = name.empty() ? "Dockerfile" : std::move(name);
  if (r.getHasDockerignore()) {
    MF_TRY(ig, ReadData("SubmitBuild.dockerignore", r.getDockerignore()));
    s.dockerignore = std::move(ig);
  }
  auto ctx = r.getContext();
  MF_TRY_VOID(CheckList("SubmitBuild.context", ctx.size(), kMaxContextFiles));
  for (unsigned i = 0; i < ctx.size(); ++i) {
    MF_TRY(f, ReadContextFile(Idx("SubmitBuild.context", i), ctx[i]));
    s.context.push_back(std::move(f));
  }
  auto ps = r.getPlatforms();
  MF_TRY_VOID(CheckList("SubmitBuild.platforms", ps.size(), 64));
  for (unsigned i = 0; i < ps.size(); ++i) {
    MF_TRY(p, ReadPlatform(Idx("SubmitBuild.platforms", i), true, ps[i]));
    s.platforms.push_back(std::move(p));
  }
  MF_TRY(target, ReadText("SubmitBuild.target", r.getTarget()));
  s.target = std::move(target);
  auto args = r.getBuildArgs();
  MF_TRY_VOID(CheckList("SubmitBuild.buildArgs", args.size()));
  for (unsigned i = 0; i < args.size(); ++i) {
    MF_TRY(k, ReadText(Idx("SubmitBuild.buildArgs", i) + ".name", args[i].getName()));
    MF_TRY(v, ReadText(Idx("SubmitBuild.buildArgs", i) + ".value", args[i].getValue()));
    if (k.empty()) return FieldError(Idx("SubmitBuild.buildArgs", i) + ".name", "empty");
    s.build_args[std::move(k)] = std::move(v);
  }
  MF_TRY(tags, ReadTexts("SubmitBuild.tags", r.getTags(), 1000));
  s.tags = std::move(tags);
  s.no_cache = r.getNoCache();
  MF_TRY(filter, ReadTexts("SubmitBuild.noCacheFilter", r.getNoCacheFilter()));
  s.no_cache_filter = std::move(filter);
  auto secrets = r.getSecrets();
  MF_TRY_VOID(CheckList("SubmitBuild.secrets", secrets.size(), 1000));
  for (unsigned i = 0; i < secrets.size(); ++i) {
    MF_TRY(id, ReadText(Idx("SubmitBuild.secrets", i) + ".id", secrets[i].getId()));
    MF_TRY(data, ReadData(Idx("SubmitBuild.secrets", i) + ".data", secrets[i].getData()));
    if (id.empty()) return FieldError(Idx("SubmitBuild.secrets", i) + ".id", "empty");
    s.secrets[std::move(id)] = std::move(data);
  }
  MF_TRY(allow, ReadTexts("SubmitBuild.allow", r.getAllow(), 16));
  s.allow = std::move(allow);
  if (r.getHasSourceDateEpoch()) {
    if (r.getSourceDateEpoch() < 0) return FieldError("SubmitBuild.sourceDateEpoch", "negative");
    s.source_date_epoch = r.getSourceDateEpoch();
  }
  MF_TRY(compression, ReadText("SubmitBuild.compression", r.getCompression()));
  s.compression = compression.empty() ? "gzip" : std::move(compression);
  if (s.compression != "gzip" && s.compression != "zstd" && s.compression != "none")
    return FieldError("SubmitBuild.compression", "unknown compression \"" + s.compression.substr(0, 32) + "\"");
  s.pull = r.getPull();
  s.push = r.getPush();
  MF_TRY(progress, ReadText("SubmitBuild.progress", r.getProgress()));
  s.progress = progress.empty() ? "plain" : std::move(progress);
  MF_TRY_VOID(CheckProgress(s.progress));
  s.no_result = r.getNoResult();
  auto images = r.getImages();
  MF_TRY_VOID(CheckList("SubmitBuild.images", images.size(), 1000));
  for (unsigned i = 0; i < images.size(); ++i) {
    const std::string at = Idx("SubmitBuild.images", i);
    wire::SubmitBuildData::LocalImage im;
    MF_TRY(ref, ReadText(at + ".name", images[i].getName()));
    MF_TRY(value, ReadText(at + ".value", images[i].getValue()));
    std::istringstream in(value);
    std::string digest, size, extra;
    in >> im.media_type >> digest >> size;
    if (ref.empty() || im.media_type.empty() || !(in >> extra).fail() || size.empty() ||
        size.find_first_not_of("0123456789") != std::string::npos || size.size() > 19)
      return FieldError(at, "expected \"MEDIATYPE DIGEST SIZE\"");
    MF_TRY(checked, CheckDigest(at + ".digest", digest));
    im.reference = std::move(ref);
    im.digest = checked.ToString();
    im.size = std::stoull(size);
    s.images.push_back(std::move(im));
  }
  return s;
}

// ---------------------------------------------------------------- BuildEvent

namespace {
Expected<void> WritePairs(const std::string& at, const std::vector<std::pair<std::string, std::string>>& in,
                          capnp::List<schema::BuildArg>::Builder out) {
  for (std::size_t i = 0; i < in.size(); ++i) {
    MF_TRY_VOID(CheckText(Idx(at, i), in[i].first.size() + in[i].second.size()));
    out[static_cast<unsigned>(i)].setName(Kj(in[i].first));
    out[static_cast<unsigned>(i)].setValue(Kj(in[i].second));
  }
  return Ok();
}
Expected<std::vector<std::pair<std::string, std::string>>> ReadPairs(
    const std::string& at, capnp::List<schema::BuildArg>::Reader in) {
  MF_TRY_VOID(CheckList(at, in.size()));
  std::vector<std::pair<std::string, std::string>> out;
  for (unsigned i = 0; i < in.size(); ++i) {
    MF_TRY(k, ReadText(Idx(at, i) + ".name", in[i].getName()));
    MF_TRY(v, ReadText(Idx(at, i) + ".value", in[i].getValue()));
    out.emplace_back(std::move(k), std::move(v));
  }
  return out;
}
}  // namespace

Expected<std::string> EncodeBuildEvent(const BuildEventData& e) {
  MF_TRY_VOID(CheckText("BuildEvent.text", e.text.size()));
  MF_TRY_VOID(CheckList("BuildEvent.manifests", e.manifests.size()));
  MF_TRY_VOID(CheckList("BuildEvent.pushed", e.pushed.size()));
  OutgoingMessage<schema::BuildEvent> out;
  auto b = out.Body();
  switch (e.kind) {
    case BuildEventData::Kind::kLine: b.setKind(schema::BuildEventKind::LINE); break;
    case BuildEventData::Kind::kDone: b.setKind(schema::BuildEventKind::DONE); break;
    case BuildEventData::Kind::kFailed: b.setKind(schema::BuildEventKind::FAILED); break;
    case BuildEventData::Kind::kTrace: b.setKind(schema::BuildEventKind::TRACE); break;
  }
  b.setText(KjData(e.text));
  if (e.error) MF_TRY_VOID(WriteError("BuildEvent.error", *e.error, b.initError()));
  MF_TRY_VOID(CheckText("BuildEvent.indexDigest", e.index_digest.size()));
  b.setIndexDigest(Kj(e.index_digest));
  MF_TRY_VOID(WritePairs("BuildEvent.manifests", e.manifests,
                         b.initManifests(static_cast<unsigned>(e.manifests.size()))));
  MF_TRY_VOID(WritePairs("BuildEvent.pushed", e.pushed,
                         b.initPushed(static_cast<unsigned>(e.pushed.size()))));
  b.setStepsExecuted(e.steps_executed);
  b.setStepsCached(e.steps_cached);
  b.setJobsRun(e.jobs_run);
  b.setJobsCached(e.jobs_cached);
  return out.Encode();
}

Expected<BuildEventData> DecodeBuildEvent(std::string_view bytes, const DecodeLimits& limits) {
  MF_TRY(d, Decode<schema::BuildEvent>(bytes, limits));
  auto r = d.Body();
  BuildEventData e;
  switch (r.getKind()) {
    case schema::BuildEventKind::LINE: e.kind = BuildEventData::Kind::kLine; break;
    case schema::BuildEventKind::DONE: e.kind = BuildEventData::Kind::kDone; break;
    case schema::BuildEventKind::FAILED: e.kind = BuildEventData::Kind::kFailed; break;
    case schema::BuildEventKind::TRACE: e.kind = BuildEventData::Kind::kTrace; break;
    default: return FieldError("BuildEvent.kind", "unknown");
  }
  MF_TRY(text, ReadData("BuildEvent.text", r.getText()));
  e.text = std::move(text);
  if (r.hasError()) {
    Error err;
    MF_TRY_VOID(ReadError("BuildEvent.error", r.getError(), err));
    e.error = std::move(err);
  }
  if (e.kind == BuildEventData::Kind::kFailed && !e.error)
    return FieldError("BuildEvent.error", "missing on a failure");
  MF_TRY(index, ReadText("BuildEvent.indexDigest", r.getIndexDigest()));
  if (!index.empty()) MF_TRY_VOID(CheckDigest("BuildEvent.indexDigest", index));
  e.index_digest = std::move(index);
  MF_TRY(manifests, ReadPairs("BuildEvent.manifests", r.getManifests()));
  MF_TRY(pushed, ReadPairs("BuildEvent.pushed", r.getPushed()));
  e.manifests = std::move(manifests);
  e.pushed = std::move(pushed);
  e.steps_executed = r.getStepsExecuted();
  e.steps_cached = r.getStepsCached();
  e.jobs_run = r.getJobsRun();
  e.jobs_cached = r.getJobsCached();
  return e;
}

// ---------------------------------------------------------------- push

Expected<std::string> EncodePushBlobs(const PushBlobsData& p) {
  MF_TRY_VOID(CheckText("PushBlobs.reference", p.reference.size()));
  MF_TRY_VOID(CheckList("PushBlobs.layers", p.layers.size()));
  OutgoingMessage<schema::PushBlobs> out;
  auto b = out.Body();
  b.setReference(Kj(p.reference));
  auto ls = b.initLayers(static_cast<unsigned>(p.layers.size()));
  for (std::size_t i = 0; i < p.layers.size(); ++i)
    MF_TRY_VOID(WriteLayer(Idx("PushBlobs.layers", i), p.layers[i], ls[static_cast<unsigned>(i)]));
  return out.Encode();
}

Expected<PushBlobsData> DecodePushBlobs(std::string_view bytes, const DecodeLimits& limits) {
  MF_TRY(d, Decode<schema::PushBlobs>(bytes, limits));
  auto r = d.Body();
  PushBlobsData p;
  MF_TRY(reference, ReadText("PushBlobs.reference", r.getReference()));
  p.reference = std::move(reference);
  auto ls = r.getLayers();
  MF_TRY_VOID(CheckList("PushBlobs.layers", ls.size()));
  for (unsigned i = 0; i < ls.size(); ++i) {
    MF_TRY(l, ReadLayer(Idx("PushBlobs.layers", i), ls[i]));
    p.layers.push_back(std::move(l));
  }
  return p;
}

Expected<std::string> EncodePushBlobsReply(const PushBlobsReplyData& r) {
  OutgoingMessage<schema::PushBlobsReply> out;
  auto b = out.Body();
  b.setUploaded(r.uploaded);
  b.setMounted(r.mounted);
  b.setExisting(r.existing);
  if (r.error) MF_TRY_VOID(WriteError("PushBlobsReply.error", *r.error, b.initError()));
  return out.Encode();
}

Expected<PushBlobsReplyData> DecodePushBlobsReply(std::string_view bytes, const DecodeLimits& limits) {
  MF_TRY(d, Decode<schema::PushBlobsReply>(bytes, limits));
  auto r = d.Body();
  PushBlobsReplyData out;
  out.uploaded = r.getUploaded();
  out.mounted = r.getMounted();
  out.existing = r.getExisting();
  if (r.hasError()) {
    Error e;
    MF_TRY_VOID(ReadError("PushBlobsReply.error", r.getError(), e));
    out.error = std::move(e);
  }
  return out;
}

// ---------------------------------------------------------------- builds

namespace {
Expected<void> CheckBuildsAction(const std::string& action) {
  if (action != "list" && action != "cancel")
    return FieldError("BuildsRequest.action", "unknown action \"" + action.substr(0, 32) + "\"");
  return Ok();
}
}  // namespace

Expected<std::string> EncodeBuildsRequest(const BuildsRequestData& r) {
  MF_TRY_VOID(CheckBuildsAction(r.action));
  OutgoingMessage<schema::BuildsRequest> out;
  out.Body().setAction(Kj(r.action));
  out.Body().setNumber(r.number);
  return out.Encode();
}

Expected<BuildsRequestData> DecodeBuildsRequest(std::string_view bytes, const DecodeLimits& limits) {
  MF_TRY(d, Decode<schema::BuildsRequest>(bytes, limits));
  BuildsRequestData r;
  MF_TRY(action, ReadText("BuildsRequest.action", d.Body().getAction()));
  MF_TRY_VOID(CheckBuildsAction(action));
  r.action = std::move(action);
  r.number = d.Body().getNumber();
  return r;
}

Expected<std::string> EncodeBuildsReply(const BuildsReplyData& r) {
  MF_TRY_VOID(CheckList("BuildsReply.builds", r.builds.size()));
  OutgoingMessage<schema::BuildsReply> out;
  auto b = out.Body();
  auto bs = b.initBuilds(static_cast<unsigned>(r.builds.size()));
  for (std::size_t i = 0; i < r.builds.size(); ++i) {
    const auto& in = r.builds[i];
    MF_TRY_VOID(CheckText(Idx("BuildsReply.builds", i), in.state.size() + in.platforms.size() + in.tags.size()));
    auto o = bs[static_cast<unsigned>(i)];
    o.setNumber(in.number);
    o.setState(Kj(in.state));
    o.setPlatforms(Kj(in.platforms));
    o.setTags(Kj(in.tags));
    o.setSeconds(in.seconds);
    o.setRunningJobs(in.running_jobs);
  }
  if (r.error) MF_TRY_VOID(WriteError("BuildsReply.error", *r.error, b.initError()));
  return out.Encode();
}

Expected<BuildsReplyData> DecodeBuildsReply(std::string_view bytes, const DecodeLimits& limits) {
  MF_TRY(d, Decode<schema::BuildsReply>(bytes, limits));
  auto r = d.Body();
  BuildsReplyData out;
  auto bs = r.getBuilds();
  MF_TRY_VOID(CheckList("BuildsReply.builds", bs.size()));
  for (unsigned i = 0; i < bs.size(); ++i) {
    const std::string at = Idx("BuildsReply.builds", i);
    BuildInfoData b;
    b.number = bs[i].getNumber();
    MF_TRY(state, ReadText(at + ".state", bs[i].getState()));
    MF_TRY(platforms, ReadText(at + ".platforms", bs[i].getPlatforms()));
    MF_TRY(tags, ReadText(at + ".tags", bs[i].getTags()));
    b.state = std::move(state);
    b.platforms = std::move(platforms);
    b.tags = std::move(tags);
    b.seconds = bs[i].getSeconds();
    b.running_jobs = bs[i].getRunningJobs();
    out.builds.push_back(std::move(b));
  }
  if (r.hasError()) {
    Error e;
    MF_TRY_VOID(ReadError("BuildsReply.error", r.getError(), e));
    out.error = std::move(e);
  }
  return out;
}

// ---------------------------------------------------------------- cancel

Expected<std::string> EncodeCancelBuild(const CancelBuildData& c) {
  MF_TRY_VOID(CheckText("CancelBuild.reason", c.reason.size()));
  OutgoingMessage<schema::CancelBuild> out;
  out.Body().setReason(Kj(c.reason));
  return out.Encode();
}

Expected<CancelBuildData> DecodeCancelBuild(std::string_view bytes, const DecodeLimits& limits) {
  MF_TRY(d, Decode<schema::CancelBuild>(bytes, limits));
  MF_TRY(reason, ReadText("CancelBuild.reason", d.Body().getReason()));
  MF_TRY_VOID(CheckText("CancelBuild.reason", reason.size()));
  return CancelBuildData{std::move(reason)};
}

// ---------------------------------------------------------------- workers

Expected<std::string> EncodeWorkersRequest(const WorkersRequestData& r) {
  MF_TRY_VOID(CheckWorkersAction(r.action, r.worker_id));
  OutgoingMessage<schema::WorkersRequest> out;
  out.Body().setAction(Kj(r.action));
  out.Body().setWorkerId(Kj(r.worker_id));
  return out.Encode();
}

Expected<WorkersRequestData> DecodeWorkersRequest(std::string_view bytes,
                                                  const DecodeLimits& limits) {
  MF_TRY(d, Decode<schema::WorkersRequest>(bytes, limits));
  WorkersRequestData r;
  MF_TRY(action, ReadText("WorkersRequest.action", d.Body().getAction()));
  MF_TRY(id, ReadText("WorkersRequest.workerId", d.Body().getWorkerId()));
  MF_TRY_VOID(CheckWorkersAction(action, id));
  r.action = std::move(action);
  r.worker_id = std::move(id);
  return r;
}

Expected<std::string> EncodeWorkersReply(const WorkersReplyData& r) {
  MF_TRY_VOID(CheckList("WorkersReply.workers", r.workers.size()));
  OutgoingMessage<schema::WorkersReply> out;
  auto b = out.Body();
  auto ws = b.initWorkers(static_cast<unsigned>(r.workers.size()));
  for (std::size_t i = 0; i < r.workers.size(); ++i) {
    const auto& w = r.workers[i];
    const std::string at = Idx("WorkersReply.workers", i);
    MF_TRY_VOID(CheckId(at + ".workerId", w.worker_id));
    MF_TRY_VOID(CheckText(at + ".address", w.address.size() + w.state.size() + w.hostname.size() + w.note.size()));
    auto wb = ws[static_cast<unsigned>(i)];
    wb.setWorkerId(Kj(w.worker_id));
    wb.setAddress(Kj(w.address));
    MF_TRY_VOID(WritePlatforms(at + ".platforms", w.platforms,
                               wb.initPlatforms(static_cast<unsigned>(w.platforms.size()))));
    wb.setState(Kj(w.state));
    wb.setRunningJobs(w.running_jobs);
    wb.setSlots(w.slots);
    wb.setCpus(w.cpus);
    wb.setMemoryBytes(w.memory_bytes);
    wb.setDiskFreeBytes(w.disk_free_bytes);
    wb.setHostname(Kj(w.hostname));
    wb.setNote(Kj(w.note));
  }
  if (r.error) MF_TRY_VOID(WriteError("WorkersReply.error", *r.error, b.initError()));
  return out.Encode();
}

Expected<WorkersReplyData> DecodeWorkersReply(std::string_view bytes,
                                              const DecodeLimits& limits) {
  MF_TRY(d, Decode<schema::WorkersReply>(bytes, limits));
  auto r = d.Body();
  WorkersReplyData out;
  auto ws = r.getWorkers();
  MF_TRY_VOID(CheckList("WorkersReply.workers", ws.size()));
  for (unsigned i = 0; i < ws.size(); ++i) {
    const std::string at = Idx("WorkersReply.workers", i);
    WorkerInfoData w;
    MF_TRY(id, ReadText(at + ".workerId", ws[i].getWorkerId()));
    MF_TRY_VOID(CheckId(at + ".workerId", id));
    MF_TRY(address, ReadText(at + ".address", ws[i].getAddress()));
    MF_TRY(platforms, ReadPlatforms(at + ".platforms", ws[i].getPlatforms()));
    MF_TRY(state, ReadText(at + ".state", ws[i].getState()));
    MF_TRY(host, ReadText(at + ".hostname", ws[i].getHostname()));
    MF_TRY(note, ReadText(at + ".note", ws[i].getNote()));
    w.worker_id = std::move(id);
    w.note = std::move(note);
    w.address = std::move(address);
    w.platforms = std::move(platforms);
    w.state = std::move(state);
    w.running_jobs = ws[i].getRunningJobs();
    w.slots = ws[i].getSlots();
    w.cpus = ws[i].getCpus();
    w.memory_bytes = ws[i].getMemoryBytes();
    w.disk_free_bytes = ws[i].getDiskFreeBytes();
    w.hostname = std::move(host);
    out.workers.push_back(std::move(w));
  }
  if (r.hasError()) {
    Error e;
    MF_TRY_VOID(ReadError("WorkersReply.error", r.getError(), e));
    out.error = std::move(e);
  }
  return out;
}

Expected<ClusterType> PeekClusterType(std::string_view bytes, const DecodeLimits& limits) {
  MF_TRY(info, PeekEnvelope(bytes, limits));
  const std::pair<std::uint64_t, ClusterType> types[] = {
      {capnp::typeId<schema::Join>(), ClusterType::kJoin},
      {capnp::typeId<schema::JoinReply>(), ClusterType::kJoinReply},
      {capnp::typeId<schema::Heartbeat>(), ClusterType::kHeartbeat},
      {capnp::typeId<schema::HeartbeatReply>(), ClusterType::kHeartbeatReply},
      {capnp::typeId<schema::BlobRequest>(), ClusterType::kBlobRequest},
      {capnp::typeId<schema::BlobChunk>(), ClusterType::kBlobChunk},
      {capnp::typeId<schema::SubmitBuild>(), ClusterType::kSubmitBuild},
      {capnp::typeId<schema::BuildEvent>(), ClusterType::kBuildEvent},
      {capnp::typeId<schema::CancelBuild>(), ClusterType::kCancelBuild},
      {capnp::typeId<schema::PushBlobs>(), ClusterType::kPushBlobs},
      {capnp::typeId<schema::PushBlobsReply>(), ClusterType::kPushBlobsReply},
      {capnp::typeId<schema::BuildsRequest>(), ClusterType::kBuildsRequest},
      {capnp::typeId<schema::BuildsReply>(), ClusterType::kBuildsReply},
      {capnp::typeId<schema::WorkersRequest>(), ClusterType::kWorkersRequest},
      {capnp::typeId<schema::WorkersReply>(), ClusterType::kWorkersReply},
  };
  for (const auto& [id, t] : types)
    if (info.body_type == id) return t;
  return ClusterType::kOther;
}

}  // namespace manifold::wire
