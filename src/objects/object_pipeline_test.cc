// The object pipelines against a chunk store built by hand (local segments, RocksDB wrapped in a
// counting index): ingest and restore look chunk records up in batches (MultiGet), once per
// chunk, and independent writers of one store run side by side (ADR 0013).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <thread>

#include "../../tests/test_util.h"
#include "backend/backend.h"
#include "index/index.h"
#include "objects/object_store.h"
#include "primitives/chunker.h"
#include "primitives/hash.h"

namespace cairn {
namespace {

using testing::MemSink;
using testing::MemSource;
using testing::RandomData;
using testing::TempDir;

// Counts point lookups: Get calls, MultiGet calls and the keys they asked for, by row prefix.
class CountingIndex : public IndexWrapper {
 public:
  using IndexWrapper::IndexWrapper;
  Result<std::optional<std::string>> Get(std::string_view key) override {
    gets++;
    if (!key.empty() && key[0] == keys::kChunk) chunk_gets++;
    return IndexWrapper::Get(key);
  }
  Result<std::vector<std::optional<std::string>>> MultiGet(
      const std::vector<std::string>& keys) override {
    multigets++;
    for (const auto& k : keys)
      if (!k.empty() && k[0] == keys::kChunk) multiget_chunk_keys++;
    return IndexWrapper::MultiGet(keys);
  }
  void Reset() { gets = chunk_gets = multigets = multiget_chunk_keys = 0; }
  std::atomic<uint64_t> gets{0}, chunk_gets{0}, multigets{0}, multiget_chunk_keys{0};
};

class Pipeline : public ::testing::Test {
 protected:
  void SetUp() override {
    auto idx = OpenRocksIndex(dir_ / "index", true, false);
    ASSERT_TRUE(idx.ok()) << idx.status().message();
    index_ = new CountingIndex(std::move(idx.value()));
    owned_index_.reset(index_);
    auto be = OpenLocalBackend(dir_ / "segments");
    ASSERT_TRUE(be.ok());
    backend_ = std::move(be.value());
    hasher_ = MakeHasher(HashAlgo::kBlake3);
    chunker_ = std::make_unique<FastCdcChunker>(ChunkerParams{16 << 10, 64 << 10, 256 << 10});
    pool_ = std::make_unique<ThreadPool>(2);
    ChunkStoreOptions co;
    co.segment_target_size = 8 << 20;
    chunks_ = std::make_unique<ChunkStore>(backend_.get(), index_, hasher_.get(), co);
    ASSERT_TRUE(chunks_->Open(true).ok());
    objects_ = std::make_unique<ObjectStore>(index_, chunks_.get(), chunker_.get(), pool_.get());
  }
  PutResult Put(const std::string& name, const std::vector<uint8_t>& d) {
    MemSource src(d, 1 << 20);
    auto r = objects_->Put(name, src, {});
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? *r : PutResult{};
  }
  std::vector<uint8_t> Get(const std::string& name) {
    MemSink sink;
    Status s = objects_->Get(name, std::nullopt, {}, sink, {});
    EXPECT_TRUE(s.ok()) << s.message();
    return sink.data;
  }
  void ExpectClean() {
    CheckReport rep;
    auto expect = objects_->Check(rep);
    ASSERT_TRUE(expect.ok()) << expect.status().message();
    CheckOptions co;
    co.read_data = true;
    ASSERT_TRUE(CheckChunks(*chunks_, *expect, *pool_, co, rep).ok());
    for (const auto& e : rep.errors) ADD_FAILURE() << e;
  }

