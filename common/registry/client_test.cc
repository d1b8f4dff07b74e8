// RegistryClient against the scripted FakeRegistry (RELIABILITY.md group E, H9).
#include "common/registry/client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "common/cas/testing/in_memory_blob_store.h"
#include "common/cas/testing/temp_dir.h"
#include "common/crypto/sha256.h"
#include "common/http/testing/test_server.h"
#include "common/oci/media_types.h"
#include "common/registry/testing/fake_registry.h"
#include "common/registry/testing/test_image.h"

namespace manifold::registry {
namespace {

using http::testing::RawResponse;
using http::testing::ReceivedRequest;
using http::testing::TestServer;
using testing::FakeRegistry;
using testing::Override;
using namespace std::chrono_literals;

RegistryOptions TestOptions() {
  RegistryOptions o;
  o.use_env_proxy = false;
  o.certs_dir = "";
  o.connect_timeout = 5s;
  o.io_timeout = 5s;
  o.retry.initial_backoff = 10ms;
  o.retry.max_backoff = 40ms;
  return o;
}

std::unique_ptr<RegistryClient> Client(const FakeRegistry& fake, RegistryOptions o = TestOptions()) {
  auto c = RegistryClient::Create(fake.domain(), std::move(o));
  MF_ASSERT(c.ok(), c.error().ToString());
  return std::move(*c);
}

CredentialSource Creds(std::string user, std::string password) {
  return [user, password](const std::string&) -> Expected<Credentials> {
    return Credentials{user, password, "", ""};
  };
}

std::string Pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
  return s;
}

oci::Descriptor BlobDesc(const std::string& content) {
  return oci::DescribeBytes(std::string(oci::kOciLayer), content);
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// --- manifests ----------------------------------------------------------------

TEST(RegistryClientTest, GetsManifestsByTagAndDigest) {
  FakeRegistry fake;
  auto image = testing::AddImage(fake, "team/app", "linux", "amd64", {"layer"});
  std::string index = testing::AddIndex(fake, "team/app", "1", {image});
  auto client = Client(fake);

  auto by_tag = client->GetManifest("team/app", "1");
  ASSERT_TRUE(by_tag.ok()) << by_tag.error().ToString();
  EXPECT_EQ(by_tag->media_type, oci::kOciImageIndex);
  EXPECT_EQ(by_tag->bytes, index);
  EXPECT_EQ(by_tag->digest, oci::Digest::Sha256Of(index));

  auto by_digest = client->GetManifest("team/app", image.desc.digest.ToString());
  ASSERT_TRUE(by_digest.ok()) << by_digest.error().ToString();
  EXPECT_EQ(by_digest->media_type, oci::kOciImageManifest);
  EXPECT_EQ(by_digest->bytes, image.manifest);

  auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].target, "/v2/");  // the probe, once per client
  std::string accept = requests[1].Header("accept").value_or("");
  for (auto mt : {oci::kOciImageIndex, oci::kOciImageManifest, oci::kDockerManifestList,
                  oci::kDockerManifest})
    EXPECT_TRUE(Contains(accept, std::string(mt))) << mt;
}

TEST(RegistryClientTest, UnknownManifestIsInvalidInput) {
  FakeRegistry fake;
  auto r = Client(fake)->GetManifest("library/x", "1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(r.error().code, "registry.manifest_unknown");
  EXPECT_EQ(r.error().message, "manifest unknown: " + fake.domain() + "/library/x:1");
  EXPECT_EQ(fake.Count("GET", "/v2/library/x/manifests/"), 1);  // a 404 is not retried
}

TEST(RegistryClientTest, ManifestMustMatchTheDigestAskedFor) {
  FakeRegistry fake;
  auto image = testing::AddImage(fake, "app", "linux", "amd64", {"a"});
  auto other = testing::AddImage(fake, "app", "linux", "arm64", {"b"});
  fake.SetScript([&](const ReceivedRequest& req) -> std::optional<Override> {
    if (req.target == "/v2/app/manifests/" + image.desc.digest.ToString())
      return Override{false, RawResponse(200, "OK", other.manifest,
                                         "Content-Type: " + std::string(oci::kOciImageManifest) +
                                             "\r\n")};
    return std::nullopt;
  });
  auto r = Client(fake)->GetManifest("app", image.desc.digest.ToString());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kIntegrity);
  EXPECT_EQ(r.error().code, "registry.digest_mismatch");
  EXPECT_EQ(r.error().message, "manifest " + fake.domain() + "/app@" + image.desc.digest.ToString() +
                                   " from " + fake.domain() + " does not match its digest: got " +
                                   other.desc.digest.ToString());
}

