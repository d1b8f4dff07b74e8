#include "common/wire/blob_transfer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <deque>
#include <fstream>
#include <map>
#include <thread>

#include "common/cas/local_blob_store.h"
#include "common/cas/testing/temp_dir.h"
#include "common/crypto/sha256.h"
#include "common/wire/cluster.h"

namespace manifold::wire {
namespace {

using cas::testing::TempDir;
using namespace std::chrono_literals;

constexpr std::uint32_t kChunk = 64 * 1024;

std::string DigestOf(std::string_view data) { return "sha256:" + crypto::Sha256Hex(data); }

// Deterministic pseudo-random bytes.
std::string Bytes(std::size_t n, std::uint32_t seed) {
  std::string s(n, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
}

/// A blob server on a ROUTER: answers every request with AnswerBlobRequest,
/// or, when silent, swallows it.
class BlobServer {
 public:
  BlobServer(zmq::context_t& ctx, const std::string& endpoint, BlobPathFn path_of,
             bool silent = false)
      : socket_(ctx, zmq::socket_type::router), path_of_(std::move(path_of)), silent_(silent) {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind(endpoint);
    thread_ = std::thread([this] { Loop(); });
  }
  ~BlobServer() {
    stop_ = true;
    thread_.join();
  }

 private:
  void Loop() {
    while (!stop_) {
      zmq::pollitem_t item{socket_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, 20ms) <= 0) continue;
      zmq::message_t identity, request;
      if (!socket_.recv(identity, zmq::recv_flags::none)) continue;
      if (!identity.more() || !socket_.recv(request, zmq::recv_flags::none)) continue;
      while (request.more()) {  // drop any unexpected extra frames
        zmq::message_t extra;
        if (!socket_.recv(extra, zmq::recv_flags::none)) break;
        request = std::move(extra);
      }
      if (silent_) continue;
      auto frames = AnswerBlobRequest(request.to_string_view(), path_of_);
      if (frames.empty()) continue;
      EXPECT_TRUE(SendFrames(socket_, frames, &identity).ok());
    }
  }

  zmq::socket_t socket_;
  BlobPathFn path_of_;
  bool silent_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/// A temp dir holding a blob store and the files a server serves.
class BlobTransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = cas::LocalBlobStore::Open(dir_.path() + "/store");
    ASSERT_TRUE(store.ok()) << store.error().ToString();
    store_ = std::move(*store);
  }

  /// Writes `data` to a file and returns its path.
  std::string Serve(const std::string& name, const std::string& data) {
    const std::string path = dir_.path() + "/" + name;
    WriteFile(path, data);
    return path;
  }

  /// Fetches `digest` through a DEALER from a server answering with `files`.
  Expected<std::uint64_t> Fetch(const std::string& digest,
                                const std::map<std::string, std::string>& files,
                                const FetchOptions& options, bool silent = false) {
    auto path_of = [files](const std::string& d) -> Expected<std::string> {
      auto it = files.find(d);
      if (it == files.end()) return cas::NotFoundError(d);
      return it->second;
    };
    // A fresh endpoint each time: a closed socket's inproc name is released
    // asynchronously, so binding the same name again could race.
    const std::string endpoint = "inproc://blob-server-" + std::to_string(++fetches_);
    BlobServer server(ctx_, endpoint, path_of, silent);
    zmq::socket_t dealer(ctx_, zmq::socket_type::dealer);
    dealer.set(zmq::sockopt::linger, 0);
    dealer.connect(endpoint);
    DealerChannel channel(dealer);
    return FetchBlob(channel, digest, *store_, options);
  }

