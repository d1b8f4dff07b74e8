#include "common/wire/cluster.h"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include "common/wire/stage_job.h"
#include "schemas/cluster.capnp.h"
#include "schemas/scheduler.capnp.h"

namespace manifold::wire {
namespace {

// A well-formed Z85 CURVE public key (the libzmq documentation's example).
const std::string kKey = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
const std::string kKey2 = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
const std::string kDigestA = "sha256:" + std::string(64, 'a');
const std::string kDigestB = "sha256:" + std::string(64, 'b');
const std::string kDigestC = "sha256:" + std::string(64, 'c');

oci::Platform P(std::string_view spec) { return *oci::ParsePlatform(spec); }

void ExpectError(const Error& e, ErrorKind kind, const std::string& code,
                 const std::string& message) {
  EXPECT_EQ(e.kind, kind) << ErrorKindName(e.kind) << ": " << e.message;
  EXPECT_EQ(e.code, code) << e.message;
  EXPECT_EQ(e.message, message);
}

Error RichError() {
  Error e = MakeError(ErrorKind::kResourceExhausted, "cas.full", "disk full");
  e.context = {"storing layer", "running step 3"};
  e.detail = "  RUN make\n  ^";
  e.where = SourceRange{"Dockerfile", 7, 3, 9};
  return e;
}

void ExpectSameError(const Error& a, const Error& b) {
  EXPECT_EQ(a.kind, b.kind);
  EXPECT_EQ(a.code, b.code);
  EXPECT_EQ(a.message, b.message);
  EXPECT_EQ(a.context, b.context);
  EXPECT_EQ(a.detail, b.detail);
  ASSERT_EQ(a.where.has_value(), b.where.has_value());
  if (a.where) {
    EXPECT_EQ(a.where->file, b.where->file);
    EXPECT_EQ(a.where->line, b.where->line);
    EXPECT_EQ(a.where->column, b.where->column);
    EXPECT_EQ(a.where->end_line, b.where->end_line);
  }
}

// ---------------------------------------------------------------- Join

JoinData FullJoin() {
  JoinData j;
  j.worker_id = "w-1_a";
  j.public_key = kKey;
  j.hostname = "builder-01.example";
  j.platforms = {{P("linux/amd64"), false}, {P("linux/arm/v7"), true}};
  j.slots = 4;
  j.peer_endpoint = "tcp://10.0.0.7:7701";
  j.cpus = 16;
  j.memory_bytes = 64ull << 30;
  j.software_version = "manifold 0.6.0";
  return j;
}

TEST(ClusterWireTest, JoinRoundTripsEveryField) {
  const JoinData in = FullJoin();
  auto bytes = EncodeJoin(in);
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  auto out = DecodeJoin(*bytes);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->worker_id, in.worker_id);
  EXPECT_EQ(out->public_key, in.public_key);
  EXPECT_EQ(out->hostname, in.hostname);
  EXPECT_EQ(out->platforms, in.platforms);
  EXPECT_EQ(out->slots, 4u);
  EXPECT_EQ(out->peer_endpoint, in.peer_endpoint);
  EXPECT_EQ(out->cpus, 16u);
  EXPECT_EQ(out->memory_bytes, 64ull << 30);
  EXPECT_EQ(out->software_version, in.software_version);
}

TEST(ClusterWireTest, JoinWithoutWantedIdOrEndpointRoundTrips) {
  JoinData in = FullJoin();
  in.worker_id.clear();
  in.peer_endpoint.clear();
  auto bytes = EncodeJoin(in);
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  auto out = DecodeJoin(*bytes);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->worker_id, "");
  EXPECT_EQ(out->peer_endpoint, "");
}

TEST(ClusterWireTest, JoinRefusesShortKeyOnBothSides) {
  JoinData in = FullJoin();
  in.public_key = kKey.substr(0, 39);
  auto bytes = EncodeJoin(in);
  ASSERT_FALSE(bytes.ok());
  ExpectError(bytes.error(), ErrorKind::kInvalidInput, "wire.field",
              "Join.publicKey: not a 40-character Z85 key");

  OutgoingMessage<schema::Join> raw;
  raw.Body().setPublicKey(kKey.substr(0, 39));
  raw.Body().setSlots(1);
  auto decoded = DecodeJoin(raw.Encode());
  ASSERT_FALSE(decoded.ok());
  ExpectError(decoded.error(), ErrorKind::kInvalidInput, "wire.field",
              "Join.publicKey: not a 40-character Z85 key");
}

TEST(ClusterWireTest, JoinRefusesKeyOutsideZ85Alphabet) {
  JoinData in = FullJoin();
  in.public_key = std::string(39, 'a') + " ";
  auto bytes = EncodeJoin(in);
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.error().code, "wire.field");
  EXPECT_NE(bytes.error().message.find("Join.publicKey"), std::string::npos);
}

