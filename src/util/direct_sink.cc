// DirectSink (cairn/io.h): a buffered head, then aligned buffers written with O_DIRECT by
// one writer thread while the restore fills the next; zero blocks skipped as holes.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <system_error>
#include <thread>

#include "cairn/io.h"
#include "util/zero_runs.h"

namespace cairn {

// A named namespace, not an anonymous one: DirectSink::Impl (external linkage) holds a field of
// this type, which GCC flags (-Wsubobject-linkage) once the unity build includes this file.
namespace direct_sink_detail {

// The buffers held restored plaintext: wiped before they go back to the allocator, as the
// restore's own chunk buffers of an encrypted store are (chunk_buffer.h).
struct WipingFree {
  void operator()(uint8_t* p) const {
    ::explicit_bzero(p, DirectSink::kBuffer);
    std::free(p);
  }
};

}  // namespace direct_sink_detail
using direct_sink_detail::WipingFree;

struct DirectSink::Impl {
  Impl(int fd, std::string name, uint64_t switch_at)
      : fd(fd), name(std::move(name)), switch_at(switch_at), buffered(fd, this->name, true) {}
  ~Impl();
  Status Write(std::span<const uint8_t> data);  // WriteData, FinishData, errors kept
  Status Finish();
  Status WriteData(std::span<const uint8_t> data);
  Status FinishData();
  Status Sticky(Status s) {
    if (!s.ok() && failed.ok()) failed = s;
    return s;
  }
  void StartDirect();
  Status Submit(size_t len);  // hands the current buffer to the writer, takes the other one
  Status WaitIdle();          // the writer has finished every job; its first error
  void WriterLoop();
  Status WriteRun(const uint8_t* p, size_t n, uint64_t at);
  Status Fail(int err) const { return Status::FromErrno(err, "writing " + name); }

  struct Job {
    uint8_t* data = nullptr;
    size_t len = 0;   // a multiple of kAlign
    uint64_t at = 0;  // file offset, a multiple of kAlign
  };

  const int fd;
  const std::string name;
  const uint64_t switch_at;  // file offset from which writes are direct
  FdSink buffered;           // the head, or everything when O_DIRECT is not to be had
  uint64_t pos = 0;          // bytes written so far, either way
  bool tried = false;        // the switch to O_DIRECT was tried
  bool direct = false;       // it worked: the buffers and the writer exist
  Status failed;             // the first error Write or Finish returned: returned again
  std::unique_ptr<uint8_t, WipingFree> buf[kBuffers];
  int cur = 0;          // the buffer being filled
  size_t fill = 0;      // bytes in it
  uint64_t buf_at = 0;  // file offset of its first byte

