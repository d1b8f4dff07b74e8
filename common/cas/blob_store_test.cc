// The BlobStore contract, run against LocalBlobStore and InMemoryBlobStore so
// the fake cannot drift from the real thing.
#include "common/cas/blob_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <functional>
#include <vector>

#include "common/cas/digest.h"
#include "common/cas/local_blob_store.h"
#include "common/cas/testing/in_memory_blob_store.h"
#include "common/cas/testing/temp_dir.h"

namespace manifold::cas {
namespace {

using testing::DigestOf;
using testing::TempDir;

struct Impl {
  const char* name;
  std::function<std::unique_ptr<BlobStore>(const std::string& root)> make;
  /// Flips the first byte of a stored blob behind the store's back.
  std::function<void(BlobStore&, const std::string& root, const std::string& digest)> corrupt;
  std::function<bool(BlobStore&, const std::string& root, const std::string& digest)> quarantined;
};

std::string HexOf(const std::string& digest) { return digest.substr(7); }

const Impl kImpls[] = {
    {"Local",
     [](const std::string& root) -> std::unique_ptr<BlobStore> {
       auto store = LocalBlobStore::Open(root);
       MF_ASSERT(store.ok(), store.ok() ? "" : store.error().ToString());
       return std::move(*store);
     },
     [](BlobStore&, const std::string& root, const std::string& digest) {
       std::string path = root + "/blobs/sha256/" + HexOf(digest);
       ::chmod(path.c_str(), 0644);
       std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
       char c;
       f.read(&c, 1);
       f.seekp(0);
       c = static_cast<char>(~c);
       f.write(&c, 1);
     },
     [](BlobStore&, const std::string& root, const std::string& digest) {
       struct stat st;
       return ::stat((root + "/quarantine/" + HexOf(digest)).c_str(), &st) == 0;
     }},
    {"InMemory", [](const std::string&) -> std::unique_ptr<BlobStore> {
       return std::make_unique<InMemoryBlobStore>();
     },
     [](BlobStore& s, const std::string&, const std::string& digest) {
       static_cast<InMemoryBlobStore&>(s).Corrupt(digest);
     },
     [](BlobStore& s, const std::string&, const std::string& digest) {
       return static_cast<InMemoryBlobStore&>(s).IsQuarantined(digest);
     }},
};

void PrintTo(const Impl& impl, std::ostream* os) { *os << impl.name; }

class BlobStoreTest : public ::testing::TestWithParam<Impl> {
 protected:
  void SetUp() override { store_ = GetParam().make(dir_.path()); }

  std::string Ingest(std::string_view content) {
    auto writer = store_->BeginIngest(DigestOf(content), content.size());
    EXPECT_TRUE(writer.ok());
    EXPECT_TRUE((*writer)->Write(content).ok());
    auto digest = (*writer)->Commit();
    EXPECT_TRUE(digest.ok()) << digest.error().ToString();
    return *digest;
  }

  Expected<std::string> ReadVerified(const std::string& digest, std::size_t chunk = 3) {
    MF_TRY(reader, store_->OpenBlob(digest, /*verify=*/true));
    std::string out;
    std::vector<char> buffer(chunk);
    for (;;) {
      MF_TRY(n, reader->Read(buffer));
      if (n == 0) return out;
      out.append(buffer.data(), n);
    }
  }

  TempDir dir_;
  std::unique_ptr<BlobStore> store_;
};

TEST_P(BlobStoreTest, IngestThenRead) {
  auto writer = store_->BeginIngest(DigestOf("hello world"), 11);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Write("hello").ok());
  ASSERT_TRUE((*writer)->Write(" world").ok());
  EXPECT_EQ((*writer)->bytes_written(), 11u);
  auto digest = (*writer)->Commit();
  ASSERT_TRUE(digest.ok()) << digest.error().ToString();
  EXPECT_EQ(*digest, DigestOf("hello world"));

  EXPECT_TRUE(*store_->Has(*digest));
  EXPECT_EQ(*store_->Stat(*digest), 11u);
  EXPECT_EQ(*ReadVerified(*digest), "hello world");
  EXPECT_EQ(*store_->ReadAll(*digest), "hello world");
  EXPECT_EQ(*store_->List(), std::vector<std::string>{*digest});
}

TEST_P(BlobStoreTest, IngestWithoutExpectations) {
  auto writer = store_->BeginIngest();
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Write("abc").ok());
  EXPECT_EQ(*(*writer)->Commit(), DigestOf("abc"));
}