TEST(ClusterWireTest, JoinRefusesBadIdEndpointAndSlots) {
  JoinData in = FullJoin();
  in.worker_id = "../w";
  auto bytes = EncodeJoin(in);
  ASSERT_FALSE(bytes.ok());
  ExpectError(bytes.error(), ErrorKind::kSecurity, "wire.id",
              "Join.workerId: \"../w\" is not a valid id ([A-Za-z0-9_-]{1,64})");

  in = FullJoin();
  in.peer_endpoint = "ipc:///tmp/x";
  bytes = EncodeJoin(in);
  ASSERT_FALSE(bytes.ok());
  ExpectError(bytes.error(), ErrorKind::kInvalidInput, "wire.field",
              "Join.peerEndpoint: not a tcp:// endpoint");

  // Slots are checked where they are read.
  OutgoingMessage<schema::Join> raw;
  raw.Body().setPublicKey(kKey);
  raw.Body().setSlots(0);
  auto decoded = DecodeJoin(raw.Encode());
  ASSERT_FALSE(decoded.ok());
  ExpectError(decoded.error(), ErrorKind::kInvalidInput, "wire.field",
              "Join.slots: must be 1..1024");

  OutgoingMessage<schema::Join> many;
  many.Body().setPublicKey(kKey);
  many.Body().setSlots(1025);
  decoded = DecodeJoin(many.Encode());
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().message, "Join.slots: must be 1..1024");
}

TEST(ClusterWireTest, JoinReplyRoundTrips) {
  JoinReplyData in;
  in.worker_id = "w7";
  in.heartbeat_interval_ms = 2500;
  auto bytes = EncodeJoinReply(in);
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  auto out = DecodeJoinReply(*bytes);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->worker_id, "w7");
  EXPECT_EQ(out->heartbeat_interval_ms, 2500u);
  EXPECT_FALSE(out->error.has_value());
}

TEST(ClusterWireTest, JoinReplyCarriesARefusal) {
  JoinReplyData in;
  in.error = RichError();
  auto bytes = EncodeJoinReply(in);  // no id needed when refused
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  auto out = DecodeJoinReply(*bytes);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  ASSERT_TRUE(out->error.has_value());
  ExpectSameError(*in.error, *out->error);

  JoinReplyData bad;
  bad.worker_id = "a b";
  auto refused = EncodeJoinReply(bad);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(refused.error().code, "wire.id");
}

// ---------------------------------------------------------------- Heartbeat

TEST(ClusterWireTest, HeartbeatRoundTripsEveryField) {
  HeartbeatData in;
  in.worker_id = "w1";
  in.platforms = {{P("linux/arm64"), false}, {P("linux/amd64"), true}};
  in.slots = 3;
  in.running_jobs = {"job-1", "job_2"};
  in.disk_free_bytes = 123456789012ull;
  in.load_milli = 1750;
  in.draining = true;
  in.peer_endpoint = "tcp://192.168.1.2:7701";
  in.cpus = 8;
  in.memory_bytes = 16ull << 30;
  in.hostname = "pi-5";
  in.degraded = "low disk: 12 MiB free";
  in.members_version = 9;
  auto bytes = EncodeHeartbeat(in);
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  auto out = DecodeHeartbeat(*bytes);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->worker_id, "w1");
  EXPECT_EQ(out->platforms, in.platforms);
  EXPECT_EQ(out->slots, 3u);
  EXPECT_EQ(out->running_jobs, in.running_jobs);
  EXPECT_EQ(out->disk_free_bytes, in.disk_free_bytes);
  EXPECT_EQ(out->load_milli, 1750u);
  EXPECT_TRUE(out->draining);
  EXPECT_EQ(out->peer_endpoint, in.peer_endpoint);
  EXPECT_EQ(out->cpus, 8u);
  EXPECT_EQ(out->memory_bytes, in.memory_bytes);
  EXPECT_EQ(out->hostname, "pi-5");
  EXPECT_EQ(out->degraded, "low disk: 12 MiB free");
  EXPECT_EQ(out->members_version, 9u);
}

TEST(ClusterWireTest, HeartbeatRefusesInvalidWorkerId) {
  HeartbeatData in;
  in.worker_id = "a b";
  auto bytes = EncodeHeartbeat(in);
  ASSERT_FALSE(bytes.ok());
  ExpectError(bytes.error(), ErrorKind::kSecurity, "wire.id",
              "Heartbeat.workerId: \"a b\" is not a valid id ([A-Za-z0-9_-]{1,64})");

  OutgoingMessage<schema::Heartbeat> raw;
  raw.Body().setWorkerId("a b");
  auto decoded = DecodeHeartbeat(raw.Encode());
  ASSERT_FALSE(decoded.ok());
  ExpectError(decoded.error(), ErrorKind::kSecurity, "wire.id",
              "Heartbeat.workerId: \"a b\" is not a valid id ([A-Za-z0-9_-]{1,64})");
}

TEST(ClusterWireTest, HeartbeatRefusesBadRunningJobId) {
  HeartbeatData in;
  in.worker_id = "w1";
  in.running_jobs = {"ok", "../etc"};
  auto bytes = EncodeHeartbeat(in);
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(bytes.error().code, "wire.id");
  EXPECT_EQ(bytes.error().message.rfind("Heartbeat.runningJobs[1]: ", 0), 0u)
      << bytes.error().message;

  OutgoingMessage<schema::Heartbeat> raw;
  raw.Body().setWorkerId("w1");
  raw.Body().setSlots(2000);
  auto decoded = DecodeHeartbeat(raw.Encode());
  ASSERT_FALSE(decoded.ok());
  ExpectError(decoded.error(), ErrorKind::kInvalidInput, "wire.field",
              "Heartbeat.slots: more than 1024");
}

