// OutputFile: how `get -o OUT` and `vdisk export IMAGE OUT` write a file the user named. The
// bytes go to a temporary file beside OUT, created with a random name, O_CREAT | O_EXCL |
// O_NOFOLLOW (so a planted file or symbolic link of any name is never opened, truncated or
// written through), and renamed onto OUT only once complete; a failure or a destruction
// before Commit removes it, so OUT is either the whole restored content or untouched.
#pragma once

#include <string>

#include "cairn/status.h"

namespace cairn::cli {

class OutputFile {
 public:
  // Creates the temporary file beside `out` (mode 0644 before the umask). Errors: the errno of
  // open(2) naming `out` (no directory, no permission; EEXIST after 16 names already taken).
  static Result<OutputFile> Create(const std::string& out);
  OutputFile(OutputFile&& o) noexcept;
  OutputFile& operator=(OutputFile&&) = delete;
  OutputFile(const OutputFile&) = delete;
  ~OutputFile();  // closes and removes the temporary file unless Commit succeeded

  int fd() const { return fd_; }
  const std::string& temp_path() const { return tmp_; }
  // Starts writing what was written so far to the disk, without waiting for it
  // (sync_file_range(2) SYNC_FILE_RANGE_WRITE), so that Commit's fsync finds little left to do:
  // the disk works while the restore goes on. Best effort: an I/O error shows at the fsync.
  void StartWriteback() const;
  // fsync (when `sync`), close, rename onto the output path. Errors name the output path.
  Status Commit(bool sync);

 private:
  OutputFile(std::string out, std::string tmp, int fd) : out_(out), tmp_(tmp), fd_(fd) {}
  std::string out_, tmp_;
  int fd_ = -1;
};

}  // namespace cairn::cli
