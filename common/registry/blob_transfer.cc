// RegistryClient's blob operations: HEAD, the resumable verified GET, and
// the push path (HEAD, cross-repository mount, monolithic or chunked upload).
#include <algorithm>
#include <span>

#include "common/base/log.h"
#include "common/registry/client.h"
#include "common/registry/client_impl.h"

namespace manifold::registry {
namespace {

/// Upper bound on resumptions of one download that each made progress (a
/// registry dropping the connection every few bytes must not loop forever).
constexpr int kMaxResumes = 64;

Error BlobMismatch(const std::string& digest, const std::string& where, const Error& cause) {
  return MakeError(ErrorKind::kIntegrity, "registry.blob_mismatch",
                   "blob " + digest + " from " + where + " failed verification: " + cause.message);
}

/// "bytes 100-199/200" -> 100.
std::optional<std::uint64_t> ContentRangeStart(const http::Response& head) {
  auto value = head.Header("content-range");
  if (!value || !value->starts_with("bytes ")) return std::nullopt;
  std::string rest = value->substr(6);
  auto dash = rest.find('-');
  if (dash == 0 || dash == std::string::npos) return std::nullopt;
  std::uint64_t start = 0;
  for (std::size_t i = 0; i < dash; ++i) {
    if (rest[i] < '0' || rest[i] > '9' || start > (UINT64_MAX - 9) / 10) return std::nullopt;
    start = start * 10 + static_cast<std::uint64_t>(rest[i] - '0');
  }
  return start;
}

/// The ingest a download writes into, restarted when the registry answers a
/// Range request with the whole blob.
class DownloadSink : public layer::ByteSink {
 public:
  DownloadSink(cas::BlobStore& store, const oci::Descriptor& blob) : store_(store), blob_(blob) {}

  Expected<void> Restart() {
    if (writer_) writer_->Abort();
    writer_.reset();
    error_.reset();
    MF_TRY(w, store_.BeginIngest(blob_.digest.ToString(), static_cast<std::uint64_t>(blob_.size)));
    writer_ = std::move(w);
    return Ok();
  }

  void set_requested(std::uint64_t offset) { requested_ = offset; }

  layer::ByteSink* Route(const http::Response& head) {
    if (requested_ > 0) {
      auto start = ContentRangeStart(head);
      if (head.status == 206 && start && *start == requested_) return this;
      // Range ignored (200) or another range sent: re-hash from zero.
      MF_LOG_DEBUG("blob {}: registry ignored Range, restarting", blob_.digest.ToString());
      auto r = Restart();
      if (!r.ok()) error_ = std::move(r).error();
    }
    return this;
  }

  Expected<void> Write(std::string_view data) override {
    if (error_) return *error_;
    return writer_->Write(data);
  }

  std::uint64_t written() const { return writer_ ? writer_->bytes_written() : 0; }
  Expected<std::string> Commit() {
    if (error_) return *error_;
    return writer_->Commit();
  }