TEST(ClusterWireTest, HeartbeatReplyRoundTripsMembersDrainAndError) {
  HeartbeatReplyData in;
  in.members = {{"coordinator", kKey, ""}, {"w2", kKey2, "tcp://10.0.0.2:7701"}};
  in.drain = true;
  in.error = MakeError(ErrorKind::kSecurity, "cluster.revoked", "worker w1 was removed");
  in.members_full = true;
  in.members_version = 77;
  in.cancel = {{"job-1", 1700000000000001}, {"job-2", 3}};
  in.cancel_reason = "the build failed";
  auto bytes = EncodeHeartbeatReply(in);
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  auto out = DecodeHeartbeatReply(*bytes);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  ASSERT_EQ(out->members.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(out->members[i].worker_id, in.members[i].worker_id);
    EXPECT_EQ(out->members[i].public_key, in.members[i].public_key);
    EXPECT_EQ(out->members[i].endpoint, in.members[i].endpoint);
  }
  EXPECT_TRUE(out->drain);
  EXPECT_TRUE(out->members_full);
  EXPECT_EQ(out->members_version, 77u);
  EXPECT_EQ(out->cancel, in.cancel);
  EXPECT_EQ(out->cancel_reason, "the build failed");
  ASSERT_TRUE(out->error.has_value());
  ExpectSameError(*in.error, *out->error);
}

TEST(ClusterWireTest, HeartbeatReplyRefusesBadMemberKey) {
  HeartbeatReplyData in;
  in.members = {{"w2", "short", ""}};
  auto bytes = EncodeHeartbeatReply(in);
  ASSERT_FALSE(bytes.ok());
  ExpectError(bytes.error(), ErrorKind::kInvalidInput, "wire.field",
              "HeartbeatReply.members[0].publicKey: not a 40-character Z85 key");
}

TEST(ClusterWireTest, LeasesRoundTripAndBadJobIdsAreRefused) {
  HeartbeatData in;
  in.worker_id = "w1";
  in.running_leases = {{"a", 9}, {"b", 1ull << 60}};
  auto bytes = EncodeHeartbeat(in);
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  auto out = DecodeHeartbeat(*bytes);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->running_leases, in.running_leases);

  OutgoingMessage<schema::HeartbeatReply> raw;
  raw.Body().initCancel(2)[1].setJobId("../x");
  auto decoded = DecodeHeartbeatReply(raw.Encode());
  ASSERT_FALSE(decoded.ok());
  ExpectError(decoded.error(), ErrorKind::kSecurity, "wire.id",
              "HeartbeatReply.cancel[0].jobId: \"\" is not a valid id ([A-Za-z0-9_-]{1,64})");
}

TEST(ClusterWireTest, PushBlobsAndItsReplyRoundTrip) {
  PushBlobsData in;
  in.reference = "registry.example:5000/team/app:1";
  in.layers = {{"application/vnd.oci.image.layer.v1.tar+gzip", kDigestA, kDigestB, 1234}};
  auto bytes = EncodePushBlobs(in);
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  auto out = DecodePushBlobs(*bytes);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->reference, in.reference);
  ASSERT_EQ(out->layers.size(), 1u);
  EXPECT_EQ(out->layers[0], in.layers[0]);

  PushBlobsReplyData reply;
  reply.uploaded = 2;
  reply.mounted = 1;
  reply.existing = 3;
  reply.error = MakeError(ErrorKind::kSecurity, "registry.auth", "denied");
  auto rbytes = EncodePushBlobsReply(reply);
  ASSERT_TRUE(rbytes.ok()) << rbytes.error().ToString();
  auto rout = DecodePushBlobsReply(*rbytes);
  ASSERT_TRUE(rout.ok()) << rout.error().ToString();
  EXPECT_EQ(rout->uploaded, 2u);
  EXPECT_EQ(rout->mounted, 1u);
  EXPECT_EQ(rout->existing, 3u);
  ASSERT_TRUE(rout->error.has_value());
  ExpectSameError(*reply.error, *rout->error);

  in.layers[0].digest = "sha256:nothex";
  auto bad = EncodePushBlobs(in);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message.rfind("PushBlobs.layers[0]", 0), 0u) << bad.error().message;
}

TEST(ClusterWireTest, BuildsRequestAndReplyRoundTrip) {
  auto bytes = EncodeBuildsRequest({"cancel", 7});
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  auto req = DecodeBuildsRequest(*bytes);
  ASSERT_TRUE(req.ok()) << req.error().ToString();
  EXPECT_EQ(req->action, "cancel");
  EXPECT_EQ(req->number, 7u);
  auto bad = EncodeBuildsRequest({"stop", 1});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "BuildsRequest.action: unknown action \"stop\"");

  BuildsReplyData reply;
  reply.builds = {{3, "running", "linux/amd64,linux/arm64", "reg/app:1", 42, 2}, {4, "queued", "linux/amd64", "", 5, 0}};
  reply.error = MakeError(ErrorKind::kInvalidInput, "coordinator.build.unknown", "no build 9");
  auto rbytes = EncodeBuildsReply(reply);
  ASSERT_TRUE(rbytes.ok()) << rbytes.error().ToString();
  auto out = DecodeBuildsReply(*rbytes);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->builds, reply.builds);
  ASSERT_TRUE(out->error.has_value());
  ExpectSameError(*reply.error, *out->error);
}

