#include "common/crypto/sha256.h"

#include <openssl/evp.h>

#include "common/base/error.h"

namespace manifold::crypto {

void Sha256::CtxFree::operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  MF_ASSERT(ctx_ != nullptr, "EVP_MD_CTX_new failed");
  Reset();
}

Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&& other) noexcept = default;
Sha256& Sha256::operator=(Sha256&& other) noexcept = default;

void Sha256::Reset() {
  // EVP_sha256() is a static method table, not state we own: no global context
  // is kept (STYLE.md section 2, crypto must not hold global state).
  MF_ASSERT(EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) == 1, "EVP_DigestInit_ex failed");
  bytes_hashed_ = 0;
}

void Sha256::Update(std::string_view data) {
  MF_ASSERT(ctx_ != nullptr, "Sha256 used after move");
  if (data.empty()) return;
  MF_ASSERT(EVP_DigestUpdate(ctx_.get(), data.data(), data.size()) == 1, "EVP_DigestUpdate failed");
  bytes_hashed_ += data.size();
}

std::array<std::uint8_t, Sha256::kDigestBytes> Sha256::Digest() {
  MF_ASSERT(ctx_ != nullptr, "Sha256 used after move");
  std::array<std::uint8_t, kDigestBytes> out{};
  unsigned int len = 0;
  MF_ASSERT(EVP_DigestFinal_ex(ctx_.get(), out.data(), &len) == 1 && len == kDigestBytes,
            "EVP_DigestFinal_ex failed");
  Reset();
  return out;
}

std::string Sha256::HexDigest() {
  auto raw = Digest();
  return HexEncode(raw.data(), raw.size());
}

std::string Sha256Hex(std::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.HexDigest();
}

std::string HexEncode(const std::uint8_t* data, std::size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(size * 2, '\0');
  for (std::size_t i = 0; i < size; ++i) {
    out[2 * i] = kHex[data[i] >> 4];
    out[2 * i + 1] = kHex[data[i] & 0x0f];
  }
  return out;
}

}  // namespace manifold::crypto
