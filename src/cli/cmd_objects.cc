// `cairn put|get|ls|versions|rm|cat`: storing, restoring, listing and removing objects.
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <iostream>

#include "cairn/io.h"
#include "cairn/repository.h"
#include "cli/common.h"
#include "cli/output_file.h"
#include "cli/progress.h"

namespace cairn::cli {
namespace {

json VersionJson(const VersionInfo& v) {
  return {{"version", v.version},
          {"size", v.size},
          {"chunks", v.chunks},
          {"created", TimeString(v.created_ns)},
          {"created_ns", v.created_ns},
          {"content_hash", v.content_hash.Hex()},
          {"manifest", v.manifest_id.Hex()}};
}

// ------------------------------------------------------------------ put

// Opens FILE for reading (stdin for "" and "-"); sets its size when it is a regular file.
Result<int> OpenInput(const std::string& file, uint64_t& size) {
  if (file.empty() || file == "-") {
    if (StandardDescriptorWasClosed(0))
      return Status::Invalid("standard input is closed: nothing to store (give FILE)");
    return 0;
  }
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "cannot read " + file);
  struct stat st;
  if (::fstat(fd, &st) == 0) {
    if (S_ISDIR(st.st_mode)) {
      ::close(fd);
      return Status::Invalid("cannot read " + file + ": it is a directory");
    }
    if (S_ISREG(st.st_mode)) size = st.st_size;
  }
  return fd;
}

void PrintPut(const Globals& g, const std::string& name, const PutResult& r) {
  if (g.json) {
    PrintJson({{"name", name},
               {"version", r.version},
               {"bytes", r.bytes},
               {"chunks", r.chunks},
               {"new_chunks", r.new_chunks},
               {"new_bytes", r.new_bytes},
               {"dedup_chunks", r.dedup_chunks},
               {"dedup_bytes", r.dedup_bytes},
               {"stored_bytes", r.stored_bytes},
               {"content_hash", r.content_hash.Hex()},
               {"manifest", r.manifest_id.Hex()}});
    return;
  }
  std::printf(
      "%s@%llu: %s in %llu chunks; new %llu chunks (%s, %s stored), deduplicated %llu "
      "chunks (%s)\n",
      ShownInTerminal(name).c_str(), (unsigned long long)r.version, HumanBytes(r.bytes).c_str(),
      (unsigned long long)r.chunks, (unsigned long long)r.new_chunks,
      HumanBytes(r.new_bytes).c_str(), HumanBytes(r.stored_bytes).c_str(),
      (unsigned long long)r.dedup_chunks, HumanBytes(r.dedup_bytes).c_str());
}

// The standard output of a command (--stdin-from-command), like restic's: the command's exit
// status is part of the data, so reaching the end of its output waits for it, and a command
// that fails (non-zero exit, killed by a signal) fails the read, and with it the put, before
// anything is committed.
class CommandSource : public ByteSource {
 public:
  // A command still running when the put gave up is stopped (its pipe is closed first).
  ~CommandSource() override {
    if (fd_ >= 0) ::close(fd_);
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      (void)Wait();
    }
  }

