// CopyIndexFiles (index_copy.h): through rocksdb::FileSystem, like every other index file.
#include "index/index_copy.h"

#include <rocksdb/file_system.h>

#include <memory>
#include <vector>

#include "index/index_fs.h"

namespace cairn {
namespace {

using rocksdb::FileOptions;
using rocksdb::IOOptions;
using rocksdb::IOStatus;

Status Fail(const std::string& what, const IOStatus& s) {
  return Status::IOError(what + ": " + s.ToString());
}

bool EndsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Copies one file and fsyncs the copy; returns its size.
Result<uint64_t> CopyOne(rocksdb::FileSystem& fs, const std::string& src, const std::string& dst) {
  std::unique_ptr<rocksdb::FSSequentialFile> in;
  IOStatus s = fs.NewSequentialFile(src, FileOptions(), &in, nullptr);
  if (!s.ok()) return Fail("copying the index: reading " + src, s);
  std::unique_ptr<rocksdb::FSWritableFile> out;
  s = fs.NewWritableFile(dst, FileOptions(), &out, nullptr);
  if (!s.ok()) return Fail("copying the index: creating " + dst, s);
  std::vector<char> buf(1 << 20);
  uint64_t total = 0;
  for (;;) {
    rocksdb::Slice got;
    s = in->Read(buf.size(), IOOptions(), &got, buf.data(), nullptr);
    if (!s.ok()) return Fail("copying the index: reading " + src, s);
    if (got.empty()) break;
    s = out->Append(got, IOOptions(), nullptr);
    if (!s.ok()) return Fail("copying the index: writing " + dst, s);
    total += got.size();
  }
  s = out->Fsync(IOOptions(), nullptr);
  if (s.ok()) s = out->Close(IOOptions(), nullptr);
  if (!s.ok()) return Fail("copying the index: syncing " + dst, s);
  return total;
}

}  // namespace

Result<uint64_t> CopyIndexFiles(const std::string& from, const std::string& to) {
  std::shared_ptr<rocksdb::FileSystem> fs = IndexFileSystemFor(from);
  if (!fs) fs = rocksdb::FileSystem::Default();
  std::vector<std::string> names;
  IOStatus s = fs->GetChildren(from, IOOptions(), &names, nullptr);
  if (!s.ok()) return Fail("copying the index: listing " + from, s);
  s = fs->CreateDirIfMissing(to, IOOptions(), nullptr);
  if (!s.ok()) return Fail("copying the index: creating " + to, s);
  uint64_t copied = 0;
  for (const std::string& n : names) {
    if (n == "." || n == ".." || n == "LOCK" || n.rfind("LOG", 0) == 0) continue;
    const std::string src = from + "/" + n, dst = to + "/" + n;
    if (EndsWith(n, ".sst") && fs->LinkFile(src, dst, IOOptions(), nullptr).ok()) continue;
    CAIRN_ASSIGN_OR_RETURN(uint64_t bytes, CopyOne(*fs, src, dst));
    copied += bytes;
  }
  std::unique_ptr<rocksdb::FSDirectory> dir;
  s = fs->NewDirectory(to, IOOptions(), &dir, nullptr);
  if (s.ok()) s = dir->Fsync(IOOptions(), nullptr);
  if (!s.ok()) return Fail("copying the index: syncing " + to, s);
  return copied;
}

}  // namespace cairn