  TempDir dir_;
  CountingIndex* index_ = nullptr;
  std::unique_ptr<Index> owned_index_;
  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Hasher> hasher_;
  std::unique_ptr<Chunker> chunker_;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<ChunkStore> chunks_;
  std::unique_ptr<ObjectStore> objects_;
};

TEST_F(Pipeline, IngestAndRestoreLookEachChunkUpOnceInBatches) {
  auto data = RandomData(24 << 20, 7);  // ~380 chunks of ~64 KiB
  index_->Reset();
  PutResult first = Put("a", data);
  ASSERT_GT(first.chunks, 200u);
  // New data: one lookup per chunk, in batches; no point lookup of a chunk row.
  EXPECT_EQ(index_->chunk_gets.load(), 0u);
  EXPECT_EQ(index_->multiget_chunk_keys.load(), first.chunks);
  EXPECT_LE(index_->multigets.load(), first.chunks / 8);
  EXPECT_LE(index_->gets.load(), 4u) << "object rows only (manifest refcount, head)";

  // The same data again (every chunk a dedup hit): still exactly one lookup per chunk, none at
  // the commit.
  index_->Reset();
  PutResult again = Put("b", data);
  EXPECT_EQ(again.dedup_chunks, again.chunks);
  EXPECT_EQ(index_->chunk_gets.load(), 0u);
  EXPECT_EQ(index_->multiget_chunk_keys.load(), again.chunks);
  EXPECT_LE(index_->multigets.load(), again.chunks / 8);

  // Restore: one batched lookup per chunk.
  index_->Reset();
  EXPECT_EQ(Get("a"), data);
  EXPECT_EQ(index_->chunk_gets.load(), 0u);
  EXPECT_EQ(index_->multiget_chunk_keys.load(), first.chunks);
  EXPECT_LE(index_->multigets.load(), first.chunks / 32 + 1);
  ExpectClean();
}

// Ingest cuts chunks in place in its read buffers (slabs of 16 MiB here) and carries a slab's
// uncut tail over to the next one: the chunks are exactly those of cutting the whole input in
// one buffer, whatever the read sizes, across several slab changes, and the content hash is
// that of the whole input.
TEST_F(Pipeline, ChunksCutInPlaceMatchCuttingTheWholeInput) {
  auto data = testing::TextData(20 << 20, 21);
  auto rnd = RandomData(22 << 20, 22);
  data.insert(data.end(), rnd.begin(), rnd.end());  // 42 MiB: slabs A, B, A again
  std::vector<uint32_t> want;
  for (size_t at = 0; at < data.size();) {
    size_t cut = chunker_->NextCut({data.data() + at, data.size() - at}, true);
    want.push_back(static_cast<uint32_t>(cut));
    at += cut;
  }
  for (size_t read : {size_t{1} << 20, size_t{999}, size_t{3} << 20}) {
    SCOPED_TRACE(read);
    MemSource src(data, read);
    auto put = objects_->Put("a" + std::to_string(read), src, {});
    ASSERT_TRUE(put.ok()) << put.status().message();
    EXPECT_EQ(put->content_hash, hasher_->Hash(data));
    auto m = objects_->LoadManifest(put->manifest_id);
    ASSERT_TRUE(m.ok()) << m.status().message();
    std::vector<uint32_t> got;
    for (const auto& e : m->entries) got.push_back(e.length);
    EXPECT_EQ(got, want);
  }
  EXPECT_EQ(Get("a999"), data);
}

// The pool writes each group's new chunks as it prepares them (ChunkTxn::WriteNew); repeats of
// a new chunk prepared in groups in flight at once are all written, and the ordered stage keeps
// one copy and gives the others' space back: stored once, no space leaked, data intact.
TEST_F(Pipeline, RepeatsOfANewChunkWrittenByThePoolAreStoredOnce) {
  const auto block = RandomData(3 << 20, 31);  // ~48 chunks; repeats 3 MiB apart
  std::vector<uint8_t> data;
  for (int i = 0; i < 8; i++) data.insert(data.end(), block.begin(), block.end());
  PutResult r = Put("a", data);
  EXPECT_GT(r.dedup_chunks, r.new_chunks * 5) << "the repeats are deduplicated";
  auto st = chunks_->Stats();
  ASSERT_TRUE(st.ok()) << st.status().message();
  EXPECT_EQ(st->chunks, r.new_chunks);
  // Every byte of the segments is a stored chunk or free: the extra copies went back.
  EXPECT_EQ(st->segment_bytes - st->free.free_bytes, st->stored_bytes);
  EXPECT_LE(st->stored_bytes, block.size() * 5 / 4) << "one copy of each chunk (and the seams)";
  EXPECT_EQ(Get("a"), data);
  ExpectClean();
}

// A positional sink (a fresh output file) is written by the pool threads, each chunk at its
// offset, never in order by the calling thread; every range comes out right.
TEST_F(Pipeline, PositionalSinkIsWrittenByThePoolAtEachOffset) {
  auto data = RandomData(6 << 20, 11);
  std::fill(data.begin() + (1 << 20), data.begin() + (2 << 20), 0);  // zeros stay zeros
  PutResult put = Put("a", data);
  ASSERT_GT(put.chunks, 20u);
  using testing::PositionalMemSink;
  PositionalMemSink whole;
  ASSERT_TRUE(objects_->Get("a", std::nullopt, {}, whole, {}).ok());
  EXPECT_EQ(whole.data, data);
  EXPECT_EQ(whole.resets.load(), 1);
  EXPECT_EQ(whole.ordered_writes.load(), 0);
  EXPECT_EQ(whole.writes, static_cast<int>(put.chunks));
  EXPECT_EQ(whole.threads.count(std::this_thread::get_id()), 0u) << "written by the pool";
  const uint64_t n = data.size();
  const std::vector<Range> ranges = {{12345, (3u << 20) + 17}, {0, 1}, {n - 1, 1},
                                     {n / 2, std::nullopt},    {n, 0}, {0, n}};
  for (const Range& r : ranges) {
    SCOPED_TRACE(std::to_string(r.offset) + ":" + (r.length ? std::to_string(*r.length) : ""));
    PositionalMemSink part;
    uint64_t done = 0;
    ASSERT_TRUE(
        objects_->Get("a", std::nullopt, r, part, [&](uint64_t d, uint64_t) { done = d; }).ok());
    const uint64_t len = r.length ? *r.length : n - r.offset;
    EXPECT_EQ(part.data,
              std::vector<uint8_t>(data.begin() + static_cast<ptrdiff_t>(r.offset),
                                   data.begin() + static_cast<ptrdiff_t>(r.offset + len)));
    EXPECT_EQ(done, len) << "progress counts every byte";
  }
}

// A failing positional write fails the restore with the sink's error; Get returns only once no
// pool task is still writing into the sink.
TEST_F(Pipeline, PositionalWriteErrorFailsTheRestore) {
  auto data = RandomData(6 << 20, 12);
  Put("a", data);
  testing::PositionalMemSink sink;
  sink.fail_from = 2 << 20;
  Status s = objects_->Get("a", std::nullopt, {}, sink, {});
  ASSERT_EQ(s.code(), Code::kIOError) << s.message();
  EXPECT_NE(s.message().find("injected"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("a@1"), std::string::npos) << s.message();
  const int calls = sink.calls.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(sink.calls.load(), calls) << "a pool task wrote after Get returned";
}

// A source that stops at `pause_at` bytes until released, and says when it got there.
class GatedSource : public ByteSource {
 public:
  GatedSource(const std::vector<uint8_t>& d, size_t pause_at) : d_(d), pause_at_(pause_at) {}
  Result<size_t> Read(std::span<uint8_t> out) override {
    if (pos_ >= pause_at_ && !passed_) {
      std::unique_lock lk(mu_);
      reached_ = true;
      cv_.notify_all();
      if (!cv_.wait_for(lk, std::chrono::seconds(20), [&] { return open_; }))
        return Status::IOError("gate never opened");
      passed_ = true;
    }
    size_t limit = passed_ ? d_.size() : pause_at_;
    size_t n = std::min({out.size(), limit - pos_, size_t{64 << 10}});
    std::copy_n(d_.begin() + pos_, n, out.begin());
    pos_ += n;
    return n;
  }
  bool WaitReached(std::chrono::seconds t) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, t, [&] { return reached_; });
  }
  void Open() {
    std::lock_guard lk(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  const std::vector<uint8_t>& d_;
  size_t pause_at_, pos_ = 0;
  bool passed_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  bool reached_ = false, open_ = false;
};

TEST_F(Pipeline, TwoPutsIntoOneStoreRunAtTheSameTime) {
  // Each put stops halfway until the other has reached its halfway point too: if puts were
  // serialised (a writer lock held from the first byte to the commit), neither gate would open.
  auto a = RandomData(6 << 20, 1), b = RandomData(6 << 20, 2);
  GatedSource sa(a, 3 << 20), sb(b, 3 << 20);
  std::thread opener([&] {
    bool both =
        sa.WaitReached(std::chrono::seconds(15)) && sb.WaitReached(std::chrono::seconds(15));
    EXPECT_TRUE(both) << "the two puts were not in flight at the same time";
    sa.Open();
    sb.Open();
  });
  Result<PutResult> ra = Status::IOError("not run"), rb = Status::IOError("not run");
  std::thread ta([&] { ra = objects_->Put("a", sa, {}); });
  std::thread tb([&] { rb = objects_->Put("b", sb, {}); });
  ta.join();
  tb.join();
  opener.join();
  ASSERT_TRUE(ra.ok()) << ra.status().message();
  ASSERT_TRUE(rb.ok()) << rb.status().message();
  EXPECT_EQ(Get("a"), a);
  EXPECT_EQ(Get("b"), b);
  ExpectClean();
}

TEST_F(Pipeline, StalledPipeDoesNotBlockRemoveGetOrPut) {
  auto old = RandomData(3 << 20, 3), other = RandomData(2 << 20, 4), slow = RandomData(4 << 20, 5);
  Put("old", old);
  Put("other", other);
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  // The producer writes half, stalls for 5 s, then writes the rest.
  std::thread producer([&] {
    size_t half = slow.size() / 2;
    EXPECT_EQ(::write(fds[1], slow.data(), half), ssize_t(half));
    std::this_thread::sleep_for(std::chrono::seconds(5));
    size_t done = half;
    while (done < slow.size()) {
      ssize_t n = ::write(fds[1], slow.data() + done, slow.size() - done);
      ASSERT_GT(n, 0);
      done += n;
    }
    ::close(fds[1]);
  });
  Result<PutResult> rs = Status::IOError("not run");
  std::thread putter([&] {
    FdSource src(fds[0], "pipe");
    rs = objects_->Put("slow", src, {});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the put is waiting on the pipe
  auto t0 = std::chrono::steady_clock::now();
  auto rm = objects_->Remove("old", std::nullopt);
  ASSERT_TRUE(rm.ok()) << rm.status().message();
  EXPECT_EQ(Get("other"), other);
  Put("third", old);  // the chunks "old" released, stored again
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(seconds, 3.0) << "rm, get and put waited for the stalled put";
  putter.join();
  producer.join();
  ::close(fds[0]);
  ASSERT_TRUE(rs.ok()) << rs.status().message();
  EXPECT_EQ(Get("slow"), slow);
  EXPECT_EQ(Get("third"), old);
  ExpectClean();
}

}  // namespace
}  // namespace cairn