TEST(ClusterWireTest, CancelBuildRoundTrips) {
  auto bytes = EncodeCancelBuild({"interrupted (SIGINT)"});
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  auto out = DecodeCancelBuild(*bytes);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->reason, "interrupted (SIGINT)");
  auto big = EncodeCancelBuild({std::string((1 << 20) + 1, 'x')});
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().message.rfind("CancelBuild.reason: ", 0), 0u) << big.error().message;
}

// ---------------------------------------------------------------- blobs

TEST(ClusterWireTest, BlobRequestRoundTrips) {
  BlobRequestData in{kDigestA, 5ull << 32, kMaxChunkBytes};
  auto bytes = EncodeBlobRequest(in);
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  auto out = DecodeBlobRequest(*bytes);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->digest, kDigestA);
  EXPECT_EQ(out->offset, 5ull << 32);
  EXPECT_EQ(out->length, kMaxChunkBytes);
}

TEST(ClusterWireTest, BlobRequestRefusesLengthOutOfRange) {
  const std::string want = "BlobRequest.length: must be 1.." + std::to_string(kMaxChunkBytes);
  for (std::uint32_t length : {0u, kMaxChunkBytes + 1}) {
    SCOPED_TRACE(length);
    auto bytes = EncodeBlobRequest({kDigestA, 0, length});
    ASSERT_FALSE(bytes.ok());
    ExpectError(bytes.error(), ErrorKind::kInvalidInput, "wire.field", want);

    OutgoingMessage<schema::BlobRequest> raw;
    raw.Body().setDigest(kDigestA);
    raw.Body().setLength(length);
    auto decoded = DecodeBlobRequest(raw.Encode());
    ASSERT_FALSE(decoded.ok());
    ExpectError(decoded.error(), ErrorKind::kInvalidInput, "wire.field", want);
  }
}

TEST(ClusterWireTest, BlobRequestRefusesBadDigest) {
  auto bytes = EncodeBlobRequest({"sha256:../../etc/passwd", 0, 1});
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(bytes.error().code, "wire.digest");
  EXPECT_EQ(bytes.error().message.rfind("BlobRequest.digest: ", 0), 0u) << bytes.error().message;

  OutgoingMessage<schema::BlobRequest> raw;
  raw.Body().setDigest("md5:abc");
  raw.Body().setLength(1);
  auto decoded = DecodeBlobRequest(raw.Encode());
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().code, "wire.digest");
}

TEST(ClusterWireTest, BlobChunkRoundTripsWithAndWithoutError) {
  BlobChunkData in{kDigestB, 1u << 20, 3u << 20, std::nullopt};
  auto bytes = EncodeBlobChunk(in);
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  auto out = DecodeBlobChunk(*bytes);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->digest, kDigestB);
  EXPECT_EQ(out->offset, 1u << 20);
  EXPECT_EQ(out->total_size, 3u << 20);
  EXPECT_FALSE(out->error.has_value());

  in.error = MakeError(ErrorKind::kInvalidInput, "cas.not_found", "blob is not here");
  bytes = EncodeBlobChunk(in);
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  out = DecodeBlobChunk(*bytes);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  ASSERT_TRUE(out->error.has_value());
  ExpectSameError(*in.error, *out->error);
}

// ---------------------------------------------------------------- SubmitBuild

SubmitBuildData FullSubmit() {
  SubmitBuildData s;
  s.dockerfile = "FROM busybox\nRUN echo hi\n";
  s.dockerfile_name = "build/Dockerfile.arm";
  s.dockerignore = std::string("*.o\n!keep.o\n");
  s.context = {
      {"src", S_IFDIR | 0750, 1000, 1000, 0, "", "", 1'700'000'000'123'456'789},
      {"src/main.c", S_IFREG | 0644, 1000, 1000, 42, kDigestA, "", 1'700'000'001'000'000'000},
      {"link", S_IFLNK | 0777, 0, 0, 8, "", "src/main.c", 5},
  };
  s.platforms = {P("linux/amd64"), P("linux/arm64")};
  s.target = "final";
  s.build_args = {{"VERSION", "1.2"}, {"EMPTY", ""}};
  s.tags = {"registry.local/app:1.2", "registry.local/app:latest"};
  s.no_cache = true;
  s.no_cache_filter = {"build"};
  s.secrets = {{"npmrc", std::string("tok\0en", 6)}};
  s.allow = {"network.host", "security.insecure"};
  s.source_date_epoch = 1'600'000'000;
  s.compression = "zstd";
  s.pull = true;
  s.push = true;
  s.no_result = true;
  return s;
}

TEST(ClusterWireTest, SubmitBuildRoundTripsEveryField) {
  const SubmitBuildData in = FullSubmit();
  auto bytes = EncodeSubmitBuild(in);
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  auto out = DecodeSubmitBuild(*bytes);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->dockerfile, in.dockerfile);
  EXPECT_EQ(out->dockerfile_name, in.dockerfile_name);
  EXPECT_EQ(out->dockerignore, in.dockerignore);
  EXPECT_EQ(out->context, in.context);
  EXPECT_EQ(out->platforms, in.platforms);
  EXPECT_EQ(out->target, "final");
  EXPECT_EQ(out->build_args, in.build_args);
  EXPECT_EQ(out->tags, in.tags);
  EXPECT_TRUE(out->no_cache);
  EXPECT_EQ(out->no_cache_filter, in.no_cache_filter);
  EXPECT_EQ(out->secrets, in.secrets);
  EXPECT_EQ(out->allow, in.allow);
  EXPECT_EQ(out->source_date_epoch, in.source_date_epoch);
  EXPECT_EQ(out->compression, "zstd");
  EXPECT_TRUE(out->pull);
  EXPECT_TRUE(out->push);
  EXPECT_TRUE(out->no_result);
}

