#include "common/oci/image_config.h"

#include <gtest/gtest.h>

namespace manifold::oci {
namespace {

const std::string kHexA(64, 'a');
const std::string kHexB(64, 'b');

// Every field set, in canonical form.
const std::string kFull =
    R"({"created":"2024-05-01T12:00:00Z","author":"dev@example.com","architecture":"arm",)"
    R"("os":"linux","variant":"v7","config":{"User":"1000:1000","ExposedPorts":{"443/tcp":{},)"
    R"("80/tcp":{}},"Env":["PATH=/usr/bin:/bin","B=2"],"Entrypoint":["/bin/app"],"Cmd":[],)"
    R"("Volumes":{"/data":{}},"WorkingDir":"/srv","Labels":{"a":"1","org.x":"y"},)"
    R"("StopSignal":"SIGTERM","ArgsEscaped":true,"Healthcheck":{"Test":["CMD-SHELL",)"
    R"("curl -f http://localhost/"],"Interval":30000000000,"Timeout":5000000000,)"
    R"("StartPeriod":1000000000,"StartInterval":2000000000,"Retries":3},)"
    R"("OnBuild":["RUN echo hi"],"Shell":["/bin/bash","-c"]},"rootfs":{"type":"layers",)"
    R"("diff_ids":["sha256:)" + kHexA + R"(","sha256:)" + kHexB + R"("]},)"
    R"("history":[{"created":"2024-05-01T11:00:00Z","created_by":"/bin/sh -c #(nop) ADD file",)"
    R"("author":"a","comment":"buildkit.dockerfile.v0"},{"created_by":"ENV B=2",)"
    R"("empty_layer":true}]})";

void ExpectError(const std::string& doc, ErrorKind kind, const std::string& code,
                 const std::string& message) {
  auto c = ParseImageConfig(doc);
  ASSERT_FALSE(c.ok()) << doc;
  EXPECT_EQ(c.error().kind, kind) << doc;
  EXPECT_EQ(c.error().code, code) << doc;
  EXPECT_EQ(c.error().message, message) << doc;
}

std::string WithConfig(const std::string& config_json) {
  return R"({"architecture":"amd64","os":"linux","config":)" + config_json +
         R"(,"rootfs":{"type":"layers","diff_ids":[]}})";
}

TEST(ImageConfigTest, CanonicalRoundTripIsByteIdentical) {
  auto c = ParseImageConfig(kFull);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->created, "2024-05-01T12:00:00Z");
  EXPECT_EQ(c->variant, "v7");
  EXPECT_EQ(c->config.user, "1000:1000");
  EXPECT_EQ(c->config.exposed_ports, (std::set<std::string>{"443/tcp", "80/tcp"}));
  EXPECT_EQ(c->config.env, (std::vector<std::string>{"PATH=/usr/bin:/bin", "B=2"}));
  EXPECT_EQ(c->config.entrypoint, std::vector<std::string>{"/bin/app"});
  ASSERT_TRUE(c->config.cmd.has_value());
  EXPECT_TRUE(c->config.cmd->empty());
  EXPECT_TRUE(c->config.args_escaped);
  ASSERT_TRUE(c->config.healthcheck.has_value());
  EXPECT_EQ(c->config.healthcheck->interval_ns, 30000000000);
  EXPECT_EQ(c->config.healthcheck->start_interval_ns, 2000000000);
  EXPECT_EQ(c->config.healthcheck->retries, 3);
  EXPECT_EQ(c->config.shell, (std::vector<std::string>{"/bin/bash", "-c"}));
  ASSERT_EQ(c->rootfs.diff_ids.size(), 2u);
  EXPECT_EQ(c->rootfs.diff_ids[1].hex, kHexB);
  ASSERT_EQ(c->history.size(), 2u);
  EXPECT_FALSE(c->history[1].created.has_value());
  EXPECT_TRUE(c->history[1].empty_layer);
  EXPECT_EQ(c->ToJson(), kFull);
}

TEST(ImageConfigTest, AbsentAndEmptyCmdAndEntrypointArePreserved) {
  auto absent = ParseImageConfig(WithConfig(R"({"Cmd":null})"));
  ASSERT_TRUE(absent.ok()) << absent.error().message;
  EXPECT_FALSE(absent->config.cmd.has_value());
  EXPECT_FALSE(absent->config.entrypoint.has_value());
  EXPECT_EQ(absent->ToJson(), WithConfig("{}"));

  auto empty = ParseImageConfig(WithConfig(R"({"Entrypoint":[],"Cmd":[]})"));
  ASSERT_TRUE(empty.ok()) << empty.error().message;
  ASSERT_TRUE(empty->config.entrypoint.has_value());
  ASSERT_TRUE(empty->config.cmd.has_value());
  EXPECT_TRUE(empty->config.cmd->empty());
  EXPECT_EQ(empty->ToJson(), WithConfig(R"({"Entrypoint":[],"Cmd":[]})"));

  ImageConfig built;
  built.architecture = "amd64";
  built.os = "linux";
  built.config.cmd = std::vector<std::string>{};
  EXPECT_EQ(built.ToJson(), WithConfig(R"({"Cmd":[]})"));
  built.config.cmd.reset();
  EXPECT_EQ(built.ToJson(), WithConfig("{}"));
}

TEST(ImageConfigTest, WritesMinimalConfigDeterministically) {
  ImageConfig c;
  c.architecture = "arm64";
  c.os = "linux";
  c.config.labels["z"] = "1";
  c.config.labels["a"] = "2";
  c.config.exposed_ports = {"8080/tcp"};
  c.rootfs.diff_ids.push_back(Digest::Sha256Of(""));
  const std::string expected =
      R"({"architecture":"arm64","os":"linux","config":{"ExposedPorts":{"8080/tcp":{}},)"
      R"("Labels":{"a":"2","z":"1"}},"rootfs":{"type":"layers","diff_ids":["sha256:)"
      R"(e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]}})";
  EXPECT_EQ(c.ToJson(), expected);
  EXPECT_EQ(Digest::Sha256Of(c.ToJson()), Digest::Sha256Of(expected));
}