TEST(RegistryClientTest, DockerContentDigestMustMatchTheBytes) {
  FakeRegistry fake;
  auto image = testing::AddImage(fake, "app", "linux", "amd64", {"a"});
  std::string wrong = "sha256:" + std::string(64, '0');
  fake.SetScript([&](const ReceivedRequest& req) -> std::optional<Override> {
    if (req.target == "/v2/app/manifests/1")
      return Override{false, RawResponse(200, "OK", image.manifest,
                                         "Content-Type: " + std::string(oci::kOciImageManifest) +
                                             "\r\nDocker-Content-Digest: " + wrong + "\r\n")};
    return std::nullopt;
  });
  auto r = Client(fake)->GetManifest("app", "1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kIntegrity);
  EXPECT_EQ(r.error().message, "manifest " + fake.domain() + "/app:1 from " + fake.domain() +
                                   " hashes to " + image.desc.digest.ToString() +
                                   " but the registry says " + wrong);
}

/// Serves `body` as /v2/app/manifests/1 with `content_type`.
void ServeManifest(FakeRegistry& fake, std::string body, std::string content_type) {
  fake.SetScript([body, content_type](const ReceivedRequest& req) -> std::optional<Override> {
    if (req.target == "/v2/app/manifests/1")
      return Override{false, RawResponse(200, "OK", body, "Content-Type: " + content_type + "\r\n")};
    return std::nullopt;
  });
}

TEST(RegistryClientTest, RefusesBadDocuments) {
  FakeRegistry fake;
  auto client = Client(fake);
  std::string d = "\"sha256:" + std::string(64, 'a') + "\"";
  std::string config = R"({"mediaType":"application/vnd.oci.image.config.v1+json","digest":)" + d +
                       R"(,"size":2})";

  // E6: schema1, by Content-Type or by body.
  ServeManifest(fake, R"({"schemaVersion":1,"name":"app"})",
                std::string(oci::kDockerSchema1SignedManifest));
  auto r = client->GetManifest("app", "1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnimplemented);
  EXPECT_EQ(r.error().code, "oci.schema1");
  EXPECT_EQ(r.error().ToString(), "manifest " + fake.domain() +
                                      "/app:1: Docker schema1 manifests are not supported: rebuild "
                                      "the image and push it as Docker schema2 or OCI");
  ServeManifest(fake, R"({"schemaVersion":1,"name":"app"})", "application/json");
  r = client->GetManifest("app", "1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kUnimplemented);

  // E4: both manifests and layers.
  ServeManifest(fake,
                R"({"schemaVersion":2,"manifests":[],"config":)" + config + R"(,"layers":[]})",
                std::string(oci::kOciImageIndex));
  r = client->GetManifest("app", "1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "oci.ambiguous");

  // E5: Content-Type and mediaType disagree.
  ServeManifest(fake,
                R"({"schemaVersion":2,"mediaType":")" + std::string(oci::kDockerManifestList) +
                    R"(","manifests":[]})",
                std::string(oci::kOciImageIndex));
  r = client->GetManifest("app", "1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kIntegrity);
  EXPECT_EQ(r.error().code, "registry.media_type_mismatch");
  EXPECT_EQ(r.error().message, "manifest " + fake.domain() + "/app:1 is served as " +
                                   std::string(oci::kOciImageIndex) + " but says it is " +
                                   std::string(oci::kDockerManifestList));
  ServeManifest(fake,
                R"({"schemaVersion":2,"mediaType":")" + std::string(oci::kOciImageManifest) +
                    R"(","config":)" + config + R"(,"layers":[]})",
                std::string(oci::kOciImageIndex));
  r = client->GetManifest("app", "1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, "oci.media_type");

  // A generic Content-Type: the document decides.
  ServeManifest(fake, R"({"schemaVersion":2,"config":)" + config + R"(,"layers":[]})",
                "application/json; charset=utf-8");
  r = client->GetManifest("app", "1");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->media_type, oci::kOciImageManifest);
}