TEST(ClusterWireTest, SubmitBuildDefaultsWhenFieldsAreUnset) {
  OutgoingMessage<schema::SubmitBuild> raw;
  raw.Body().setDockerfile(kj::StringPtr("FROM scratch\n").asBytes());
  auto out = DecodeSubmitBuild(raw.Encode());
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->dockerfile, "FROM scratch\n");
  EXPECT_EQ(out->dockerfile_name, "Dockerfile");
  EXPECT_FALSE(out->dockerignore.has_value());
  EXPECT_FALSE(out->source_date_epoch.has_value());
  EXPECT_EQ(out->compression, "gzip");
  EXPECT_TRUE(out->context.empty());
  EXPECT_FALSE(out->push);

  // An empty .dockerignore is not the same as none.
  SubmitBuildData in;
  in.dockerignore = "";
  auto bytes = EncodeSubmitBuild(in);
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  out = DecodeSubmitBuild(*bytes);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->dockerignore, std::optional<std::string>(""));
}

TEST(ClusterWireTest, SubmitBuildRefusesUncleanContextPaths) {
  for (const std::string path : {"../x", "/abs", "a//b", "a/./b", "a/..", "x/", ""}) {
    SCOPED_TRACE(path);
    const std::string want =
        "SubmitBuild.context[1].path: \"" + path + "\" is not a clean relative path";
    SubmitBuildData in;
    in.context = {{"ok", S_IFREG | 0644, 0, 0, 0, "", "", 0},
                  {path, S_IFREG | 0644, 0, 0, 0, "", "", 0}};
    auto bytes = EncodeSubmitBuild(in);
    ASSERT_FALSE(bytes.ok());
    ExpectError(bytes.error(), ErrorKind::kSecurity, "wire.path", want);

    OutgoingMessage<schema::SubmitBuild> raw;
    auto ctx = raw.Body().initContext(2);
    ctx[0].setPath("ok");
    ctx[1].setPath(path);
    auto decoded = DecodeSubmitBuild(raw.Encode());
    ASSERT_FALSE(decoded.ok());
    ExpectError(decoded.error(), ErrorKind::kSecurity, "wire.path", want);
  }
}

TEST(ClusterWireTest, SubmitBuildRefusesUnknownCompressionAndNegativeEpoch) {
  OutgoingMessage<schema::SubmitBuild> raw;
  raw.Body().setCompression("lz4");
  auto decoded = DecodeSubmitBuild(raw.Encode());
  ASSERT_FALSE(decoded.ok());
  ExpectError(decoded.error(), ErrorKind::kInvalidInput, "wire.field",
              "SubmitBuild.compression: unknown compression \"lz4\"");

  OutgoingMessage<schema::SubmitBuild> epoch;
  epoch.Body().setHasSourceDateEpoch(true);
  epoch.Body().setSourceDateEpoch(-1);
  decoded = DecodeSubmitBuild(epoch.Encode());
  ASSERT_FALSE(decoded.ok());
  ExpectError(decoded.error(), ErrorKind::kInvalidInput, "wire.field",
              "SubmitBuild.sourceDateEpoch: negative");
}

TEST(ClusterWireTest, SubmitBuildRefusesBadContextDigest) {
  SubmitBuildData in;
  in.context = {{"f", S_IFREG | 0644, 0, 0, 1, "sha256:nothex", "", 0}};
  auto bytes = EncodeSubmitBuild(in);
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.error().code, "wire.digest");
  EXPECT_EQ(bytes.error().message.rfind("SubmitBuild.context[0].digest: ", 0), 0u)
      << bytes.error().message;
}

// ---------------------------------------------------------------- BuildEvent

TEST(ClusterWireTest, BuildEventRoundTripsEachKind) {
  BuildEventData done;
  done.kind = BuildEventData::Kind::kDone;
  done.text = "built";
  done.index_digest = kDigestA;
  done.manifests = {{"linux/amd64", kDigestB}, {"linux/arm64", kDigestC}};
  done.pushed = {{"registry.local/app:1", kDigestA}};
  done.steps_executed = 7;
  done.steps_cached = 3;
  done.jobs_run = 4;
  done.jobs_cached = 1;
  auto bytes = EncodeBuildEvent(done);
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  auto out = DecodeBuildEvent(*bytes);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->kind, BuildEventData::Kind::kDone);
  EXPECT_EQ(out->text, "built");
  EXPECT_FALSE(out->error.has_value());
  EXPECT_EQ(out->index_digest, kDigestA);
  EXPECT_EQ(out->manifests, done.manifests);
  EXPECT_EQ(out->pushed, done.pushed);
  EXPECT_EQ(out->steps_executed, 7u);
  EXPECT_EQ(out->steps_cached, 3u);
  EXPECT_EQ(out->jobs_run, 4u);
  EXPECT_EQ(out->jobs_cached, 1u);

  BuildEventData failed;
  failed.kind = BuildEventData::Kind::kFailed;
  failed.text = "step 3 failed";
  failed.error = RichError();
  bytes = EncodeBuildEvent(failed);
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  out = DecodeBuildEvent(*bytes);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->kind, BuildEventData::Kind::kFailed);
  ASSERT_TRUE(out->error.has_value());
  ExpectSameError(*failed.error, *out->error);

  for (auto kind : {BuildEventData::Kind::kLine, BuildEventData::Kind::kTrace}) {
    BuildEventData e;
    e.kind = kind;
    static constexpr char kText[] = "line with \0 and \xff bytes";
    e.text = std::string(kText, sizeof kText - 1);
    bytes = EncodeBuildEvent(e);
    ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
    out = DecodeBuildEvent(*bytes);
    ASSERT_TRUE(out.ok()) << out.error().ToString();
    EXPECT_EQ(out->kind, kind);
    EXPECT_EQ(out->text, e.text);
  }
}

