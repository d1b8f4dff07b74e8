#include "common/wire/codec.h"

#include <gtest/gtest.h>

#include <cstdio>

#include <capnp/message.h>
#include <zmq.hpp>

#include "common/wire/socket_options.h"
#include "schemas/scheduler.capnp.h"
#include "schemas/cluster.capnp.h"

namespace manifold::wire {
namespace {

std::string Hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

void FillStageJob(schema::StageJob::Builder job, unsigned instruction_count) {
  job.setBuildId("b-42");
  job.setJobId("b-42/build/linux-arm64");
  job.setStage("build");
  job.setLeaseEpoch(7);
  auto platform = job.initPlatform();
  platform.setOs("linux");
  platform.setArchitecture("arm");
  platform.setVariant("v7");
  auto image = job.initBase().initImage();
  image.setReference("docker.io/library/alpine:3.19");
  image.initManifestDigest().setAlgorithm("sha256");
  auto instructions = job.initInstructions(instruction_count);
  for (unsigned i = 0; i < instruction_count; ++i) {
    auto ins = instructions[i];
    ins.setIndex(i);
    ins.setLine(i + 2);
    ins.setCommand("RUN");
    auto args = ins.initArgs(1);
    args.set(0, "echo " + std::to_string(i));
    auto key = ins.initCacheKey();
    key.setAlgorithm("sha256");
    key.setEncoded(std::string(64, 'a'));
  }
}

std::string EncodeStageJob(unsigned instruction_count) {
  OutgoingMessage<schema::StageJob> out;
  FillStageJob(out.Body(), instruction_count);
  return out.Encode();
}

TEST(CodecTest, RoundTripsStageJob) {
  auto decoded = Decode<schema::StageJob>(EncodeStageJob(3));
  ASSERT_TRUE(decoded.ok()) << decoded.error().ToString();
  EXPECT_EQ(decoded->protocol_version(), kProtocolVersion);
  auto job = decoded->Body();
  EXPECT_EQ(job.getBuildId(), "b-42");
  EXPECT_EQ(job.getJobId(), "b-42/build/linux-arm64");
  EXPECT_EQ(job.getStage(), "build");
  EXPECT_EQ(job.getLeaseEpoch(), 7u);
  EXPECT_EQ(job.getPlatform().getArchitecture(), "arm");
  EXPECT_EQ(job.getPlatform().getVariant(), "v7");
  ASSERT_EQ(job.getBase().which(), schema::BaseImage::IMAGE);
  EXPECT_EQ(job.getBase().getImage().getReference(), "docker.io/library/alpine:3.19");
  ASSERT_EQ(job.getInstructions().size(), 3u);
  EXPECT_EQ(job.getInstructions()[2].getArgs()[0], "echo 2");
  EXPECT_EQ(job.getInstructions()[2].getLine(), 4u);
  EXPECT_EQ(job.getInstructions()[1].getCacheKey().getEncoded(), std::string(64, 'a'));
}

TEST(CodecTest, PeekReadsVersionAndType) {
  auto info = PeekEnvelope(EncodeStageJob(1));
  ASSERT_TRUE(info.ok()) << info.error().ToString();
  EXPECT_EQ(info->protocol_version, kProtocolVersion);
  EXPECT_EQ(info->body_type, capnp::typeId<schema::StageJob>());
}

TEST(CodecTest, RejectsTruncatedBuffer) {
  std::string bytes = EncodeStageJob(3);
  auto cut = Decode<schema::StageJob>(std::string_view(bytes).substr(0, bytes.size() - 8));
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(cut.error().code, "wire.malformed");
  EXPECT_EQ(cut.error().message, "malformed message: Message ends prematurely in first segment");

  auto ragged = Decode<schema::StageJob>(std::string_view(bytes).substr(0, 13));
  ASSERT_FALSE(ragged.ok());
  EXPECT_EQ(ragged.error().code, "wire.malformed");
  EXPECT_EQ(ragged.error().message, "message is 13 bytes, not a whole number of 8-byte words");

  auto empty = Decode<schema::StageJob>("");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().message, "empty message");
}

TEST(CodecTest, RejectsGarbage) {
  // Segment table claiming 0x7fffffff words in the first segment.
  std::string garbage("\x00\x00\x00\x00\xff\xff\xff\x7f", 8);
  garbage += std::string(56, '\x5a');
  auto decoded = Decode<schema::StageJob>(garbage);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(decoded.error().code, "wire.malformed");
}

TEST(CodecTest, RejectsOversizedMessage) {
  DecodeLimits limits;
  limits.max_message_bytes = 64;
  std::string bytes = EncodeStageJob(3);
  auto decoded = Decode<schema::StageJob>(bytes, limits);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(decoded.error().code, "wire.too_large");
  EXPECT_EQ(decoded.error().message,
            "message is " + std::to_string(bytes.size()) + " bytes, limit is 64");
}

TEST(CodecTest, RejectsNestingBomb) {
  // Envelope -> Envelope -> ... 100 deep, declared as a StageJob.
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<schema::Envelope>();
  root.setProtocolVersion(kProtocolVersion);
  root.setBodyType(capnp::typeId<schema::StageJob>());
  auto current = root;
  for (int i = 0; i < 100; ++i) {
    current = current.getBody().initAs<schema::Envelope>();
    current.setProtocolVersion(kProtocolVersion);
  }
  auto decoded = Decode<schema::StageJob>(Encode(message));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(decoded.error().code, "wire.limit");
  EXPECT_EQ(decoded.error().message, "message exceeds decode limits: Message is too deeply-nested");
}

TEST(CodecTest, RejectsMessageOverTraversalLimit) {
  std::string bytes = EncodeStageJob(500);
  ASSERT_TRUE(Decode<schema::StageJob>(bytes).ok());
  DecodeLimits limits;
  limits.traversal_limit_words = 1024;
  auto decoded = Decode<schema::StageJob>(bytes, limits);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(decoded.error().code, "wire.limit");
  EXPECT_NE(decoded.error().message.find("traversal limit"), std::string::npos)
      << decoded.error().message;
}

TEST(CodecTest, RejectsVersionMismatch) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<schema::Envelope>();
  root.setProtocolVersion(kProtocolVersion + 1);
  root.setBodyType(capnp::typeId<schema::StageJob>());
  FillStageJob(root.getBody().initAs<schema::StageJob>(), 1);
  std::string bytes = Encode(message);