 private:
  cas::BlobStore& store_;
  const oci::Descriptor& blob_;
  std::unique_ptr<cas::BlobWriter> writer_;
  std::optional<Error> error_;
  std::uint64_t requested_ = 0;
};

Expected<void> FetchBlob(RegistryClient::Impl& impl, Host& host, const std::string& repo,
                         const oci::Descriptor& blob, cas::BlobStore& store) {
  const RetryPolicy& policy = impl.options.retry;
  std::string digest = blob.digest.ToString();
  std::string where = host.name + "/" + repo;
  DownloadSink sink(store, blob);
  MF_TRY_VOID(sink.Restart());
  int failures = 0, resumes = 0, integrity_retries = 0, previous_status = 0;
  for (;;) {
    std::uint64_t offset = sink.written();
    Call call;
    call.what = "fetching blob " + digest + " from " + where;
    call.target = "/v2/" + repo + "/blobs/" + digest;
    call.scopes = {PullScope(repo)};
    if (offset > 0) call.headers.emplace_back("Range", "bytes=" + std::to_string(offset) + "-");
    call.route = [&sink](const http::Response& head) { return sink.Route(head); };
    sink.set_requested(offset);
    auto r = impl.Exchange(host, call);
    std::chrono::milliseconds delay{0};
    if (!r.ok()) {
      Error e = std::move(r).error();
      if (e.kind == ErrorKind::kIntegrity) {
        // One more try from scratch (RELIABILITY.md E1): a flipped bit in
        // transit should not fail a build; a registry serving bad bytes will.
        if (integrity_retries++ == 0) {
          MF_LOG_WARN("blob {} from {} failed verification, fetching it again", digest, where);
          MF_TRY_VOID(sink.Restart());
          continue;
        }
        return BlobMismatch(digest, where, e);
      }
      if (e.kind != ErrorKind::kTransient) return e;
      bool progressed = sink.written() > offset;
      if (progressed) {
        if (++resumes > kMaxResumes) return e;
      } else if (++failures >= policy.max_attempts) {
        return e;
      }
      delay = progressed ? std::chrono::milliseconds(0) : Backoff(policy, failures);
      MF_LOG_DEBUG("blob {}: {}; resuming at byte {} in {}ms", digest, e.message, sink.written(),
                   delay.count());
    } else if (!r->ok()) {
      int status = r->head.status;
      if (status == 404)
        return MakeError(ErrorKind::kInvalidInput, "registry.blob_unknown",
                         "blob unknown: " + digest + " in " + where);
      if (status == 416) {  // our Range was refused: start over
        MF_TRY_VOID(sink.Restart());
        if (++failures >= policy.max_attempts) return impl.StatusError(host, call, *r);
        continue;
      }
      if (!IsRetryableStatus(status, previous_status) || ++failures >= policy.max_attempts)
        return impl.StatusError(host, call, *r);
      delay = Backoff(policy, failures);
      if (auto after = r->head.Header("retry-after")) {
        auto wait = ParseRetryAfter(*after, std::chrono::system_clock::now());
        if (wait && *wait > policy.max_retry_after) return impl.StatusError(host, call, *r);
        if (wait) delay = *wait;
      }
      previous_status = status;
    } else {
      auto committed = sink.Commit();
      if (committed.ok()) return Ok();
      Error e = std::move(committed).error();
      if (e.kind != ErrorKind::kIntegrity) return e;
      if (integrity_retries++ == 0) {
        MF_LOG_WARN("blob {} from {} failed verification, fetching it again", digest, where);
        MF_TRY_VOID(sink.Restart());
        continue;
      }
      return BlobMismatch(digest, where, e);
    }
    impl.Pause(delay);
  }
}

/// Reads a stored blob for upload, `limit` bytes per window; when the whole
/// blob has been handed out it reads once more, so a verifying reader checks
/// the digest before the last bytes leave (a corrupt local blob is never
/// pushed whole).
class UploadSource : public layer::ByteSource {
 public:
  UploadSource(cas::BlobReader& reader, std::uint64_t total) : reader_(reader), total_(total) {}
  void set_window(std::uint64_t bytes) { window_ = bytes; }

  Expected<std::size_t> Read(std::span<char> buffer) override {
    if (window_ == 0) return std::size_t{0};
    std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(buffer.size(), window_));
    MF_TRY(n, reader_.Read(buffer.first(want)));
    sent_ += n;
    window_ -= n;
    if (n > 0 && sent_ == total_) {
      char probe[1];
      MF_TRY(extra, reader_.Read(std::span<char>(probe, 1)));
      if (extra != 0)
        return MakeError(ErrorKind::kIntegrity, "registry.blob_size",
                         "stored blob is longer than its descriptor says");
    }
    return n;
  }

 private:
  cas::BlobReader& reader_;
  std::uint64_t total_;
  std::uint64_t window_ = 0;
  std::uint64_t sent_ = 0;
};

std::string WithQuery(const std::string& location, const std::string& query) {
  return location + (location.find('?') == std::string::npos ? "?" : "&") + query;
}

Expected<void> CheckConfirmedDigest(const Reply& reply, const std::string& digest,
                                    const std::string& host, const std::string& where) {
  auto header = reply.head.Header("docker-content-digest");
  if (header && *header != digest)
    return MakeError(ErrorKind::kIntegrity, "registry.digest_mismatch",
                     "registry " + host + " stored blob " + digest + " for " + where + " as " +
                         header->substr(0, 140));
  return Ok();
}

}  // namespace

Expected<std::optional<std::int64_t>> RegistryClient::HeadBlob(const std::string& repo,
                                                              const oci::Digest& digest) {
  Host& host = impl_->origin();
  Call call;
  call.method = "HEAD";
  call.what = "checking blob " + digest.ToString() + " in " + host.name + "/" + repo;
  call.target = "/v2/" + repo + "/blobs/" + digest.ToString();
  call.scopes = {PullScope(repo)};
  MF_TRY(reply, impl_->Send(host, call));
  if (reply.head.status == 404) return std::optional<std::int64_t>();
  if (!reply.ok()) return impl_->StatusError(host, call, reply);
  std::int64_t size = -1;
  if (auto length = reply.head.Header("content-length")) {
    try {
      size = std::stoll(*length);
    } catch (const std::exception&) {
      size = -1;
    }
  }
  return std::optional<std::int64_t>(size);
}

Expected<void> RegistryClient::GetBlob(const std::string& repo, const oci::Descriptor& blob,
                                       cas::BlobStore& store) {
  if (blob.digest.algorithm != "sha256")
    return MakeError(ErrorKind::kUnimplemented, "registry.digest_algorithm",
                     "blob " + blob.digest.ToString() + ": only sha256 blobs are supported");
  for (auto& host : impl_->hosts) {
    auto r = FetchBlob(*impl_, *host, repo, blob, store);
    if (r.ok() || !host->mirror) return r;
    MF_LOG_DEBUG("mirror {}: {}", host->name, r.error().message);
  }
  return MakeError(ErrorKind::kInternal, "registry.internal", "no registry host");
}