TEST(RegistryClientTest, ManifestOverFourMebibytesIsRefused) {
  FakeRegistry fake;
  std::string huge = R"({"schemaVersion":2,"layers":[)" + std::string(5 << 20, ' ') + "]}";
  ServeManifest(fake, huge, std::string(oci::kOciImageManifest));
  auto r = Client(fake)->GetManifest("app", "1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(r.error().code, "registry.manifest_too_large");
  EXPECT_EQ(r.error().message,
            "manifest " + fake.domain() + "/app:1 is over the limit of 4194304 bytes");
}

TEST(RegistryClientTest, PutManifestChecksTheConfirmedDigest) {
  FakeRegistry fake;
  auto client = Client(fake);
  std::string doc = R"({"schemaVersion":2,"manifests":[]})";
  auto ok = client->PutManifest("app", "v1", std::string(oci::kOciImageIndex), doc);
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  EXPECT_EQ(*ok, oci::Digest::Sha256Of(doc));
  ASSERT_TRUE(fake.Manifest("app", "v1").has_value());
  EXPECT_EQ(fake.Manifest("app", "v1")->first, oci::kOciImageIndex);

  // E13: the registry confirms another digest.
  std::string wrong = "sha256:" + std::string(64, 'b');
  fake.SetScript([&](const ReceivedRequest& req) -> std::optional<Override> {
    if (req.method == "PUT")
      return Override{false, RawResponse(201, "Created", "", "Docker-Content-Digest: " + wrong + "\r\n")};
    return std::nullopt;
  });
  auto r = client->PutManifest("app", "v2", std::string(oci::kOciImageIndex), doc);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kIntegrity);
  EXPECT_EQ(r.error().message, "registry " + fake.domain() + " stored manifest " + fake.domain() +
                                   "/app:v2 as " + wrong + ", not " + ok->ToString());
}

// --- authentication ----------------------------------------------------------

TEST(RegistryClientTest, BasicAuthentication) {
  FakeRegistry::Options fo;
  fo.auth = FakeRegistry::Auth::kBasic;
  FakeRegistry fake(fo);
  auto image = testing::AddImage(fake, "app", "linux", "amd64", {"a"});
  fake.AddManifest("app", "1", image.desc.media_type, image.manifest);

  RegistryOptions o = TestOptions();
  o.credentials = Creds("alice", "s3cret-pw");
  auto client = Client(fake, o);
  auto r = client->GetManifest("app", "1");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 2u);  // the probe learnt Basic: credentials go up front
  EXPECT_EQ(requests[1].Header("authorization"), "Basic YWxpY2U6czNjcmV0LXB3");

  auto anonymous = Client(fake)->GetManifest("app", "1");
  ASSERT_FALSE(anonymous.ok());
  EXPECT_EQ(anonymous.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(anonymous.error().code, "registry.unauthorized");
  EXPECT_EQ(anonymous.error().message,
            "unauthorized: authentication required for " + fake.domain() + " (no credentials)");

  o.credentials = Creds("alice", "wrong-password");
  auto wrong = Client(fake, o)->GetManifest("app", "1");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(wrong.error().message, "unauthorized: authentication required for " + fake.domain());
  EXPECT_FALSE(Contains(wrong.error().ToString(), "wrong-password"));
}

TEST(RegistryClientTest, BearerTokenIsFetchedOncePerScope) {
  FakeRegistry::Options fo;
  fo.auth = FakeRegistry::Auth::kBearer;
  FakeRegistry fake(fo);
  auto image = testing::AddImage(fake, "team/app", "linux", "amd64", {"layer-a", "layer-b"});
  fake.AddManifest("team/app", "1", image.desc.media_type, image.manifest);
  RegistryOptions o = TestOptions();
  o.credentials = Creds("alice", "s3cret-pw");
  auto client = Client(fake, o);
  cas::InMemoryBlobStore store;

  ASSERT_TRUE(client->GetManifest("team/app", "1").ok());
  ASSERT_TRUE(client->GetManifest("team/app", image.desc.digest.ToString()).ok());
  for (const auto& layer : image.layer_descs) {
    auto r = client->GetBlob("team/app", layer, store);
    ASSERT_TRUE(r.ok()) << r.error().ToString();
  }
  auto tokens = fake.token_requests();
  ASSERT_EQ(tokens.size(), 1u);  // E8: one fetch for the pull scope, then cached
  EXPECT_EQ(tokens[0].target,
            "/token?service=fake-registry&scope=repository%3Ateam%2Fapp%3Apull");
  EXPECT_EQ(tokens[0].Header("authorization"), "Basic YWxpY2U6czNjcmV0LXB3");
  for (const auto& req : fake.requests()) {
    if (req.target == "/v2/") continue;
    EXPECT_EQ(req.Header("authorization"), "Bearer tok-1") << req.target;
  }
  EXPECT_EQ(fake.Count("GET", "/v2/team/app/"), 4);  // nothing was sent twice

  // Push needs another scope: one more token.
  ASSERT_TRUE(client->PutManifest("team/app", "2", image.desc.media_type, image.manifest).ok());
  EXPECT_EQ(fake.token_requests().size(), 2u);
  EXPECT_TRUE(Contains(fake.token_requests()[1].target, "scope=repository%3Ateam%2Fapp%3Apull%2Cpush"));

  o.credentials = Creds("alice", "nope");
  auto refused = Client(fake, o)->GetManifest("team/app", "1");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(refused.error().message,
            "unauthorized: authentication required for " + fake.domain() +
                " (the token server refused the credentials: 401 Unauthorized)");
}