TEST(ClusterWireTest, BuildEventFailureWithoutErrorDoesNotDecode) {
  BuildEventData e;
  e.kind = BuildEventData::Kind::kFailed;
  e.text = "failed";
  auto bytes = EncodeBuildEvent(e);  // the encoder does not insist; the decoder does
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  auto out = DecodeBuildEvent(*bytes);
  ASSERT_FALSE(out.ok());
  ExpectError(out.error(), ErrorKind::kInvalidInput, "wire.field",
              "BuildEvent.error: missing on a failure");

  OutgoingMessage<schema::BuildEvent> raw;
  raw.Body().setKind(schema::BuildEventKind::FAILED);
  out = DecodeBuildEvent(raw.Encode());
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().message, "BuildEvent.error: missing on a failure");
}

TEST(ClusterWireTest, BuildEventRefusesBadIndexDigestAtDecode) {
  BuildEventData e;
  e.kind = BuildEventData::Kind::kDone;
  e.index_digest = "sha256:zz";
  auto bytes = EncodeBuildEvent(e);
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  auto out = DecodeBuildEvent(*bytes);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(out.error().code, "wire.digest");
  EXPECT_EQ(out.error().message.rfind("BuildEvent.indexDigest: ", 0), 0u) << out.error().message;
}

// ---------------------------------------------------------------- workers

TEST(ClusterWireTest, WorkersRequestRoundTripsEachAction) {
  const WorkersRequestData cases[] = {{"list", ""}, {"rm", "w1"}, {"drain", "w-2"}};
  for (const auto& in : cases) {
    SCOPED_TRACE(in.action);
    auto bytes = EncodeWorkersRequest(in);
    ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
    auto out = DecodeWorkersRequest(*bytes);
    ASSERT_TRUE(out.ok()) << out.error().ToString();
    EXPECT_EQ(out->action, in.action);
    EXPECT_EQ(out->worker_id, in.worker_id);
  }
}