Expected<BlobPush> RegistryClient::PushBlob(const std::string& repo, const oci::Descriptor& blob,
                                            cas::BlobStore& store,
                                            const std::vector<std::string>& mount_from) {
  Impl& impl = *impl_;
  Host& host = impl.origin();
  std::string digest = blob.digest.ToString();
  std::string where = host.name + "/" + repo;
  MF_TRY(existing, HeadBlob(repo, blob.digest));
  if (existing) return BlobPush::kExisted;

  std::string location;
  for (const auto& from : mount_from) {
    if (from == repo) continue;
    Call call;
    call.method = "POST";
    call.what = "mounting blob " + digest + " from " + host.name + "/" + from + " into " + where;
    call.target = "/v2/" + repo + "/blobs/uploads/?mount=" + QueryEscape(digest) +
                  "&from=" + QueryEscape(from);
    call.scopes = {PushScope(repo), PullScope(from)};
    auto r = impl.Send(host, call);
    if (r.ok() && r->head.status == 201) {
      MF_TRY_VOID(CheckConfirmedDigest(*r, digest, host.name, where));
      return BlobPush::kMounted;
    }
    if (r.ok() && r->head.status == 202 && r->head.Header("location")) {
      location = *r->head.Header("location");  // mount refused, but an upload session started
      break;
    }
    MF_LOG_DEBUG("registry {}: cannot mount {} from {}", host.name, digest, from);
  }

  const RetryPolicy& policy = impl.options.retry;
  std::uint64_t size = static_cast<std::uint64_t>(blob.size);
  std::uint64_t chunk = std::max<std::uint64_t>(impl.options.chunk_bytes, 1);
  for (int attempt = 1;; ++attempt) {
    auto uploaded = [&]() -> Expected<void> {
      if (location.empty()) {
        Call start;
        start.method = "POST";
        start.what = "starting the upload of blob " + digest + " to " + where;
        start.target = "/v2/" + repo + "/blobs/uploads/";
        start.scopes = {PushScope(repo)};
        MF_TRY(reply, impl.Send(host, start));
        if (reply.head.status != 202) return impl.StatusError(host, start, reply);
        auto loc = reply.head.Header("location");
        if (!loc)
          return MakeError(ErrorKind::kTransient, "registry.protocol",
                           "registry " + host.name + " started an upload for " + where +
                               " without a Location");
        location = *loc;
      }
      MF_TRY(reader, store.OpenBlob(digest, /*verify=*/true));
      UploadSource source(*reader, size);
      Call call;
      call.scopes = {PushScope(repo)};
      call.headers = {{"Content-Type", "application/octet-stream"}};
      call.body_source = &source;
      std::uint64_t offset = 0;
      if (size > chunk) {
        while (offset < size) {
          std::uint64_t n = std::min(chunk, size - offset);
          source.set_window(n);
          call.method = "PATCH";
          call.what = "uploading blob " + digest + " to " + where + " (bytes " +
                      std::to_string(offset) + "-" + std::to_string(offset + n - 1) + ")";
          call.target = location;
          call.headers = {{"Content-Type", "application/octet-stream"},
                          {"Content-Range",
                           std::to_string(offset) + "-" + std::to_string(offset + n - 1)}};
          call.body_length = n;
          MF_TRY(reply, impl.Exchange(host, call));
          if (reply.head.status != 202) return impl.StatusError(host, call, reply);
          if (auto loc = reply.head.Header("location")) location = *loc;
          offset += n;
        }
        call.body_length = 0;
        source.set_window(0);
      } else {
        source.set_window(size);
        call.body_length = size;
      }
      call.method = "PUT";
      call.what = "uploading blob " + digest + " to " + where;
      call.target = WithQuery(location, "digest=" + QueryEscape(digest));
      call.headers = {{"Content-Type", "application/octet-stream"}};
      MF_TRY(reply, impl.Exchange(host, call));
      if (reply.head.status != 201 && reply.head.status != 204)
        return impl.StatusError(host, call, reply);
      return CheckConfirmedDigest(reply, digest, host.name, where);
    }();
    if (uploaded.ok()) return BlobPush::kUploaded;
    Error e = std::move(uploaded).error();
    if (e.kind != ErrorKind::kTransient || attempt >= policy.max_attempts) return e;
    // The session may be gone with the connection: start a new one.
    location.clear();
    auto delay = Backoff(policy, attempt);
    MF_LOG_DEBUG("registry {}: {}; restarting the upload in {}ms", host.name, e.message,
                 delay.count());
    impl.Pause(delay);
  }
}

}  // namespace manifold::registry
