#include "common/http/url_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "common/base/unique_fd.h"
#include "common/crypto/sha256.h"
#include "common/http/http_client.h"
#include "common/layer/byte_stream.h"

namespace manifold::http {
namespace {

class HashingFileSink : public layer::ByteSink {
 public:
  explicit HashingFileSink(int fd) : file_(fd) {}
  Expected<void> Write(std::string_view data) override {
    hash_.Update(data);
    return file_.Write(data);
  }
  std::string Digest() { return "sha256:" + hash_.HexDigest(); }

 private:
  layer::FdSink file_;
  crypto::Sha256 hash_;
};

class HashingSink : public layer::ByteSink {
 public:
  Expected<void> Write(std::string_view data) override {
    hash_.Update(data);
    return Ok();
  }
  std::string Digest() { return "sha256:" + hash_.HexDigest(); }

 private:
  crypto::Sha256 hash_;
};

ClientOptions Options() {
  ClientOptions o;
  o.max_body_bytes = std::uint64_t{20} << 30;
  return o;
}

Expected<void> CheckStatus(const std::string& url, const Response& r) {
  if (r.status >= 200 && r.status < 300) return Ok();
  return MakeError(ErrorKind::kInvalidInput, "step.add.status",
                   "failed to fetch " + url + ": " + std::to_string(r.status) + " " + r.reason);
}

}  // namespace

bool IsAddUrl(const std::string& source) {
  return source.starts_with("http://") || source.starts_with("https://");
}

std::string UrlFileName(const std::string& url) {
  std::string path = url;
  auto scheme = path.find("://");
  if (scheme != std::string::npos) path = path.substr(scheme + 3);
  auto cut = path.find_first_of("?#");
  if (cut != std::string::npos) path = path.substr(0, cut);
  auto slash = path.find('/');
  if (slash == std::string::npos) return "download";
  path = path.substr(slash);
  while (!path.empty() && path.back() == '/') path.pop_back();
  std::string name = path.substr(path.rfind('/') + 1);
  if (name.empty() || name == "." || name == "..") return "download";
  return name;
}

Expected<Downloaded> DownloadUrl(const std::string& url, const std::string& checksum,
                                 const std::string& into_dir) {
  if (!checksum.empty() && (!checksum.starts_with("sha256:") || checksum.size() != 71))
    return MakeError(ErrorKind::kInvalidInput, "step.add.checksum_format",
                     "invalid --checksum \"" + checksum + "\": want sha256:<64 hex digits>");
  Downloaded d;
  d.path = into_dir + "/" + UrlFileName(url);
  int fd = ::open(d.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0)
    return MakeError(ErrorKind::kInternal, "step.add.io", "create " + d.path + ": " + std::strerror(errno));
  UniqueFd guard(fd);
  HashingFileSink sink(fd);
  Request req;
  req.url = url;
  MF_TRY(resp, Fetch(req, sink, Options()));
  MF_TRY_VOID(CheckStatus(url, resp));
  d.digest = sink.Digest();
  if (!checksum.empty() && checksum != d.digest)
    return MakeError(ErrorKind::kIntegrity, "step.add.checksum",
                     "digest mismatch for " + url + ": want " + checksum + ", got " + d.digest);
  ::fchmod(fd, 0600);
  if (auto lm = resp.Header("last-modified")) {
    std::tm tm{};
    if (::strptime(lm->c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm)) {
      timespec times[2];
      times[0].tv_sec = times[1].tv_sec = ::timegm(&tm);
      times[0].tv_nsec = times[1].tv_nsec = 0;
      ::futimens(fd, times);
    }
  }
  return d;
}

Expected<std::string> UrlFingerprint(const std::string& url) {
  Request head;
  head.method = "HEAD";
  head.url = url;
  std::string ignored;
  auto r = FetchToString(head, &ignored, Options());
  if (r.ok() && r->status >= 200 && r->status < 300) {
    auto etag = r->Header("etag");
    auto lm = r->Header("last-modified");
    if (etag || lm) {
      auto len = r->Header("content-length");
      return "etag=" + etag.value_or("") + ";last-modified=" + lm.value_or("") +
             ";length=" + len.value_or("");
    }
  }
  HashingSink sink;
  Request get;
  get.url = url;
  MF_TRY(resp, Fetch(get, sink, Options()));
  MF_TRY_VOID(CheckStatus(url, resp));
  return sink.Digest();
}

}  // namespace manifold::http
