#include "common/crypto/sha256.h"

#include <gtest/gtest.h>

#include <string>

namespace manifold::crypto {
namespace {

// FIPS 180-2 / NIST CSHS test vectors.
TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(Sha256Hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Sha256Test, StreamingEqualsOneShot) {
  std::string data;
  for (int i = 0; i < 100000; ++i) data.push_back(static_cast<char>(i * 31 + 7));
  Sha256 h;
  std::size_t pos = 0;
  for (std::size_t chunk = 1; pos < data.size(); chunk = chunk * 3 + 1) {
    std::size_t n = std::min(chunk, data.size() - pos);
    h.Update(std::string_view(data).substr(pos, n));
    pos += n;
  }
  EXPECT_EQ(h.bytes_hashed(), data.size());
  EXPECT_EQ(h.HexDigest(), Sha256Hex(data));
}

TEST(Sha256Test, FinishResetsForReuse) {
  Sha256 h;
  h.Update("ab");
  h.Update("c");
  EXPECT_EQ(h.HexDigest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(h.bytes_hashed(), 0u);
  EXPECT_EQ(h.HexDigest(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(Sha256Test, RawDigestMatchesHex) {
  Sha256 h;
  h.Update("abc");
  auto raw = h.Digest();
  EXPECT_EQ(raw[0], 0xba);
  EXPECT_EQ(raw[31], 0xad);
  EXPECT_EQ(HexEncode(raw.data(), raw.size()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, MovedObjectKeepsState) {
  Sha256 a;
  a.Update("a");
  Sha256 b = std::move(a);
  b.Update("bc");
  EXPECT_EQ(b.HexDigest(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace manifold::crypto
