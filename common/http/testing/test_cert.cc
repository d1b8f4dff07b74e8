#include "common/http/testing/test_cert.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <unistd.h>

#include <memory>

#include "common/base/error.h"

namespace manifold::http::testing {
namespace {

template <class T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;
using ExtPtr = std::unique_ptr<X509_EXTENSION, Deleter<X509_EXTENSION, X509_EXTENSION_free>>;

std::string BioString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

void AddExtension(X509* cert, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  ExtPtr ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
  MF_ASSERT(ext != nullptr, "bad extension " + value);
  MF_ASSERT(X509_add_ext(cert, ext.get(), -1) == 1);
}

}  // namespace

TestCert MakeSelfSignedCert(const std::string& common_name, const std::vector<std::string>& sans) {
  PkeyPtr key(EVP_EC_gen("P-256"));
  MF_ASSERT(key != nullptr, "EC key generation failed");
  X509Ptr cert(X509_new());
  MF_ASSERT(X509_set_version(cert.get(), 2) == 1);
  unsigned char serial[8];
  MF_ASSERT(RAND_bytes(serial, sizeof serial) == 1);
  serial[0] &= 0x7f;
  long serial_value = 0;
  for (unsigned char b : serial) serial_value = (serial_value << 8) | b;
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial_value);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  MF_ASSERT(X509_set_pubkey(cert.get(), key.get()) == 1);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  MF_ASSERT(X509_set_issuer_name(cert.get(), name) == 1);
  std::string san_list;
  for (const auto& san : sans) san_list += (san_list.empty() ? "" : ",") + san;
  if (!san_list.empty()) AddExtension(cert.get(), NID_subject_alt_name, san_list);
  AddExtension(cert.get(), NID_basic_constraints, "critical,CA:TRUE");
  AddExtension(cert.get(), NID_subject_key_identifier, "hash");
  MF_ASSERT(X509_sign(cert.get(), key.get(), EVP_sha256()) > 0, "signing failed");

  TestCert out;
  BioPtr cert_bio(BIO_new(BIO_s_mem()));
  MF_ASSERT(PEM_write_bio_X509(cert_bio.get(), cert.get()) == 1);
  out.cert_pem = BioString(cert_bio.get());
  BioPtr key_bio(BIO_new(BIO_s_mem()));
  MF_ASSERT(PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr,
                                     nullptr) == 1);
  out.key_pem = BioString(key_bio.get());
  return out;
}

TempFile::TempFile(const std::string& content) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::string tmpl = std::string(base ? base : "/tmp") + "/mf_http_XXXXXX";
  int fd = ::mkstemp(tmpl.data());
  MF_ASSERT(fd >= 0, "mkstemp failed");
  path_ = tmpl;
  std::size_t done = 0;
  while (done < content.size()) {
    ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    MF_ASSERT(n > 0, "write failed");
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
}

TempFile::~TempFile() { ::unlink(path_.c_str()); }

}  // namespace manifold::http::testing