  // Starts argv[0] (looked up in PATH) with its standard output on a pipe.
  Status Start(const std::vector<std::string>& argv) {
    label_ = "command '" + argv[0] + "'";
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return Status::FromErrno(errno, "a pipe for " + label_);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    // SIGPIPE back to its default in the command (cairn ignores it; an ignored signal would
    // stay ignored across the exec).
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t dfl;
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    posix_spawnattr_setsigdefault(&attr, &dfl);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
    std::vector<char*> args;
    for (const auto& s : argv) args.push_back(const_cast<char*>(s.c_str()));
    args.push_back(nullptr);
    int rc = ::posix_spawnp(&pid_, argv[0].c_str(), &fa, &attr, args.data(), environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    ::close(p[1]);
    if (rc != 0) {
      ::close(p[0]);
      pid_ = -1;
      return Status::FromErrno(rc, "cannot run " + label_);
    }
    fd_ = p[0];
    return Status::Ok();
  }

  Result<size_t> Read(std::span<uint8_t> out) override {
    FdSource src(fd_, "the output of " + label_);
    CAIRN_ASSIGN_OR_RETURN(size_t got, src.Read(out));
    if (got == out.size()) return got;
    // The end of its output: the command must have succeeded for the data to count.
    CAIRN_RETURN_IF_ERROR(Wait());
    return got;
  }

 private:
  Status Wait() {
    if (pid_ <= 0) return status_;
    int st = 0;
    while (::waitpid(pid_, &st, 0) < 0) {
      if (errno != EINTR) {
        status_ = Status::FromErrno(errno, "waiting for " + label_);
        pid_ = -1;
        return status_;
      }
    }
    pid_ = -1;
    if (WIFEXITED(st) && WEXITSTATUS(st) != 0)
      status_ = Status::IOError(label_ + " exited with status " + std::to_string(WEXITSTATUS(st)) +
                                "; nothing stored");
    else if (WIFSIGNALED(st))
      status_ = Status::IOError(label_ + " was killed by signal " + std::to_string(WTERMSIG(st)) +
                                "; nothing stored");
    return status_;
  }

  pid_t pid_ = -1;
  int fd_ = -1;
  std::string label_;
  Status status_;
};

struct PutArgs {
  std::string repo, name;
  std::vector<std::string> args;  // FILE, or with --stdin-from-command the command
  bool from_command = false;
};

int PutFrom(const Globals& g, const PutArgs& a, ByteSource& src) {
  auto repo = OpenRepo(a.repo, true, g);
  if (!repo.ok()) return Fail(repo.status());
  ProgressBar bar("put " + a.name, !g.quiet);
  auto r = (*repo)->Put(a.name, src, [&](uint64_t d, uint64_t t) { bar.Update(d, t); });
  bar.Finish();
  if (!r.ok()) return Fail(r.status());
  PrintPut(g, a.name, *r);
  return 0;
}

int CmdPut(const Globals& g, const PutArgs& a) {
  if (a.from_command) {
    if (a.args.empty()) {
      return UsageError("put REPO NAME --stdin-from-command -- CMD [ARGS...]");
    }
    CommandSource src;
    if (Status s = src.Start(a.args); !s.ok()) return Fail(s);
    return PutFrom(g, a, src);
  }
  if (a.args.size() > 1) {
    return UsageError("put takes one FILE (or --stdin-from-command -- CMD)");
  }
  if (a.args.size() == 1 && a.args[0].empty()) {
    return UsageError("put's FILE is empty (give - for standard input)");
  }
  const std::string file = a.args.empty() ? "" : a.args[0];
  uint64_t size = 0;
  auto fd = OpenInput(file, size);
  if (!fd.ok()) return Fail(fd.status());
  FdSource src(*fd, file.empty() || file == "-" ? "stdin" : file, size);
  struct stat before {};
  const bool regular = *fd > 0 && ::fstat(*fd, &before) == 0 && S_ISREG(before.st_mode);
  int rc = PutFrom(g, a, src);
  struct stat after {};
  if (rc == 0 && regular && ::fstat(*fd, &after) == 0 &&
      (after.st_size != before.st_size || after.st_mtim.tv_sec != before.st_mtim.tv_sec ||
       after.st_mtim.tv_nsec != before.st_mtim.tv_nsec)) {
    // Like restic: the version is stored, but what it holds may be no state the file ever had.
    std::fprintf(stderr,
                 "cairn: warning: %s changed while it was read (size %lld, now %lld bytes); "
                 "the stored version may be inconsistent\n",
                 ShownInTerminal(file).c_str(), (long long)before.st_size,
                 (long long)after.st_size);
    rc = 3;
  }
  if (*fd > 0) ::close(*fd);
  return rc;
}

RunFn DefinePut(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<PutArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("NAME", a->name, "object name")
      ->required()
      ->check(ValueCheck("NAME", CheckNewObjectName));
  cmd.add_option("FILE", a->args,
                 "input file, or - for stdin (default); with --stdin-from-command, the command "
                 "and its arguments after --");
  cmd.add_flag("--stdin-from-command", a->from_command,
               "store the standard output of the command after --; store nothing when it "
               "fails (non-zero exit)");
  return [a, &g = ctx.globals] { return CmdPut(g, *a); };
}

// ------------------------------------------------------------------ get

Result<Range> ParseRange(const std::string& s) {
  Range r;
  if (s.empty()) return r;
  auto colon = s.find(':');
  if (colon == std::string::npos)
    return Status::Invalid("bad range '" + s + "' (use OFFSET:LENGTH)");
  CAIRN_ASSIGN_OR_RETURN(r.offset, ParseSize(s.substr(0, colon)));
  if (colon + 1 < s.size()) {
    CAIRN_ASSIGN_OR_RETURN(uint64_t len, ParseSize(s.substr(colon + 1)));
    r.length = len;
  }
  return r;
}

struct GetArgs {
  std::string repo, ref, out, range;
  bool force = false;
  bool sync = false;      // --sync: flush the output to stable storage before returning
  bool buffered = false;  // --buffered: the whole output through the page cache (no O_DIRECT)
};

// Restores into an existing device, FIFO or socket `out` in place (--force): such a target is
// written, never replaced.
Status GetInPlace(Repository& repo, const std::string& name, std::optional<uint64_t> version,
                  const Range& range, const std::string& out, bool sync, ProgressBar& bar) {
  int fd = ::open(out.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "cannot write " + out);
  FdSink sink(fd, out);
  Status s =
      repo.Get(name, version, range, sink, [&](uint64_t d, uint64_t t) { bar.Update(d, t); });
  if (s.ok()) s = sink.Finish();
  bar.Finish();
  if (s.ok() && sync && ::fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
    s = Status::FromErrno(errno, "flushing " + out);
  if (::close(fd) != 0 && s.ok()) s = Status::FromErrno(errno, "writing " + out);
  return s;
}

// Where a regular-file restore goes and with which mode: a link is followed to the file it
// names; an existing file keeps its mode; a new one is private (0600) when the content came
// from an encrypted repository, else 0666 less the umask. Refuses directories, and devices,
// FIFOs and sockets unless `in_place` may be set (--force).
Status PlanOutput(const std::string& out, bool force, bool private_new, std::string& target,
                  mode_t& mode, bool& in_place) {
  target = out;
  in_place = false;
  struct stat st;
  if (::stat(out.c_str(), &st) != 0) {
    if (errno != ENOENT) return Status::FromErrno(errno, "cannot write " + out);
    mode_t mask = ::umask(077);
    ::umask(mask);
    mode = private_new ? 0600 : (0666 & ~mask);
    return Status::Ok();
  }
  if (S_ISDIR(st.st_mode)) return Status::Invalid("cannot write " + out + ": it is a directory");
  if (!S_ISREG(st.st_mode)) {
    if (!force)
      return Status::Invalid(out +
                             " exists and is not a regular file (a device, FIFO or socket); "
                             "use --force to write into it in place");
    in_place = true;
    return Status::Ok();
  }
  mode = st.st_mode & 07777;
  char* real = ::realpath(out.c_str(), nullptr);
  if (!real) return Status::FromErrno(errno, "resolving " + out);
  target = real;
  ::free(real);
  return Status::Ok();
}

// Restores into `out` through a new temporary file beside it (OutputFile: random name, O_EXCL,
// no symbolic link followed, never a file of the user's), renamed into place once complete, so
// a failed get leaves `out` as it was. Like cp, `restic restore` and `borg extract`, the data is
// left to the kernel's writeback unless --sync asks for an fsync before the rename (a restore
// of 1.3 GB spent a third of its time in that fsync). Zero blocks stay holes. Past its first
// 16 MiB the output is written with O_DIRECT (DirectSink: no copy into the page cache on the
// ordered thread) unless --buffered. An existing device, FIFO or socket is refused, or with
// --force written in place.
Status GetToFile(Repository& repo, const std::string& name, std::optional<uint64_t> version,
                 const Range& range, const GetArgs& a, bool private_new, ProgressBar& bar) {
  std::string target;
  mode_t mode = 0600;
  bool in_place = false;
  CAIRN_RETURN_IF_ERROR(PlanOutput(a.out, a.force, private_new, target, mode, in_place));
  if (in_place) return GetInPlace(repo, name, version, range, a.out, a.sync, bar);
  CAIRN_ASSIGN_OR_RETURN(OutputFile file, OutputFile::Create(target));
  // A fresh file: zero blocks stay holes.
  DirectSink sink(file.fd(), a.out, a.buffered ? UINT64_MAX : DirectSink::kDirectAfter);
  Status s = ::fchmod(file.fd(), mode) == 0
                 ? Status::Ok()
                 : Status::FromErrno(errno, "setting the mode of " + a.out);
  // With --sync, every kWritebackEvery bytes the disk is set to work on what was written, so
  // the final fsync does not wait for the whole file.
  constexpr uint64_t kWritebackEvery = 64u << 20;
  uint64_t kicked = 0;
  auto progress = [&](uint64_t d, uint64_t t) {
    bar.Update(d, t);
    if (a.sync && d - kicked >= kWritebackEvery) {
      file.StartWriteback();
      kicked = d;
    }
  };
  if (s.ok()) s = repo.Get(name, version, range, sink, progress);
  if (s.ok()) s = sink.Finish();
  bar.Finish();
  if (!s.ok()) return s;
  return file.Commit(a.sync);
}

int CmdGet(const Globals& g, const GetArgs& a) {
  auto parsed = ParseObjectRef(a.ref);
  if (!parsed.ok()) return Fail(parsed.status());
  auto range = ParseRange(a.range);
  if (!range.ok()) return Fail(range.status());
  auto repo = OpenRepo(a.repo, false, g);
  if (!repo.ok()) return Fail(repo.status());
  auto& [name, version] = parsed.value();
  const bool to_stdout = a.out.empty() || a.out == "-";
  if (to_stdout && StandardDescriptorWasClosed(1))
    return Fail(Status::Invalid("standard output is closed: use -o FILE"));
  ProgressBar bar("get " + a.ref, !g.quiet && !to_stdout);
  Status s;
  if (to_stdout) {
    FdSink sink(1, "standard output");
    s = (*repo)->Get(name, version, *range, sink,
                     [&](uint64_t d, uint64_t t) { bar.Update(d, t); });
  } else {
    auto enc = Repository::Encrypted(a.repo);
    s = GetToFile(**repo, name, version, *range, a, !enc.ok() || *enc, bar);
  }
  return s.ok() ? 0 : Fail(s);
}

RunFn DefineGet(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<GetArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("REF", a->ref, "NAME or NAME@VERSION")->required();
  cmd.add_option("-o,--output", a->out, "output file, or - for stdout (default)");
  cmd.add_option("--range", a->range, "OFFSET:LENGTH, bytes")
      ->check(ValueCheck("RANGE", ParseRange));
  cmd.add_flag("--force", a->force,
               "write into an existing device, FIFO or socket in place (refused otherwise)");
  cmd.add_flag("--sync", a->sync,
               "flush the output file to stable storage (fsync) before returning; by default "
               "it is written like cp writes, and the kernel flushes it later");
  cmd.add_flag("--buffered", a->buffered,
               "write the whole output file through the page cache; by default what follows "
               "its first 16 MiB is written with O_DIRECT, which skips that copy and leaves the "
               "page cache to other data");
  return [a, &g = ctx.globals] { return CmdGet(g, *a); };
}

// ------------------------------------------------------------------ ls, versions

struct LsArgs {
  std::string repo, prefix;
};

int CmdLs(const Globals& g, const LsArgs& a) {
  auto repo = OpenRepo(a.repo, false, g);
  if (!repo.ok()) return Fail(repo.status());
  auto list = (*repo)->List(a.prefix);
  if (!list.ok()) return Fail(list.status());
  if (g.json) {
    json arr = json::array();
    for (const auto& o : *list)
      arr.push_back(
          {{"name", o.name}, {"versions", o.versions}, {"latest", VersionJson(o.latest)}});
    PrintJson(arr);
    return 0;
  }
  for (const auto& o : *list)
    std::printf("%-40s %4llu versions  latest @%llu  %12s  %s\n", ShownInTerminal(o.name).c_str(),
                (unsigned long long)o.versions, (unsigned long long)o.latest.version,
                HumanBytes(o.latest.size).c_str(), TimeString(o.latest.created_ns).c_str());
  return 0;
}

RunFn DefineLs(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<LsArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("PREFIX", a->prefix, "only names starting with PREFIX");
  return [a, &g = ctx.globals] { return CmdLs(g, *a); };
}

struct NameArgs {
  std::string repo, name;
};

int CmdVersions(const Globals& g, const NameArgs& a) {
  auto repo = OpenRepo(a.repo, false, g);
  if (!repo.ok()) return Fail(repo.status());
  auto vs = (*repo)->Versions(a.name);
  if (!vs.ok()) return Fail(vs.status());
  if (g.json) {
    json arr = json::array();
    for (const auto& v : *vs) arr.push_back(VersionJson(v));
    PrintJson(arr);
    return 0;
  }
  for (const auto& v : *vs)
    std::printf("%s@%-6llu %12s  %6llu chunks  %s  %s\n", ShownInTerminal(a.name).c_str(),
                (unsigned long long)v.version, HumanBytes(v.size).c_str(),
                (unsigned long long)v.chunks, TimeString(v.created_ns).c_str(),
                v.content_hash.ShortHex().c_str());
  return 0;
}

RunFn DefineVersions(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<NameArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("NAME", a->name)->required();
  return [a, &g = ctx.globals] { return CmdVersions(g, *a); };
}

// ------------------------------------------------------------------ rm

int CmdRm(const Globals& g, const std::string& repo_path, const std::string& ref) {
  auto parsed = ParseObjectRef(ref);
  if (!parsed.ok()) return Fail(parsed.status());
  auto repo = OpenRepo(repo_path, true, g);
  if (!repo.ok()) return Fail(repo.status());
  auto n = (*repo)->Remove(parsed->first, parsed->second);
  if (!n.ok()) return Fail(n.status());
  Report(g, {{"name", parsed->first}, {"versions_removed", *n}},
         "removed " + std::to_string(*n) + " version(s) of " + parsed->first);
  return 0;
}

RunFn DefineRm(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<NameArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("REF", a->name, "NAME or NAME@VERSION")->required();
  return [a, &g = ctx.globals] { return CmdRm(g, a->repo, a->name); };
}

// ------------------------------------------------------------------ cat

struct CatArgs {
  std::string repo, what, id;
};

int CmdCat(const Globals& g, const CatArgs& a) {
  auto id = Digest::FromHex(a.id);
  if (!id) return Fail(Status::Invalid("bad id '" + a.id + "': expected 64 hex digits"));
  auto repo = OpenRepo(a.repo, false, g);
  if (!repo.ok()) return Fail(repo.status());
  if (a.what == "chunk") {
    FdSink sink(1, "standard output");
    Status s = (*repo)->CatChunk(*id, sink);
    return s.ok() ? 0 : Fail(s);
  }
  auto m = (*repo)->CatManifest(*id);
  if (!m.ok()) return Fail(m.status());
  json arr = json::array();
  uint64_t off = 0;
  for (const auto& [cid, len] : *m) {
    arr.push_back({{"chunk", cid.Hex()}, {"offset", off}, {"length", len}});
    off += len;
  }
  std::cout << arr.dump(g.json ? -1 : 1) << "\n";
  return 0;
}

RunFn DefineCat(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<CatArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("WHAT", a->what, "chunk or manifest")
      ->required()
      ->check(CLI::IsMember({"chunk", "manifest"}));
  cmd.add_option("ID", a->id, "64 hex digits")->required();
  return [a, &g = ctx.globals] { return CmdCat(g, *a); };
}

constexpr CommandSpec kObjectCommands[] = {
    {"put", "store a new version of an object from FILE or stdin", DefinePut},
    {"get", "restore an object (NAME or NAME@VERSION)", DefineGet},
    {"ls", "list objects", DefineLs},
    {"versions", "list the versions of an object", DefineVersions},
    {"rm", "remove an object version (NAME@VERSION) or every version", DefineRm},
    {"cat", "print a chunk (raw) or a manifest (JSON) by id", DefineCat},
};

}  // namespace

std::span<const CommandSpec> ObjectCommands() { return kObjectCommands; }

}  // namespace cairn::cli