TEST(ImageConfigTest, ParsesDockerConfigWithExtraFieldsAndNulls) {
  const std::string docker =
      R"({"architecture":"amd64","config":{"Hostname":"","Domainname":"","User":"",)"
      R"("AttachStdin":false,"Tty":false,"Env":["PATH=/bin"],"Cmd":["/hello"],"Image":)"
      R"("sha256:)" + kHexA +
      R"(","Volumes":null,"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{}},)"
      R"("container":"8e2caa5a514bb6d8b4f2a2553e9067498d261a0fd83a96aeaaf303943dff6ff9",)"
      R"("container_config":{"Cmd":["/bin/sh","-c","#(nop) ","CMD [\"/hello\"]"]},)"
      R"("created":"2023-05-02T16:49:27.904332013Z","docker_version":"20.10.23",)"
      R"("history":[{"created":"2023-05-02T16:49:27.81635615Z","created_by":"COPY hello / "}],)"
      R"("os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:)" + kHexB + R"("]}})";
  auto c = ParseImageConfig(docker);
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->config.cmd, std::vector<std::string>{"/hello"});
  EXPECT_FALSE(c->config.entrypoint.has_value());
  EXPECT_TRUE(c->config.labels.empty());
  EXPECT_EQ(c->created, "2023-05-02T16:49:27.904332013Z");
  EXPECT_EQ(c->ToJson(),
            R"({"created":"2023-05-02T16:49:27.904332013Z","architecture":"amd64","os":"linux",)"
            R"("config":{"Env":["PATH=/bin"],"Cmd":["/hello"]},"rootfs":{"type":"layers",)"
            R"("diff_ids":["sha256:)" + kHexB +
                R"("]},"history":[{"created":"2023-05-02T16:49:27.81635615Z",)"
                R"("created_by":"COPY hello / "}]})");
}

TEST(ImageConfigTest, RejectsBadFieldsWithExactMessages) {
  auto inv = ErrorKind::kInvalidInput;
  ExpectError(R"({"architecture":"amd64","os":"linux"})", inv, "oci.invalid",
              "image config: \"rootfs\" is required");
  ExpectError(R"({"os":"linux","rootfs":{"type":"overlay","diff_ids":[]}})", inv, "oci.invalid",
              "image config: \"rootfs.type\" must be \"layers\"");
  ExpectError(R"({"os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:)" + kHexA +
                  R"(","sha256:abc"]}})",
              inv, "digest.invalid",
              "image config: \"rootfs.diff_ids[1]\": invalid digest \"sha256:abc\": sha256 needs "
              "64 lowercase hex characters");
  ExpectError(WithConfig(R"({"Env":"A=1"})"), inv, "oci.invalid",
              "image config: \"config.Env\" must be an array of strings");
  ExpectError(WithConfig(R"({"Env":["A=1",2]})"), inv, "oci.invalid",
              "image config: \"config.Env[1]\" must be a string");
  ExpectError(WithConfig(R"({"Labels":{"a":true}})"), inv, "oci.invalid",
              "image config: \"config.Labels.a\" must be a string");
  ExpectError(WithConfig(R"({"ExposedPorts":["80/tcp"]})"), inv, "oci.invalid",
              "image config: \"config.ExposedPorts\" must be an object");
  ExpectError(WithConfig(R"({"Healthcheck":{"Interval":-5}})"), inv, "oci.invalid",
              "image config: \"config.Healthcheck.Interval\" must be a non-negative integer");
  ExpectError(WithConfig(R"({"ArgsEscaped":"yes"})"), inv, "oci.invalid",
              "image config: \"config.ArgsEscaped\" must be a boolean");
  ExpectError(WithConfig("[]"), inv, "oci.invalid", "image config: \"config\" must be an object");
  ExpectError(R"({"os":"linux","rootfs":{"type":"layers"},"history":[{"empty_layer":1}]})", inv,
              "oci.invalid", "image config: \"history[0].empty_layer\" must be a boolean");
  std::string big = WithConfig(R"({"User":")" + std::string(5 << 20, 'u') + "\"}");
  ExpectError(big, inv, "oci.too_large",
              "image config is " + std::to_string(big.size()) +
                  " bytes, over the 4 MiB (4194304 bytes) limit");
}

}  // namespace
}  // namespace manifold::oci