  const std::string expected = "peer speaks protocol " + std::to_string(kProtocolVersion + 1) +
                               ", this build speaks " + std::to_string(kProtocolVersion);
  auto decoded = Decode<schema::StageJob>(bytes);
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(decoded.error().code, "wire.version");
  EXPECT_EQ(decoded.error().message, expected);

  auto peeked = PeekEnvelope(bytes);
  ASSERT_FALSE(peeked.ok());
  EXPECT_EQ(peeked.error().message, expected);
}

TEST(CodecTest, RejectsUnexpectedBodyType) {
  OutgoingMessage<schema::Heartbeat> out;
  out.Body().setWorkerId("w1");
  auto decoded = Decode<schema::StageJob>(out.Encode());
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(decoded.error().code, "wire.unexpected_type");
  EXPECT_EQ(decoded.error().message,
            "expected a StageJob message (" + Hex(capnp::typeId<schema::StageJob>()) +
                "), got type " + Hex(capnp::typeId<schema::Heartbeat>()));
}

TEST(CodecTest, SchemaWalkRejectsWrongPointerKind) {
  // A Layer (pointer 0 is a struct) labelled as a StageJob (pointer 0 is
  // text): structurally sound, so only the schema-aware walk can catch it.
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<schema::Envelope>();
  root.setProtocolVersion(kProtocolVersion);
  root.setBodyType(capnp::typeId<schema::StageJob>());
  root.getBody().initAs<schema::Layer>().initDescriptor().setMediaType("x");
  auto decoded = Decode<schema::StageJob>(Encode(message));
  ASSERT_FALSE(decoded.ok());
  EXPECT_EQ(decoded.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(decoded.error().code, "wire.malformed");
  EXPECT_EQ(decoded.error().message,
            "malformed message: Message contains non-list pointer where text was expected");
}

TEST(CodecTest, ZmqInprocPairRoundTrip) {
  zmq::context_t context;
  zmq::socket_t coordinator(context, zmq::socket_type::pair);
  zmq::socket_t worker(context, zmq::socket_type::pair);
  ASSERT_TRUE(ApplySocketDefaults(coordinator).ok());
  ASSERT_TRUE(ApplySocketDefaults(worker).ok());
  worker.set(zmq::sockopt::rcvtimeo, 5000);
  coordinator.set(zmq::sockopt::rcvtimeo, 5000);
  coordinator.bind("inproc://codec-test");
  worker.connect("inproc://codec-test");

  std::string job_bytes = EncodeStageJob(2);
  ASSERT_TRUE(coordinator.send(zmq::buffer(job_bytes), zmq::send_flags::none).has_value());
  zmq::message_t frame;
  ASSERT_TRUE(worker.recv(frame, zmq::recv_flags::none).has_value());
  auto job = Decode<schema::StageJob>(frame.to_string_view());
  ASSERT_TRUE(job.ok()) << job.error().ToString();
  EXPECT_EQ(job->Body().getJobId(), "b-42/build/linux-arm64");

  OutgoingMessage<schema::StageResult> result;
  result.Body().setJobId(job->Body().getJobId());
  result.Body().setLeaseEpoch(job->Body().getLeaseEpoch());
  auto error = result.Body().initError();
  error.setKind(schema::ErrorKind::RESOURCE_EXHAUSTED);
  error.setCode("cas.disk_full");
  std::string result_bytes = result.Encode();
  ASSERT_TRUE(worker.send(zmq::buffer(result_bytes), zmq::send_flags::none).has_value());
  ASSERT_TRUE(coordinator.recv(frame, zmq::recv_flags::none).has_value());
  auto decoded = Decode<schema::StageResult>(frame.to_string_view());
  ASSERT_TRUE(decoded.ok()) << decoded.error().ToString();
  EXPECT_EQ(decoded->Body().getLeaseEpoch(), 7u);
  ASSERT_TRUE(decoded->Body().hasError());
  EXPECT_EQ(decoded->Body().getError().getKind(), schema::ErrorKind::RESOURCE_EXHAUSTED);
  EXPECT_EQ(decoded->Body().getError().getCode(), "cas.disk_full");
}

TEST(CodecTest, ErrorKindEnumMatchesBase) {
  // The schema enum mirrors manifold::ErrorKind so conversion is a cast.
  EXPECT_EQ(static_cast<int>(schema::ErrorKind::INVALID_INPUT),
            static_cast<int>(ErrorKind::kInvalidInput));
  EXPECT_EQ(static_cast<int>(schema::ErrorKind::RESOURCE_EXHAUSTED),
            static_cast<int>(ErrorKind::kResourceExhausted));
  EXPECT_EQ(static_cast<int>(schema::ErrorKind::INTERNAL), static_cast<int>(ErrorKind::kInternal));
}

}  // namespace
}  // namespace manifold::wire