TEST_P(BlobStoreTest, EmptyBlob) {
  auto writer = store_->BeginIngest(std::nullopt, 0);
  ASSERT_TRUE(writer.ok());
  EXPECT_EQ(*(*writer)->Commit(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(*store_->ReadAll(DigestOf("")), "");
}

TEST_P(BlobStoreTest, DigestMismatchPublishesNothing) {
  auto writer = store_->BeginIngest(DigestOf("abc"));
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Write("abd").ok());
  auto digest = (*writer)->Commit();
  ASSERT_FALSE(digest.ok());
  EXPECT_EQ(digest.error().kind, ErrorKind::kIntegrity);
  EXPECT_EQ(digest.error().code, "cas.digest_mismatch");
  EXPECT_EQ(digest.error().message,
            "blob digest mismatch: expected " + DigestOf("abc") + ", got " + DigestOf("abd"));
  EXPECT_FALSE(*store_->Has(DigestOf("abd")));
  EXPECT_FALSE(*store_->Has(DigestOf("abc")));
  EXPECT_TRUE(store_->List()->empty());
}

TEST_P(BlobStoreTest, ShortBlobIsSizeMismatch) {
  auto writer = store_->BeginIngest(DigestOf("hello"), 10);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Write("hello").ok());
  auto digest = (*writer)->Commit();
  ASSERT_FALSE(digest.ok());
  EXPECT_EQ(digest.error().kind, ErrorKind::kIntegrity);
  EXPECT_EQ(digest.error().code, "cas.size_mismatch");
  EXPECT_EQ(digest.error().message, "blob size mismatch: expected 10 bytes, got 5");
  EXPECT_TRUE(store_->List()->empty());
}

TEST_P(BlobStoreTest, OverlongBlobFailsAtTheWrite) {
  auto writer = store_->BeginIngest(std::nullopt, 3);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Write("ab").ok());
  auto wrote = (*writer)->Write("cd");
  ASSERT_FALSE(wrote.ok());
  EXPECT_EQ(wrote.error().kind, ErrorKind::kIntegrity);
  EXPECT_EQ(wrote.error().code, "cas.size_mismatch");
  EXPECT_EQ(wrote.error().message, "blob size mismatch: expected 3 bytes, got at least 4");
  // The writer is aborted: nothing more is accepted or published.
  auto digest = (*writer)->Commit();
  ASSERT_FALSE(digest.ok());
  EXPECT_EQ(digest.error().kind, ErrorKind::kInternal);
  EXPECT_EQ(digest.error().code, "cas.writer_closed");
  EXPECT_EQ(digest.error().message, "blob writer used after commit, abort or failure");
  EXPECT_TRUE(store_->List()->empty());
}

TEST_P(BlobStoreTest, CommitTwiceIsAnError) {
  auto writer = store_->BeginIngest();
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Commit().ok());
  EXPECT_EQ((*writer)->Commit().error().code, "cas.writer_closed");
  EXPECT_EQ((*writer)->Write("x").error().code, "cas.writer_closed");
}

TEST_P(BlobStoreTest, AbandonedWriterPublishesNothing) {
  {
    auto writer = store_->BeginIngest();
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Write("never committed").ok());
  }
  {
    auto writer = store_->BeginIngest();
    ASSERT_TRUE(writer.ok());
    ASSERT_TRUE((*writer)->Write("aborted").ok());
    (*writer)->Abort();
    (*writer)->Abort();  // idempotent
  }
  EXPECT_TRUE(store_->List()->empty());
}

TEST_P(BlobStoreTest, SameDigestTwiceKeepsOneCopy) {
  std::string d1 = Ingest("same bytes");
  std::string d2 = Ingest("same bytes");
  EXPECT_EQ(d1, d2);
  EXPECT_EQ(store_->List()->size(), 1u);
  EXPECT_EQ(*store_->ReadAll(d1), "same bytes");
}