TEST(RegistryClientTest, CredentialsNeverFollowARedirectToStorage) {
  FakeRegistry::Options fo;
  fo.auth = FakeRegistry::Auth::kBasic;
  std::string blob = Pattern(10000);
  std::atomic<bool> storage_wants_auth{false};
  TestServer storage([&](const ReceivedRequest& req) -> std::optional<std::string> {
    if (storage_wants_auth)
      return RawResponse(401, "Unauthorized", "", "WWW-Authenticate: Basic realm=\"s3\"\r\n");
    return FakeRegistry::BlobResponse(blob, req);
  });
  fo.blob_redirect_base = "http://127.0.0.1:" + std::to_string(storage.port());
  FakeRegistry fake(fo);
  fake.AddBlob("app", blob);
  RegistryOptions o = TestOptions();
  o.credentials = Creds("alice", "s3cret-pw");
  auto client = Client(fake, o);
  cas::InMemoryBlobStore store;

  auto r = client->GetBlob("app", BlobDesc(blob), store);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_TRUE(*store.Has(BlobDesc(blob).digest.ToString()));
  ASSERT_EQ(storage.requests().size(), 1u);
  EXPECT_EQ(storage.requests()[0].target,
            "/storage/" + BlobDesc(blob).digest.ToString() + "?X-Amz-Signature=SIGNED");
  EXPECT_EQ(storage.requests()[0].Header("authorization"), std::nullopt);
  EXPECT_TRUE(fake.requests().back().Header("authorization").has_value());

  // E9: the storage host asks for credentials: it does not get them.
  storage_wants_auth = true;
  cas::InMemoryBlobStore other;
  r = client->GetBlob("app", BlobDesc(blob), other);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(r.error().message, "unauthorized: fetching blob " + BlobDesc(blob).digest.ToString() +
                                   " from " + fake.domain() + "/app was redirected to 127.0.0.1:" +
                                   std::to_string(storage.port()) +
                                   ", which asks for credentials (not sent)");
  for (const auto& req : storage.requests()) EXPECT_EQ(req.Header("authorization"), std::nullopt);
  EXPECT_EQ(storage.requests().size(), 2u);
  EXPECT_TRUE(other.List()->empty());
}

TEST(RegistryClientTest, RedactsSignedUrls) {
  EXPECT_EQ(RedactUrls("bad redirect from https://s3.example/b/x?X-Amz-Signature=abc&t=1 to x"),
            "bad redirect from https://s3.example/b/x?REDACTED to x");
  EXPECT_EQ(RedactUrls("no urls here"), "no urls here");
  EXPECT_EQ(RedactUrls("\"http://h/p?q\""), "\"http://h/p?REDACTED\"");
}

// --- retries ---------------------------------------------------------------------

/// A script that answers requests matching `target` with `responses` in turn,
/// then lets them through.
FakeRegistry::Script Sequence(std::string target, std::vector<std::string> responses) {
  auto count = std::make_shared<std::atomic<std::size_t>>(0);
  return [target, responses, count](const ReceivedRequest& req) -> std::optional<Override> {
    if (req.target != target) return std::nullopt;
    std::size_t i = (*count)++;
    if (i < responses.size()) return Override{false, responses[i]};
    return std::nullopt;
  };
}

TEST(RegistryClientTest, HonoursRetryAfterOn429) {
  FakeRegistry fake;
  auto image = testing::AddImage(fake, "app", "linux", "amd64", {"a"});
  fake.AddManifest("app", "1", image.desc.media_type, image.manifest);
  fake.SetScript(Sequence("/v2/app/manifests/1",
                          {RawResponse(429, "Too Many Requests", "", "Retry-After: 1\r\n")}));
  auto client = Client(fake);
  auto start = std::chrono::steady_clock::now();
  auto r = client->GetManifest("app", "1");
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_GE(elapsed, 950ms);  // E10: waited as told (not the 10 ms backoff)
  EXPECT_LT(elapsed, 3s);
  EXPECT_EQ(fake.Count("GET", "/v2/app/manifests/1"), 2);
}