TEST(ClusterWireTest, WorkersRequestRefusesUnknownActionAndBadId) {
  auto bytes = EncodeWorkersRequest({"bogus", "w1"});
  ASSERT_FALSE(bytes.ok());
  ExpectError(bytes.error(), ErrorKind::kInvalidInput, "wire.field",
              "WorkersRequest.action: unknown action \"bogus\"");

  OutgoingMessage<schema::WorkersRequest> raw;
  raw.Body().setAction("bogus");
  auto out = DecodeWorkersRequest(raw.Encode());
  ASSERT_FALSE(out.ok());
  ExpectError(out.error(), ErrorKind::kInvalidInput, "wire.field",
              "WorkersRequest.action: unknown action \"bogus\"");

  bytes = EncodeWorkersRequest({"rm", ""});
  ASSERT_FALSE(bytes.ok());
  EXPECT_EQ(bytes.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(bytes.error().code, "wire.id");

  OutgoingMessage<schema::WorkersRequest> drain;
  drain.Body().setAction("drain");
  drain.Body().setWorkerId("../w");
  out = DecodeWorkersRequest(drain.Encode());
  ASSERT_FALSE(out.ok());
  ExpectError(out.error(), ErrorKind::kSecurity, "wire.id",
              "WorkersRequest.workerId: \"../w\" is not a valid id ([A-Za-z0-9_-]{1,64})");
}

TEST(ClusterWireTest, WorkersReplyRoundTripsEveryField) {
  WorkersReplyData in;
  WorkerInfoData w;
  w.worker_id = "w1";
  w.address = "10.0.0.7";
  w.platforms = {{P("linux/arm64"), false}, {P("linux/arm/v7"), true}};
  w.state = "busy";
  w.running_jobs = 2;
  w.slots = 4;
  w.cpus = 4;
  w.memory_bytes = 8ull << 30;
  w.disk_free_bytes = 100ull << 30;
  w.hostname = "pi-4";
  in.workers = {w};
  w.worker_id = "w2";
  w.state = "quarantined";
  w.note = "failed 3 jobs in a row: disk full";
  w.platforms.clear();
  in.workers.push_back(w);
  in.error = MakeError(ErrorKind::kInvalidInput, "cluster.unknown_worker", "no worker w9");
  auto bytes = EncodeWorkersReply(in);
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  auto out = DecodeWorkersReply(*bytes);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  ASSERT_EQ(out->workers.size(), 2u);
  for (std::size_t i = 0; i < 2; ++i) {
    SCOPED_TRACE(i);
    const auto& a = in.workers[i];
    const auto& b = out->workers[i];
    EXPECT_EQ(b.worker_id, a.worker_id);
    EXPECT_EQ(b.address, a.address);
    EXPECT_EQ(b.platforms, a.platforms);
    EXPECT_EQ(b.state, a.state);
    EXPECT_EQ(b.running_jobs, a.running_jobs);
    EXPECT_EQ(b.slots, a.slots);
    EXPECT_EQ(b.cpus, a.cpus);
    EXPECT_EQ(b.memory_bytes, a.memory_bytes);
    EXPECT_EQ(b.disk_free_bytes, a.disk_free_bytes);
    EXPECT_EQ(b.hostname, a.hostname);
    EXPECT_EQ(b.note, a.note);
  }
  ASSERT_TRUE(out->error.has_value());
  ExpectSameError(*in.error, *out->error);
}

// ---------------------------------------------------------------- dispatch

TEST(ClusterWireTest, PeekClusterTypeNamesEveryMessage) {
  JoinReplyData join_reply;
  join_reply.worker_id = "w1";
  HeartbeatData heartbeat;
  heartbeat.worker_id = "w1";
  BuildEventData event;
  const std::pair<Expected<std::string>, ClusterType> cases[] = {
      {EncodeJoin(FullJoin()), ClusterType::kJoin},
      {EncodeJoinReply(join_reply), ClusterType::kJoinReply},
      {EncodeHeartbeat(heartbeat), ClusterType::kHeartbeat},
      {EncodeHeartbeatReply({}), ClusterType::kHeartbeatReply},
      {EncodeBlobRequest({kDigestA, 0, 1}), ClusterType::kBlobRequest},
      {EncodeBlobChunk({kDigestA, 0, 0, std::nullopt}), ClusterType::kBlobChunk},
      {EncodeSubmitBuild({}), ClusterType::kSubmitBuild},
      {EncodeBuildEvent(event), ClusterType::kBuildEvent},
      {EncodeCancelBuild({}), ClusterType::kCancelBuild},
      {EncodePushBlobs({}), ClusterType::kPushBlobs},
      {EncodePushBlobsReply({}), ClusterType::kPushBlobsReply},
      {EncodeBuildsRequest({}), ClusterType::kBuildsRequest},
      {EncodeBuildsReply({}), ClusterType::kBuildsReply},
      {EncodeWorkersRequest({}), ClusterType::kWorkersRequest},
      {EncodeWorkersReply({}), ClusterType::kWorkersReply},
      {EncodeShutdown("x"), ClusterType::kOther},
  };
  int i = 0;
  for (const auto& [bytes, want] : cases) {
    SCOPED_TRACE(i++);
    ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
    auto type = PeekClusterType(*bytes);
    ASSERT_TRUE(type.ok()) << type.error().ToString();
    EXPECT_EQ(static_cast<int>(*type), static_cast<int>(want));
  }
}

TEST(ClusterWireTest, PeekClusterTypeRefusesGarbage) {
  auto type = PeekClusterType("");
  ASSERT_FALSE(type.ok());
  EXPECT_EQ(type.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(type.error().code, "wire.malformed");
  type = PeekClusterType("not capnp");  // 9 bytes: not whole words
  ASSERT_FALSE(type.ok());
  EXPECT_EQ(type.error().code, "wire.malformed");
}

TEST(ClusterWireTest, DecodingTheWrongMessageTypeIsRefused) {
  auto bytes = EncodeWorkersRequest({});
  ASSERT_TRUE(bytes.ok());
  auto join = DecodeJoin(*bytes);
  ASSERT_FALSE(join.ok());
  EXPECT_EQ(join.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(join.error().code, "wire.unexpected_type");
}

// ---------------------------------------------------------------- JobSupplement

StageJobData MinimalJob() {
  StageJobData job;
  job.build_id = "b1";
  job.job_id = "j1";
  job.stage = "build";
  job.platform = job.target_platform = P("linux/amd64");
  job.base = "scratch";
  return job;
}

JobSupplement FullSupplement() {
  JobSupplement sup;
  BlobSourceData layer;
  layer.media_type = "application/vnd.oci.image.layer.v1.tar+gzip";
  layer.digest = kDigestA;
  layer.size = 1234;
  layer.diff_id = kDigestB;
  layer.holders = {{"", ""}, {"tcp://10.0.0.7:7701", kKey}};
  BlobSourceData config;
  config.media_type = "application/vnd.oci.image.config.v1+json";
  config.digest = kDigestC;
  config.size = 99;
  sup.sources = {layer, config};
  JobSupplement::CachedStep step;
  step.key = kDigestB;
  step.config_digest = kDigestC;
  step.layers = {{layer.media_type, kDigestA, kDigestB, 1234}};
  sup.cached_steps = {step};
  sup.context = {
      {"app", S_IFDIR | 0755, 0, 0, 0, "", "", 1'000'000'000},
      {"app/main.go", S_IFREG | 0600, 1000, 100, 17, kDigestA, "", 2'000'000'001},
      {"app/current", S_IFLNK | 0777, 0, 0, 7, "", "main.go", 3},
  };
  sup.dockerignore = std::string("node_modules\n");
  sup.secrets = {{"token", "s3cr3t"}, {"empty", ""}};
  sup.reads_context = true;
  return sup;
}

TEST(ClusterWireTest, StageJobSupplementRoundTrips) {
  StageJobData job = MinimalJob();
  job.supplement = FullSupplement();
  auto bytes = EncodeStageJob(job);
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  auto out = DecodeStageJob(*bytes);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  ASSERT_TRUE(out->supplement.has_value());
  EXPECT_EQ(out->supplement->sources, job.supplement->sources);
  EXPECT_EQ(out->supplement->cached_steps, job.supplement->cached_steps);
  EXPECT_EQ(out->supplement->context, job.supplement->context);
  EXPECT_EQ(out->supplement->dockerignore, job.supplement->dockerignore);
  EXPECT_EQ(out->supplement->secrets, job.supplement->secrets);
  EXPECT_TRUE(out->supplement->reads_context);
  EXPECT_TRUE(*out->supplement == *job.supplement);

  // A job without one decodes without one.
  bytes = EncodeStageJob(MinimalJob());
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  out = DecodeStageJob(*bytes);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_FALSE(out->supplement.has_value());
}

// A StageJob written directly, with a supplement, as a peer could.
std::string RawJobWithSupplement(const std::string& context_path, const std::string& endpoint,
                                 const std::string& key) {
  OutgoingMessage<schema::StageJob> out;
  auto b = out.Body();
  b.setBuildId("b1");
  b.setJobId("j1");
  b.setStage("build");
  auto p = b.initPlatform();
  p.setOs("linux");
  p.setArchitecture("amd64");
  auto t = b.initTargetPlatform();
  t.setOs("linux");
  t.setArchitecture("amd64");
  b.initBase().setScratch();
  auto sup = b.initSupplement();
  auto src = sup.initSources(1)[0];
  src.setMediaType("application/octet-stream");
  src.setDigest(kDigestA);
  auto holder = src.initHolders(1)[0];
  holder.setEndpoint(endpoint);
  holder.setPublicKey(key);
  auto ctx = sup.initContext(1)[0];
  ctx.setPath(context_path);
  ctx.setMode(S_IFREG | 0644);
  return out.Encode();
}

TEST(ClusterWireTest, StageJobSupplementRefusesParentContextPath) {
  const std::string want =
      "StageJob.supplement.context[0].path: \"..\" is not a clean relative path";
  StageJobData job = MinimalJob();
  job.supplement.emplace();
  job.supplement->context = {{"..", S_IFREG | 0644, 0, 0, 0, "", "", 0}};
  auto bytes = EncodeStageJob(job);
  ASSERT_FALSE(bytes.ok());
  ExpectError(bytes.error(), ErrorKind::kSecurity, "wire.path", want);

  ASSERT_TRUE(DecodeStageJob(RawJobWithSupplement("ok/file", "", "")).ok());
  auto out = DecodeStageJob(RawJobWithSupplement("..", "", ""));
  ASSERT_FALSE(out.ok());
  ExpectError(out.error(), ErrorKind::kSecurity, "wire.path", want);

  out = DecodeStageJob(RawJobWithSupplement("/etc/passwd", "", ""));
  ASSERT_FALSE(out.ok());
  ExpectError(out.error(), ErrorKind::kSecurity, "wire.path",
              "StageJob.supplement.context[0].path: \"/etc/passwd\" is not a clean relative path");
}

TEST(ClusterWireTest, StageJobSupplementRefusesHolderWithEndpointButNoKey) {
  const std::string want =
      "StageJob.supplement.sources[0].holders[0]: endpoint and publicKey are set together or "
      "not at all";
  StageJobData job = MinimalJob();
  job.supplement.emplace();
  BlobSourceData src;
  src.media_type = "application/octet-stream";
  src.digest = kDigestA;
  src.holders = {{"tcp://10.0.0.7:7701", ""}};
  job.supplement->sources = {src};
  auto bytes = EncodeStageJob(job);
  ASSERT_FALSE(bytes.ok());
  ExpectError(bytes.error(), ErrorKind::kInvalidInput, "wire.field", want);

  auto out = DecodeStageJob(RawJobWithSupplement("f", "tcp://10.0.0.7:7701", ""));
  ASSERT_FALSE(out.ok());
  ExpectError(out.error(), ErrorKind::kInvalidInput, "wire.field", want);

  ASSERT_TRUE(DecodeStageJob(RawJobWithSupplement("f", "tcp://10.0.0.7:7701", kKey)).ok());
  out = DecodeStageJob(RawJobWithSupplement("f", "udp://10.0.0.7:7701", kKey));
  ASSERT_FALSE(out.ok());
  ExpectError(out.error(), ErrorKind::kInvalidInput, "wire.field",
              "StageJob.supplement.sources[0].holders[0].endpoint: not a tcp:// endpoint");
}

TEST(ClusterWireTest, SubmitBuildCarriesTheClientsImages) {
  SubmitBuildData in = FullSubmit();
  const std::string d = "sha256:" + std::string(64, 'c');
  in.images = {{"busybox:latest", "application/vnd.oci.image.index.v1+json", d, 1234}};
  auto bytes = EncodeSubmitBuild(in);
  ASSERT_TRUE(bytes.ok()) << bytes.error().ToString();
  auto out = DecodeSubmitBuild(*bytes);
  ASSERT_TRUE(out.ok()) << out.error().ToString();
  EXPECT_EQ(out->images, in.images);

  in.images[0].media_type = "two words";
  auto bad = EncodeSubmitBuild(in);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "wire.field");
  EXPECT_EQ(bad.error().message, "SubmitBuild.images[0].mediaType: not a media type");
}

}  // namespace
}  // namespace manifold::wire