  TempDir dir_;
  int fetches_ = 0;
  zmq::context_t ctx_;
  std::unique_ptr<cas::LocalBlobStore> store_;
};

TEST_F(BlobTransferTest, FetchesBlobsOfEverySizeShape) {
  const FetchOptions options{kChunk, 4, 5000ms};
  const std::size_t sizes[] = {0, 1, kChunk - 1, kChunk, kChunk + 1, 10 * kChunk + 1};
  std::uint32_t seed = 0;
  for (std::size_t size : sizes) {
    SCOPED_TRACE(size);
    const std::string data = Bytes(size, ++seed);
    const std::string digest = DigestOf(data);
    const std::string path = Serve("blob-" + std::to_string(size), data);
    auto fetched = Fetch(digest, {{digest, path}}, options);
    ASSERT_TRUE(fetched.ok()) << fetched.error().ToString();
    EXPECT_EQ(*fetched, size);
    auto stat = store_->Stat(digest);
    ASSERT_TRUE(stat.ok()) << stat.error().ToString();
    EXPECT_EQ(*stat, size);
    auto back = store_->ReadAll(digest);
    ASSERT_TRUE(back.ok()) << back.error().ToString();
    EXPECT_TRUE(*back == data);
  }
}

TEST_F(BlobTransferTest, FetchingABlobAlreadyHeldSucceeds) {
  const std::string data = Bytes(3 * kChunk, 7);
  const std::string digest = DigestOf(data);
  const std::string path = Serve("blob", data);
  const FetchOptions options{kChunk, 2, 5000ms};
  ASSERT_TRUE(Fetch(digest, {{digest, path}}, options).ok());
  auto again = Fetch(digest, {{digest, path}}, options);
  ASSERT_TRUE(again.ok()) << again.error().ToString();
  EXPECT_EQ(*again, data.size());
}

TEST_F(BlobTransferTest, MissingBlobIsTheServersNotFound) {
  const std::string data = "not served";
  const std::string digest = DigestOf(data);
  // Known to the server's index, but the file is gone.
  auto fetched = Fetch(digest, {{digest, dir_.path() + "/gone"}}, {kChunk, 4, 5000ms});
  ASSERT_FALSE(fetched.ok());
  EXPECT_EQ(fetched.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(fetched.error().code, "cas.not_found");
  EXPECT_EQ(fetched.error().message, "blob " + digest + " is not here");
  EXPECT_FALSE(*store_->Has(digest));

  // Not known at all: the lookup's own error travels back.
  fetched = Fetch(digest, {}, {kChunk, 4, 5000ms});
  ASSERT_FALSE(fetched.ok());
  EXPECT_EQ(fetched.error().kind, ErrorKind::kInvalidInput);
  EXPECT_EQ(fetched.error().code, "cas.not_found");
  EXPECT_EQ(fetched.error().message, cas::NotFoundError(digest).message);
  EXPECT_FALSE(*store_->Has(digest));
}

TEST_F(BlobTransferTest, WrongBytesAreRefusedAndNothingIsStored) {
  const std::string data = Bytes(2 * kChunk + 5, 1);
  std::string forged = data;
  forged[kChunk + 3] ^= 0x55;
  const std::string digest = DigestOf(data);
  const std::string path = Serve("forged", forged);
  auto fetched = Fetch(digest, {{digest, path}}, {kChunk, 4, 5000ms});
  ASSERT_FALSE(fetched.ok());
  EXPECT_EQ(fetched.error().kind, ErrorKind::kIntegrity) << fetched.error().ToString();
  EXPECT_EQ(fetched.error().code, "cas.digest_mismatch");
  auto has = store_->Has(digest);
  ASSERT_TRUE(has.ok());
  EXPECT_FALSE(*has);
  EXPECT_FALSE(*store_->Has(DigestOf(forged)));
  auto list = store_->List();
  ASSERT_TRUE(list.ok());
  EXPECT_TRUE(list->empty());
}

TEST_F(BlobTransferTest, ASilentServerTimesOut) {
  const std::string data = "anything";
  const std::string digest = DigestOf(data);
  const std::string path = Serve("blob", data);
  const auto start = std::chrono::steady_clock::now();
  auto fetched = Fetch(digest, {{digest, path}}, {kChunk, 4, 200ms}, /*silent=*/true);
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(fetched.ok());
  EXPECT_EQ(fetched.error().kind, ErrorKind::kTransient);
  EXPECT_EQ(fetched.error().code, "wire.blob.timeout");
  EXPECT_EQ(fetched.error().message, "no answer from the blob server in 200 ms");
  EXPECT_LT(took, 5s);
  EXPECT_FALSE(*store_->Has(digest));
}

// ---------------------------------------------------------------- credit

/// Answers synchronously through AnswerBlobRequest; counts what is in flight
/// and can hand answers back newest first.
class LoopbackChannel : public ChunkChannel {
 public:
  LoopbackChannel(BlobPathFn path_of, bool newest_first)
      : path_of_(std::move(path_of)), newest_first_(newest_first) {}

  Expected<void> Send(const std::string& request) override {
    ++requests_;
    ++in_flight_;
    max_in_flight_ = std::max(max_in_flight_, in_flight_);
    auto frames = AnswerBlobRequest(request, path_of_);
    if (!frames.empty())
      answers_.push_back({frames[0].to_string(), frames.size() > 1 ? std::move(frames[1]) : zmq::message_t()});
    return Ok();
  }
  Expected<ChunkAnswer> Receive(std::chrono::milliseconds) override {
    if (answers_.empty()) return MakeError(ErrorKind::kTransient, "wire.blob.timeout", "idle");
    --in_flight_;
    ChunkAnswer out;
    if (newest_first_) {
      out = std::move(answers_.back());
      answers_.pop_back();
    } else {
      out = std::move(answers_.front());
      answers_.pop_front();
    }
    return out;
  }

  int requests() const { return requests_; }
  int max_in_flight() const { return max_in_flight_; }

 private:
  BlobPathFn path_of_;
  bool newest_first_;
  std::deque<ChunkAnswer> answers_;
  int requests_ = 0, in_flight_ = 0, max_in_flight_ = 0;
};

TEST_F(BlobTransferTest, KeepsAtMostCreditRequestsInFlight) {
  const std::string data = Bytes(10 * kChunk + 1, 3);
  const std::string digest = DigestOf(data);
  const std::string path = Serve("blob", data);
  LoopbackChannel channel([&](const std::string&) -> Expected<std::string> { return path; },
                          /*newest_first=*/false);
  auto fetched = FetchBlob(channel, digest, *store_, {kChunk, 4, 1000ms});
  ASSERT_TRUE(fetched.ok()) << fetched.error().ToString();
  EXPECT_EQ(*fetched, data.size());
  EXPECT_EQ(channel.requests(), 11);  // each chunk asked for once
  EXPECT_EQ(channel.max_in_flight(), 4);
}

TEST_F(BlobTransferTest, ReassemblesChunksThatArriveOutOfOrder) {
  const std::string data = Bytes(10 * kChunk + 1, 4);
  const std::string digest = DigestOf(data);
  const std::string path = Serve("blob", data);
  LoopbackChannel channel([&](const std::string&) -> Expected<std::string> { return path; },
                          /*newest_first=*/true);
  auto fetched = FetchBlob(channel, digest, *store_, {kChunk, 4, 1000ms});
  ASSERT_TRUE(fetched.ok()) << fetched.error().ToString();
  EXPECT_EQ(*fetched, data.size());
  auto back = store_->ReadAll(digest);
  ASSERT_TRUE(back.ok()) << back.error().ToString();
  EXPECT_TRUE(*back == data);
}

// ---------------------------------------------------------------- server side

TEST_F(BlobTransferTest, AnswerBlobRequestServesTheAskedRange) {
  const std::string data = "0123456789";
  const std::string digest = DigestOf(data);
  const std::string path = Serve("blob", data);
  BlobPathFn path_of = [&](const std::string&) -> Expected<std::string> { return path; };

  auto frames = AnswerBlobRequest(*EncodeBlobRequest({digest, 5, 3}), path_of);
  ASSERT_EQ(frames.size(), 2u);
  auto header = DecodeBlobChunk(frames[0].to_string());
  ASSERT_TRUE(header.ok()) << header.error().ToString();
  EXPECT_EQ(header->digest, digest);
  EXPECT_EQ(header->offset, 5u);
  EXPECT_EQ(header->total_size, 10u);
  EXPECT_FALSE(header->error.has_value());
  EXPECT_EQ(frames[1].to_string(), "567");

  // The tail is cut at the end of the blob; past the end is empty.
  frames = AnswerBlobRequest(*EncodeBlobRequest({digest, 8, 100}), path_of);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[1].to_string(), "89");
  frames = AnswerBlobRequest(*EncodeBlobRequest({digest, 50, 100}), path_of);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[1].to_string(), "");
}

TEST_F(BlobTransferTest, AnswerBlobRequestDropsMalformedRequests) {
  BlobPathFn path_of = [](const std::string&) -> Expected<std::string> { return std::string(); };
  EXPECT_TRUE(AnswerBlobRequest("", path_of).empty());
  EXPECT_TRUE(AnswerBlobRequest("12345678", path_of).empty());
  auto other = EncodeWorkersRequest({});
  ASSERT_TRUE(other.ok());
  EXPECT_TRUE(AnswerBlobRequest(*other, path_of).empty());
}

}  // namespace
}  // namespace manifold::wire