TEST(RegistryClientTest, GivesUpOn429AfterMaxAttempts) {
  FakeRegistry fake;
  fake.SetScript([](const ReceivedRequest& req) -> std::optional<Override> {
    if (req.target == "/v2/") return std::nullopt;
    return Override{false, RawResponse(429, "Too Many Requests",
                                       R"({"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]})",
                                       "Retry-After: 0\r\n")};
  });
  auto r = Client(fake)->GetManifest("app", "1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kTransient);
  EXPECT_EQ(r.error().code, "registry.rate_limited");
  EXPECT_EQ(r.error().message, "registry " + fake.domain() +
                                   " is rate limiting (429 Too Many Requests) fetching manifest " +
                                   fake.domain() + "/app:1 (TOOMANYREQUESTS: slow down)");
  EXPECT_EQ(fake.Count("GET", "/v2/app/"), 5);
}

TEST(RegistryClientTest, RepeatedServerErrorStopsRetrying) {
  FakeRegistry fake;
  fake.SetScript([](const ReceivedRequest& req) -> std::optional<Override> {
    if (req.target == "/v2/") return std::nullopt;
    return Override{false, RawResponse(503, "Service Unavailable", "")};
  });
  auto r = Client(fake)->GetManifest("app", "1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kTransient);  // E11
  EXPECT_EQ(r.error().code, "registry.unavailable");
  EXPECT_EQ(r.error().message, "registry " + fake.domain() +
                                   " failed (503 Service Unavailable) fetching manifest " +
                                   fake.domain() + "/app:1");
  EXPECT_EQ(fake.Count("GET", "/v2/app/"), 2);
}

TEST(RegistryClientTest, ServerErrorThenSuccess) {
  FakeRegistry fake;
  auto image = testing::AddImage(fake, "app", "linux", "amd64", {"a"});
  fake.AddManifest("app", "1", image.desc.media_type, image.manifest);
  fake.SetScript(Sequence("/v2/app/manifests/1", {RawResponse(500, "Internal Server Error", "")}));
  auto r = Client(fake)->GetManifest("app", "1");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(fake.Count("GET", "/v2/app/manifests/1"), 2);
}

TEST(RegistryClientTest, ClientErrorsAreNotRetried) {
  FakeRegistry fake;
  fake.SetScript([](const ReceivedRequest& req) -> std::optional<Override> {
    if (req.target == "/v2/") return std::nullopt;
    return Override{false, RawResponse(400, "Bad Request",
                                       R"({"errors":[{"code":"NAME_INVALID","message":"bad name"}]})")};
  });
  auto r = Client(fake)->GetManifest("app", "1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(r.error().message, "registry " + fake.domain() +
                                   " refused (400 Bad Request) fetching manifest " + fake.domain() +
                                   "/app:1 (NAME_INVALID: bad name)");
  EXPECT_EQ(fake.Count("GET", "/v2/app/"), 1);
}

// --- blob downloads ------------------------------------------------------------------

/// The first GET of a blob gets `cut` bytes of it, then the connection drops.
FakeRegistry::Script DropAfter(std::string target, std::string blob, std::size_t cut) {
  auto done = std::make_shared<std::atomic<bool>>(false);
  return [=](const ReceivedRequest& req) -> std::optional<Override> {
    if (req.target != target || done->exchange(true)) return std::nullopt;
    return Override{false, "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(blob.size()) +
                               "\r\n\r\n" + blob.substr(0, cut)};
  };
}

TEST(RegistryClientTest, ResumesADroppedDownloadWithRange) {
  FakeRegistry fake;
  std::string blob = Pattern(300 * 1024);
  std::string digest = fake.AddBlob("app", blob);
  std::size_t cut = blob.size() * 6 / 10;
  fake.SetScript(DropAfter("/v2/app/blobs/" + digest, blob, cut));
  cas::InMemoryBlobStore store;
  auto r = Client(fake)->GetBlob("app", BlobDesc(blob), store);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(*store.ReadAll(digest, blob.size()), blob);
  std::vector<ReceivedRequest> gets;
  for (const auto& req : fake.requests())
    if (req.method == "GET" && req.target.starts_with("/v2/app/blobs/")) gets.push_back(req);
  ASSERT_EQ(gets.size(), 2u);  // E12
  EXPECT_EQ(gets[0].Header("range"), std::nullopt);
  EXPECT_EQ(gets[1].Header("range"), "bytes=" + std::to_string(cut) + "-");
}

TEST(RegistryClientTest, RestartsWhenTheRegistryIgnoresRange) {
  FakeRegistry::Options fo;
  fo.support_range = false;
  FakeRegistry fake(fo);
  std::string blob = Pattern(200 * 1024);
  std::string digest = fake.AddBlob("app", blob);
  fake.SetScript(DropAfter("/v2/app/blobs/" + digest, blob, blob.size() / 2));
  cas::InMemoryBlobStore store;
  auto r = Client(fake)->GetBlob("app", BlobDesc(blob), store);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(*store.ReadAll(digest, blob.size()), blob);
  EXPECT_EQ(fake.Count("GET", "/v2/app/blobs/"), 2);
  EXPECT_TRUE(fake.requests().back().Header("range").has_value());  // asked, got 200: re-hashed
}

TEST(RegistryClientTest, CorruptBlobIsRetriedOnceThenRefused) {
  FakeRegistry fake;
  std::string blob = Pattern(5000);
  std::string digest = fake.AddBlob("app", blob);
  std::string corrupt = blob;
  corrupt[1234] ^= 0x01;
  fake.SetScript([&](const ReceivedRequest& req) -> std::optional<Override> {
    if (req.target != "/v2/app/blobs/" + digest) return std::nullopt;
    return Override{false, RawResponse(200, "OK", corrupt)};
  });
  cas::InMemoryBlobStore store;
  auto r = Client(fake)->GetBlob("app", BlobDesc(blob), store);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kIntegrity);  // E1
  EXPECT_EQ(r.error().code, "registry.blob_mismatch");
  EXPECT_EQ(r.error().message, "blob " + digest + " from " + fake.domain() +
                                   "/app failed verification: blob digest mismatch: expected " +
                                   digest +
                                   ", got sha256:" + crypto::Sha256Hex(corrupt));
  EXPECT_EQ(fake.Count("GET", "/v2/app/blobs/"), 2);
  EXPECT_TRUE(store.List()->empty());  // nothing published
}