TEST_P(BlobStoreTest, MissingBlob) {
  std::string digest = DigestOf("absent");
  EXPECT_FALSE(*store_->Has(digest));
  auto size = store_->Stat(digest);
  ASSERT_FALSE(size.ok());
  EXPECT_EQ(size.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(size.error().code, "cas.not_found");
  EXPECT_EQ(size.error().message, "blob " + digest + " not found");
  auto reader = store_->OpenBlob(digest, true);
  ASSERT_FALSE(reader.ok());
  EXPECT_EQ(reader.error().code, "cas.not_found");
  EXPECT_EQ(store_->ReadAll(digest).error().code, "cas.not_found");
  EXPECT_TRUE(store_->Delete(digest).ok());
}

TEST_P(BlobStoreTest, DeleteRemoves) {
  std::string digest = Ingest("doomed");
  ASSERT_TRUE(store_->Delete(digest).ok());
  EXPECT_FALSE(*store_->Has(digest));
  EXPECT_TRUE(store_->List()->empty());
}

TEST_P(BlobStoreTest, ListIsSorted) {
  std::vector<std::string> digests = {Ingest("a"), Ingest("b"), Ingest("c")};
  std::sort(digests.begin(), digests.end());
  EXPECT_EQ(*store_->List(), digests);
}

TEST_P(BlobStoreTest, ReadAllEnforcesLimit) {
  std::string digest = Ingest("12345");
  EXPECT_EQ(*store_->ReadAll(digest, 5), "12345");
  auto all = store_->ReadAll(digest, 4);
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(all.error().code, "cas.too_large");
  EXPECT_EQ(all.error().message, "blob " + digest + " is 5 bytes, over the 4-byte limit");
}

TEST_P(BlobStoreTest, BitRotIsDetectedAndQuarantined) {
  std::string digest = Ingest("precious layer bytes");
  GetParam().corrupt(*store_, dir_.path(), digest);
  std::string rotted = "precious layer bytes";
  rotted[0] = static_cast<char>(~rotted[0]);

  // An unverified read hands out the bytes as they are.
  {
    auto reader = store_->OpenBlob(digest, /*verify=*/false);
    ASSERT_TRUE(reader.ok());
    std::vector<char> buffer(100);
    auto n = (*reader)->Read(buffer);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(std::string(buffer.data(), *n), rotted);
  }

  auto reader = store_->OpenBlob(digest, /*verify=*/true);
  ASSERT_TRUE(reader.ok());
  std::vector<char> buffer(7);
  std::string got;
  Expected<std::size_t> n = std::size_t{0};
  while ((n = (*reader)->Read(buffer)).ok() && *n > 0) got.append(buffer.data(), *n);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(got, rotted);  // the bytes flowed; the verdict comes at the end
  EXPECT_EQ(n.error().kind, ErrorKind::kIntegrity);
  EXPECT_EQ(n.error().code, "cas.corrupt");
  EXPECT_EQ(n.error().message, "blob " + digest + " is corrupt: its content hashes to " +
                                   DigestOf(rotted) + "; moved to quarantine");
  // Sticky: reading on repeats the verdict.
  EXPECT_EQ((*reader)->Read(buffer).error().code, "cas.corrupt");

  EXPECT_FALSE(*store_->Has(digest));
  EXPECT_TRUE(GetParam().quarantined(*store_, dir_.path(), digest));
  // A re-fetch can now store a good copy.
  EXPECT_EQ(Ingest("precious layer bytes"), digest);
  EXPECT_EQ(*store_->ReadAll(digest), "precious layer bytes");
}

TEST_P(BlobStoreTest, ReadAllVerifies) {
  std::string digest = Ingest("{\"schemaVersion\":2}");
  GetParam().corrupt(*store_, dir_.path(), digest);
  auto all = store_->ReadAll(digest);
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.error().kind, ErrorKind::kIntegrity);
  EXPECT_EQ(all.error().code, "cas.corrupt");
}

TEST_P(BlobStoreTest, MalformedDigestsAreRejected) {
  const std::string hex(64, 'a');
  const std::vector<std::string> bad = {
      "",
      "sha256:",
      "sha256:../../x",
      "sha256:" + hex.substr(1),
      "sha256:" + hex + "a",
      "sha256:" + std::string(64, 'A'),
      "sha256:" + hex.substr(2) + "/.",
      "sha512:" + hex + hex,
      "SHA256:" + hex,
      hex,
      "sha256:" + hex + "\n",
      std::string("sha256:") + std::string(63, 'a') + '\0',
  };
  for (const auto& digest : bad) {
    SCOPED_TRACE(QuoteForError(digest));
    std::vector<Error> errors;
    errors.push_back(store_->Has(digest).error());
    errors.push_back(store_->Stat(digest).error());
    errors.push_back(store_->OpenBlob(digest, true).error());
    errors.push_back(store_->ReadAll(digest).error());
    errors.push_back(store_->Delete(digest).error());
    errors.push_back(store_->BeginIngest(digest).error());
    for (const auto& e : errors) {
      EXPECT_EQ(e.kind, ErrorKind::kInvalidInput);
      EXPECT_EQ(e.code, "cas.digest_invalid");
    }
  }
  EXPECT_EQ(store_->Has("sha256:../../x").error().message,
            "invalid digest \"sha256:../../x\": want sha256:<64 lowercase hex>");
  EXPECT_EQ(store_->Has("sha256:a\nb\"").error().message,
            "invalid digest \"sha256:a\\x0ab\\\"\": want sha256:<64 lowercase hex>");
  EXPECT_EQ(store_->Has(std::string(100, 'x')).error().message,
            "invalid digest \"" + std::string(80, 'x') + "\"...: want sha256:<64 lowercase hex>");
}

INSTANTIATE_TEST_SUITE_P(Impls, BlobStoreTest, ::testing::ValuesIn(kImpls),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace manifold::cas