  std::mutex mu;
  std::condition_variable cv;
  std::deque<Job> jobs;  // queued or being written (the front), in file order
  bool stop = false;
  Status error;               // the writer's first error
  uint64_t direct_bytes = 0;  // under mu
  bool fell_back = false;     // writer thread only: O_DIRECT dropped after an EINVAL
  std::thread writer;
};

DirectSink::Impl::~Impl() {
  if (!writer.joinable()) return;
  {
    std::lock_guard lk(mu);
    stop = true;
  }
  cv.notify_all();
  writer.join();
}

void DirectSink::Impl::StartDirect() {
  tried = true;
  const int flags = ::fcntl(fd, F_GETFL);
  // EINVAL when the file system has no O_DIRECT (tmpfs before Linux 6.6, for one).
  if (pos % kAlign != 0 || flags < 0 || ::fcntl(fd, F_SETFL, flags | O_DIRECT) != 0) return;
  auto stay_buffered = [&] {
    (void)::fcntl(fd, F_SETFL, flags);
    for (auto& b : buf) b.reset();
  };
  for (auto& b : buf) {
    void* p = nullptr;
    if (::posix_memalign(&p, kAlign, kBuffer) != 0) return stay_buffered();  // no memory
    b.reset(static_cast<uint8_t*>(p));
  }
  try {
    writer = std::thread([this] { WriterLoop(); });
  } catch (const std::system_error&) {  // no thread to be had (a pids limit): the page cache
    return stay_buffered();
  }
  buf_at = pos;
  direct = true;
}

Status DirectSink::Impl::Write(std::span<const uint8_t> data) {
  if (!failed.ok()) return failed;
  return Sticky(WriteData(data));
}

Status DirectSink::Impl::Finish() {
  if (!failed.ok()) return failed;
  return Sticky(FinishData());
}

Status DirectSink::Impl::WriteData(std::span<const uint8_t> data) {
  if (!tried && pos + data.size() > switch_at) {
    const size_t head = switch_at - pos;  // pos <= switch_at until the switch
    if (head > 0) {
      CAIRN_RETURN_IF_ERROR(buffered.Write(data.first(head)));
      pos += head;
      data = data.subspan(head);
    }
    StartDirect();
  }
  if (!direct) {
    CAIRN_RETURN_IF_ERROR(buffered.Write(data));
    pos += data.size();
    return Status::Ok();
  }
  while (!data.empty()) {
    const size_t n = std::min(kBuffer - fill, data.size());
    std::memcpy(buf[cur].get() + fill, data.data(), n);
    fill += n;
    pos += n;
    data = data.subspan(n);
    if (fill == kBuffer) CAIRN_RETURN_IF_ERROR(Submit(kBuffer));
  }
  return Status::Ok();
}

Status DirectSink::Impl::FinishData() {
  if (!direct) return buffered.Finish();
  if (fill > 0) {
    // The tail, padded with zeros to the alignment O_DIRECT needs; ftruncate cuts the padding.
    const size_t len = (fill + kAlign - 1) / kAlign * kAlign;
    std::memset(buf[cur].get() + fill, 0, len - fill);
    CAIRN_RETURN_IF_ERROR(Submit(len));
  }
  CAIRN_RETURN_IF_ERROR(WaitIdle());
  if (::ftruncate(fd, static_cast<off_t>(pos)) != 0) return Fail(errno);
  return Status::Ok();
}

Status DirectSink::Impl::Submit(size_t len) {
  {
    std::unique_lock lk(mu);
    if (!error.ok()) return error;
    jobs.push_back(Job{buf[cur].get(), len, buf_at});
    cv.notify_all();
    // The next buffer in turn is free once at most kBuffers - 1 jobs are left.
    cv.wait(lk, [&] { return jobs.size() < kBuffers || !error.ok(); });
    if (!error.ok()) return error;
  }
  cur = (cur + 1) % kBuffers;
  buf_at += len;
  fill = 0;
  return Status::Ok();
}

Status DirectSink::Impl::WaitIdle() {
  std::unique_lock lk(mu);
  cv.wait(lk, [&] { return jobs.empty(); });
  return error;
}

void DirectSink::Impl::WriterLoop() {
  for (;;) {
    Job j;
    {
      std::unique_lock lk(mu);
      cv.wait(lk, [&] { return !jobs.empty() || stop; });
      if (jobs.empty()) return;
      if (!error.ok()) {  // the output is lost already: the rest is not written
        jobs.clear();
        cv.notify_all();
        continue;
      }
      j = jobs.front();
    }
    // Runs of data between whole zero blocks: every offset and length stays aligned (the job
    // and FdSink::kHoleBlock are multiples of kAlign).
    Status s = zero_runs::ForEachRun(
        j.data, j.len, j.at, FdSink::kHoleBlock, [&](bool zero, size_t i, size_t e) {
          return zero ? Status::Ok() : WriteRun(j.data + i, e - i, j.at + i);
        });
    {
      std::lock_guard lk(mu);
      if (!s.ok() && error.ok()) error = std::move(s);
      jobs.pop_front();
    }
    cv.notify_all();
  }
}

Status DirectSink::Impl::WriteRun(const uint8_t* p, size_t n, uint64_t at) {
  size_t done = 0;
  while (done < n) {
    ssize_t w = ::pwrite(fd, p + done, n - done, static_cast<off_t>(at + done));
    if (w < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      if (err == EINVAL && !fell_back) {
        // The file system took O_DIRECT but not this write (its alignment, or the unaligned
        // rest of a short write): the page cache from here on.
        const int flags = ::fcntl(fd, F_GETFL);
        if (flags >= 0 && ::fcntl(fd, F_SETFL, flags & ~O_DIRECT) == 0) {
          fell_back = true;
          continue;
        }
      }
      return Fail(err);
    }
    if (!fell_back) {
      std::lock_guard lk(mu);
      direct_bytes += static_cast<uint64_t>(w);
    }
    done += static_cast<size_t>(w);
  }
  return Status::Ok();
}

DirectSink::DirectSink(int fd, std::string name, uint64_t direct_after)
    : impl_(std::make_unique<Impl>(fd, std::move(name),
                                   direct_after > UINT64_MAX - kBuffer
                                       ? UINT64_MAX
                                       : (direct_after + kBuffer - 1) / kBuffer * kBuffer)) {}

DirectSink::~DirectSink() = default;

Status DirectSink::Write(std::span<const uint8_t> data) { return impl_->Write(data); }

Status DirectSink::Finish() { return impl_->Finish(); }

uint64_t DirectSink::direct_bytes() const {
  std::lock_guard lk(impl_->mu);
  return impl_->direct_bytes;
}

}  // namespace cairn