TEST(RegistryClientTest, EndlessBlobStopsAtItsSize) {
  FakeRegistry fake;
  std::string blob = Pattern(1000);
  std::string digest = fake.AddBlob("app", blob);
  std::string endless = blob + std::string(1 << 20, 'x');
  fake.SetScript([&](const ReceivedRequest& req) -> std::optional<Override> {
    if (req.target != "/v2/app/blobs/" + digest) return std::nullopt;
    return Override{false, RawResponse(200, "OK", endless)};
  });
  cas::InMemoryBlobStore store;
  auto r = Client(fake)->GetBlob("app", BlobDesc(blob), store);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kIntegrity);  // E2
  EXPECT_EQ(r.error().code, "registry.blob_mismatch");
  EXPECT_TRUE(Contains(r.error().message, "failed verification: "));
  EXPECT_TRUE(store.List()->empty());
}

TEST(RegistryClientTest, UnknownBlob) {
  FakeRegistry fake;
  cas::InMemoryBlobStore store;
  auto d = BlobDesc("nothing here");
  auto r = Client(fake)->GetBlob("app", d, store);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(r.error().message,
            "blob unknown: " + d.digest.ToString() + " in " + fake.domain() + "/app");
}

TEST(RegistryClientTest, StalledRegistryTimesOut) {
  FakeRegistry fake;
  std::string blob = Pattern(100);
  std::string digest = fake.AddBlob("app", blob);
  fake.SetScript([&](const ReceivedRequest& req) -> std::optional<Override> {
    if (req.target == "/v2/") return std::nullopt;
    return Override{true, ""};
  });
  RegistryOptions o = TestOptions();
  o.io_timeout = 200ms;
  o.retry.max_attempts = 2;
  cas::InMemoryBlobStore store;
  auto client = Client(fake, o);
  auto start = std::chrono::steady_clock::now();
  auto r = client->GetBlob("app", BlobDesc(blob), store);
  ASSERT_FALSE(r.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_EQ(r.error().kind, ErrorKind::kTransient);  // H9
  EXPECT_EQ(r.error().code, "http.timeout");
  EXPECT_EQ(r.error().ToString(), "fetching blob " + digest + " from " + fake.domain() +
                                      "/app: reading the response from " + fake.domain() +
                                      " timed out after 200ms");
  EXPECT_EQ(fake.Count("GET", "/v2/app/blobs/"), 2);

  auto pushed = client->PushBlob("app2", BlobDesc(blob), store);  // HEAD stalls too
  ASSERT_FALSE(pushed.ok());
  EXPECT_EQ(pushed.error().kind, ErrorKind::kTransient);
}

// --- pushing blobs ----------------------------------------------------------------------

TEST(RegistryClientTest, PushesSmallBlobsInOnePut) {
  FakeRegistry fake;
  cas::InMemoryBlobStore store;
  std::string blob = Pattern(3000);
  std::string digest = store.Put(blob);
  auto client = Client(fake);
  auto r = client->PushBlob("team/app", BlobDesc(blob), store);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(*r, BlobPush::kUploaded);
  EXPECT_EQ(fake.Blob(digest), blob);
  EXPECT_EQ(fake.Count("HEAD", "/v2/team/app/blobs/"), 1);
  EXPECT_EQ(fake.Count("POST", "/v2/team/app/blobs/uploads/"), 1);
  EXPECT_EQ(fake.Count("PATCH", "/"), 0);
  ASSERT_EQ(fake.Count("PUT", "/v2/team/app/blobs/uploads/"), 1);
  auto put = fake.requests().back();
  EXPECT_TRUE(put.target.ends_with("?_state=0&digest=sha256%3A" + digest.substr(7))) << put.target;

  auto again = client->PushBlob("team/app", BlobDesc(blob), store);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, BlobPush::kExisted);
  EXPECT_EQ(fake.Count("POST", "/"), 1);
}

