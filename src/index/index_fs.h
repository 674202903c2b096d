// A seam for tests: the RocksDB indexes under a directory do their file I/O through a chosen
// rocksdb::FileSystem (the crash simulation's, src/index/crash_fs.h) instead of the default
// one. Every open of an index (a repository's, a new store's in `user add`, a reader's refresh)
// looks the route up by its directory, so no caller has to pass anything through.
#pragma once

#include <rocksdb/file_system.h>

#include <memory>
#include <string>

namespace cairn {

// Every index opened in `root` or below it (absolute path, no trailing slash) uses `fs` until
// UnrouteIndexFiles(root). Indexes already open keep what they had.
void RouteIndexFiles(const std::string& root, std::shared_ptr<rocksdb::FileSystem> fs);
void UnrouteIndexFiles(const std::string& root);

// The file system routed for the index in `dir`: the longest routed root that contains it, or
// nullptr (RocksDB's default).
std::shared_ptr<rocksdb::FileSystem> IndexFileSystemFor(const std::string& dir);

}  // namespace cairn