TEST(RegistryClientTest, PushesBigBlobsInChunks) {
  FakeRegistry fake;
  cas::InMemoryBlobStore store;
  std::string blob = Pattern(2500);
  std::string digest = store.Put(blob);
  RegistryOptions o = TestOptions();
  o.chunk_bytes = 1000;
  auto r = Client(fake, o)->PushBlob("app", BlobDesc(blob), store);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(fake.Blob(digest), blob);
  std::vector<std::string> ranges;
  for (const auto& req : fake.requests())
    if (req.method == "PATCH") ranges.push_back(req.Header("content-range").value_or("?"));
  EXPECT_EQ(ranges, (std::vector<std::string>{"0-999", "1000-1999", "2000-2499"}));
  EXPECT_EQ(fake.Count("PUT", "/v2/app/blobs/uploads/"), 1);
  EXPECT_EQ(fake.requests().back().body, "");
}

TEST(RegistryClientTest, MountsFromAnotherRepository) {
  FakeRegistry fake;
  cas::InMemoryBlobStore store;
  std::string blob = Pattern(3000);
  std::string digest = store.Put(blob);
  fake.AddBlob("base", blob);
  auto r = Client(fake)->PushBlob("app", BlobDesc(blob), store, {"app", "base"});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(*r, BlobPush::kMounted);
  EXPECT_TRUE(fake.RepoHasBlob("app", digest));
  EXPECT_EQ(fake.Count("POST", "/v2/app/blobs/uploads/?mount=sha256%3A" + digest.substr(7) +
                                   "&from=base"),
            1);
  EXPECT_EQ(fake.Count("PUT", "/"), 0);

  // A repository that does not have it: the mount POST opens a session that is used.
  std::string other = Pattern(100);
  store.Put(other);
  r = Client(fake)->PushBlob("app", BlobDesc(other), store, {"base"});
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(*r, BlobPush::kUploaded);
  EXPECT_EQ(fake.Count("POST", "/v2/app/blobs/uploads/"), 2);
  EXPECT_EQ(fake.Count("PUT", "/"), 1);
}

TEST(RegistryClientTest, CorruptLocalBlobIsNeverPushedWhole) {
  FakeRegistry fake;
  cas::InMemoryBlobStore store;
  std::string blob = Pattern(3000);
  std::string digest = store.Put(blob);
  store.Corrupt(digest, 10);
  auto r = Client(fake)->PushBlob("app", BlobDesc(blob), store);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kIntegrity);
  EXPECT_EQ(fake.Blob(digest), std::nullopt);
}

TEST(RegistryClientTest, UploadRestartsAfterAFailedChunk) {
  FakeRegistry fake;
  cas::InMemoryBlobStore store;
  std::string blob = Pattern(2500);
  std::string digest = store.Put(blob);
  auto failed = std::make_shared<std::atomic<bool>>(false);
  fake.SetScript([failed](const ReceivedRequest& req) -> std::optional<Override> {
    if (req.method == "PATCH" && req.Header("content-range") == "1000-1999" &&
        !failed->exchange(true))
      return Override{false, RawResponse(500, "Internal Server Error", "")};
    return std::nullopt;
  });
  RegistryOptions o = TestOptions();
  o.chunk_bytes = 1000;
  auto r = Client(fake, o)->PushBlob("app", BlobDesc(blob), store);
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(fake.Blob(digest), blob);
  EXPECT_EQ(fake.Count("POST", "/v2/app/blobs/uploads/"), 2);
}

// --- TLS, insecure registries, mirrors ------------------------------------------------------

class RegistryTlsTest : public ::testing::Test {
 protected:
  RegistryOptions Strict() {
    RegistryOptions o = TestOptions();
    o.loopback_is_insecure = false;  // make 127.0.0.1 behave like a remote registry
    return o;
  }
  http::testing::TestCert cert_ = http::testing::MakeSelfSignedCert("registry", {"IP:127.0.0.1"});
};

TEST_F(RegistryTlsTest, SelfSignedIsRefusedUnlessTrustedOrInsecure) {
  FakeRegistry::Options fo;
  fo.tls = cert_;
  FakeRegistry fake(fo);
  auto image = testing::AddImage(fake, "app", "linux", "amd64", {"a"});
  fake.AddManifest("app", "1", image.desc.media_type, image.manifest);

  auto r = Client(fake, Strict())->GetManifest("app", "1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kSecurity);  // E15
  EXPECT_EQ(r.error().code, "http.tls");
  EXPECT_EQ(r.error().ToString(), "contacting registry " + fake.domain() + ": TLS certificate of " +
                                      fake.domain() + " rejected: self-signed certificate");
  EXPECT_TRUE(fake.requests().empty());

  // The CA in certs.d/HOST:PORT/ca.crt, as Docker reads it.
  cas::testing::TempDir certs;
  std::filesystem::create_directories(certs.path() + "/" + fake.domain());
  std::ofstream(certs.path() + "/" + fake.domain() + "/ca.crt") << cert_.cert_pem;
  RegistryOptions trusted = Strict();
  trusted.certs_dir = certs.path();
  r = Client(fake, trusted)->GetManifest("app", "1");
  ASSERT_TRUE(r.ok()) << r.error().ToString();

  RegistryOptions insecure = Strict();
  insecure.insecure_registries = {fake.domain()};
  r = Client(fake, insecure)->GetManifest("app", "1");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
}

TEST_F(RegistryTlsTest, PlainHttpOnlyForInsecureOrLoopback) {
  FakeRegistry fake;  // plain http
  auto image = testing::AddImage(fake, "app", "linux", "amd64", {"a"});
  fake.AddManifest("app", "1", image.desc.media_type, image.manifest);
  auto r = Client(fake, Strict())->GetManifest("app", "1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().kind, ErrorKind::kSecurity);
  EXPECT_EQ(r.error().code, "http.tls");
  EXPECT_TRUE(fake.requests().empty());

  r = Client(fake)->GetManifest("app", "1");  // loopback: https tried, then http
  ASSERT_TRUE(r.ok()) << r.error().ToString();
}

TEST(RegistryClientTest, DockerHubMirrorIsTriedFirst) {
  FakeRegistry mirror;
  auto image = testing::AddImage(mirror, "library/busybox", "linux", "amd64", {"a"});
  mirror.AddManifest("library/busybox", "latest", image.desc.media_type, image.manifest);
  RegistryOptions o = TestOptions();
  o.mirrors = {"http://" + mirror.domain()};
  auto client = RegistryClient::Create("docker.io", o);
  ASSERT_TRUE(client.ok()) << client.error().ToString();
  EXPECT_EQ((*client)->domain(), "docker.io");
  auto r = (*client)->GetManifest("library/busybox", "latest");
  ASSERT_TRUE(r.ok()) << r.error().ToString();
  EXPECT_EQ(r->bytes, image.manifest);
  cas::InMemoryBlobStore store;
  ASSERT_TRUE((*client)->GetBlob("library/busybox", image.layer_descs[0], store).ok());
  EXPECT_EQ(mirror.Count("GET", "/v2/library/busybox/"), 2);

  o.mirrors = {"ftp://nope"};
  auto bad = RegistryClient::Create("docker.io", o);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().message, "invalid registry mirror \"ftp://nope\"");
}

}  // namespace
}  // namespace manifold::registry
