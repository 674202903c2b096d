// `cairn vdisk create|import|export|ls|info|rm|resize|snapshot|clone|flatten`: virtual disks
// (cairn/vdisk.h, docs/vdisk.md) in the store --user/--system selects. `vdisk serve` is in
// cmd_serve.cc.
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <tuple>
#include <vector>

#include "cairn/repository.h"
#include "cli/common.h"
#include "cli/output_file.h"
#include "cli/progress.h"

namespace cairn::cli {
namespace {

// "[system:]NAME" -> (NAME, in the system store).
std::pair<std::string, bool> ParseTemplateRef(const std::string& s) {
  const std::string prefix = "system:";
  if (s.rfind(prefix, 0) == 0) return {s.substr(prefix.size()), true};
  return {s, false};
}

std::string TemplateText(const VdiskInfo& i) {
  if (i.template_name.empty()) return "";
  return (i.template_in_system ? "system:" : "") + i.template_name;
}

std::string Flags(const VdiskInfo& i) {
  std::string f = i.read_only ? "ro" : "rw";
  if (i.is_template) f += ",template";
  if (i.snapshot) f += ",snapshot";
  if (i.incomplete) f += ",incomplete";  // an interrupted snapshot or rm: rm it
  return f;
}

// What of a VdiskInfo a command computed beside its descriptor: stored_bytes needs a walk of
// the block map (vdisk info), bitmap_bits_set a load of the bitmap (every command but ls and
// import). A figure not computed is null in JSON, not a 0 that reads as one.
enum class Usage { kNone, kBitmap, kAll };

json InfoJson(const VdiskInfo& i, Usage usage) {
  const json stored = usage == Usage::kAll ? json(i.stored_bytes) : json(nullptr);
  const json bits = usage != Usage::kNone ? json(i.bitmap_bits_set) : json(nullptr);
  return {{"name", i.name},
          {"id", i.id},
          {"mode", std::string(VdiskModeName(i.mode))},
          {"size", i.size},
          {"block_size", i.block_size},
          {"blocks", i.blocks},
          {"read_only", i.read_only},
          {"snapshot", i.snapshot},
          {"incomplete", i.incomplete},
          {"template", i.is_template},
          {"template_name", i.template_name},
          {"template_in_system", i.template_in_system},
          {"blocks_written", i.blocks_written},
          {"stored_bytes", stored},
          {"bitmap_bits_set", bits},
          {"bitmap_bytes", i.bitmap_bytes},
          {"created", TimeString(i.created_ns)},
          {"created_ns", i.created_ns},
          {"generation", i.generation}};
}

Result<uint32_t> ParseBlockSize(const std::string& s) {
  CAIRN_ASSIGN_OR_RETURN(uint64_t bs, ParseSize(s));
  if (bs < 512 || bs > 65536 || (bs & (bs - 1)) != 0)
    return Status::Invalid("bad block size '" + s + "': a power of two from 512 to 64K");
  return static_cast<uint32_t>(bs);
}

// A vdisk size (--size, resize SIZE): 1 byte to 1 PiB; rounded up to whole blocks later.
Result<uint64_t> ParseVdiskSize(const std::string& s) {
  CAIRN_ASSIGN_OR_RETURN(uint64_t v, ParseSize(s));
  CAIRN_RETURN_IF_ERROR(CheckVdiskSize(v).WithContext("'" + s + "'"));
  return v;
}

struct VdiskNameArgs {
  std::string repo, name;
};

// ------------------------------------------------------------------ create

struct CreateArgs {
  std::string repo, name, size, mode, block_size, tmpl;  // block size: the template's, or 4K
};

Result<VdiskCreateOptions> CreateOptions(const CreateArgs& a) {
  VdiskCreateOptions o;
  std::string mode = a.mode.empty() ? (a.tmpl.empty() ? "" : "semideduped") : a.mode;
  if (mode.empty()) return Status::Invalid("give --mode deduped|nondeduped|semideduped");
  CAIRN_ASSIGN_OR_RETURN(o.mode, ParseVdiskMode(mode));
  if (!a.size.empty()) {
    CAIRN_ASSIGN_OR_RETURN(o.size, ParseVdiskSize(a.size));
  }
  o.block_size = 0;
  if (!a.block_size.empty()) {
    CAIRN_ASSIGN_OR_RETURN(o.block_size, ParseBlockSize(a.block_size));
  }
  if (!a.tmpl.empty()) std::tie(o.template_name, o.template_in_system) = ParseTemplateRef(a.tmpl);
  return o;
}

// Prints what `cmd` did to `name`: its info as JSON, or `what` (a sentence) unless --quiet.
int Done(const Globals& g, Repository& repo, const std::string& name, const std::string& what) {
  if (g.json) {
    auto info = repo.VdiskStat(name, false);
    if (!info.ok()) return Fail(info.status());
    PrintJson(InfoJson(*info, Usage::kBitmap));
  } else if (!g.quiet) {
    std::printf("%s\n", ShownInTerminal(what).c_str());
  }
  return 0;
}

// " (N bytes: rounded up to whole B-byte blocks)" when the vdisk `info` describes is not
// `asked` bytes long (a size is rounded up to whole blocks), else "".
std::string RoundingNote(const VdiskInfo& info, uint64_t asked) {
  if (asked == 0 || info.size == asked) return std::string();
  return " (" + std::to_string(info.size) + " bytes: rounded up to whole " +
         std::to_string(info.block_size) + "-byte blocks)";
}

int CmdCreate(const Globals& g, const CreateArgs& a) {
  // Arguments that cannot make a vdisk are usage errors, before the password is asked for.
  auto o = CreateOptions(a);
  if (!o.ok()) return UsageError(o.status().message());
  if (Status bad = CheckVdiskCreate(a.name, *o); !bad.ok()) return UsageError(bad.message());
  auto repo = OpenRepo(a.repo, true, g);
  if (!repo.ok()) return Fail(repo.status());
  Status s = (*repo)->CreateVdisk(a.name, *o);
  if (!s.ok()) return Fail(s);
  auto info = (*repo)->VdiskStat(a.name, false);
  if (!info.ok()) return Fail(info.status());
  return Done(g, **repo, a.name,
              "created vdisk " + a.name + " (" + std::string(VdiskModeName(o->mode)) + ")" +
                  RoundingNote(*info, o->size));
}

RunFn DefineCreate(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<CreateArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("NAME", a->name, "vdisk name")
      ->required()
      ->check(ValueCheck("NAME", CheckNewVdiskName));
  cmd.add_option("--size", a->size, "size (e.g. 10G); default: the template's")
      ->check(ValueCheck("SIZE", ParseVdiskSize));
  cmd.add_option("--mode", a->mode, "deduped, nondeduped or semideduped")
      ->check(CLI::IsMember({"deduped", "nondeduped", "semideduped"}));
  cmd.add_option("--block-size", a->block_size,
                 "block size, 512 to 64K (default: the template's, else 4K)")
      ->check(ValueCheck("SIZE", ParseBlockSize));
  cmd.add_option("--template", a->tmpl,
                 "[system:]VDISK: the template of a semi-deduped vdisk (system: in the system "
                 "store)")
      ->check(CLI::Validator(
          [](std::string& s) -> std::string {
            return s.empty() || s == "system:" ? "the template name is empty" : "";
          },
          "[system:]VDISK"));
  return [a, &g = ctx.globals] { return CmdCreate(g, *a); };
}

// ------------------------------------------------------------------ import

struct ImportArgs {
  std::string repo, name, image, block_size = "4K";
  bool as_template = false;
};

// A source that counts the bytes read through it (an image on standard input has no size
// until it ends).
class CountingSource : public ByteSource {
 public:
  explicit CountingSource(ByteSource& in) : in_(in) {}
  Result<size_t> Read(std::span<uint8_t> out) override {
    auto n = in_.Read(out);
    if (n.ok()) bytes_ += *n;
    return n;
  }
  uint64_t SizeHint() const override { return in_.SizeHint(); }
  uint64_t bytes() const { return bytes_; }

 private:
  ByteSource& in_;
  uint64_t bytes_ = 0;
};

int CmdImport(const Globals& g, const ImportArgs& a) {
  auto bs = ParseBlockSize(a.block_size);
  if (!bs.ok()) return Fail(bs.status());
  int fd = 0;
  uint64_t size = 0;
  if (a.image != "-") {
    fd = ::open(a.image.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Fail(Status::FromErrno(errno, "cannot read " + a.image));
    struct stat st;
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) size = st.st_size;
  }
  auto repo = OpenRepo(a.repo, true, g);
  if (!repo.ok()) return Fail(repo.status());
  FdSource file(fd, a.image == "-" ? "stdin" : a.image, size);
  CountingSource src(file);
  ProgressBar bar("import " + a.name, !g.quiet);
  auto r = (*repo)->ImportVdisk(a.name, src, *bs, a.as_template,
                                [&](uint64_t d, uint64_t t) { bar.Update(d, t); });
  bar.Finish();
  if (fd > 0) ::close(fd);
  if (!r.ok()) return Fail(r.status());
  if (g.json) {
    PrintJson(InfoJson(*r, Usage::kBitmap));  // an import is never semi-deduped
  } else if (!g.quiet) {
    std::printf("imported %s as vdisk %s%s: %llu of %llu blocks hold data\n",
                ShownInTerminal(a.image).c_str(), ShownInTerminal(a.name).c_str(),
                a.as_template ? " (a template)" : "", (unsigned long long)r->blocks_written,
                (unsigned long long)r->blocks);
    if (r->size != src.bytes())  // an image that is not a whole number of blocks
      std::printf("the vdisk is %llu bytes: the image's %llu, its last block padded with zeros\n",
                  (unsigned long long)r->size, (unsigned long long)src.bytes());
  }
  return 0;
}

RunFn DefineImport(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<ImportArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("NAME", a->name, "vdisk name")
      ->required()
      ->check(ValueCheck("NAME", CheckNewVdiskName));
  cmd.add_option("IMAGE", a->image, "a raw image, or - for stdin")->required()->check(NotEmpty);
  cmd.add_flag("--template", a->as_template, "read-only, usable as a template");
  cmd.add_option("--block-size", a->block_size, "block size, 512 to 64K (default 4K)")
      ->check(ValueCheck("SIZE", ParseBlockSize));
  return [a, &g = ctx.globals] { return CmdImport(g, *a); };
}

// ------------------------------------------------------------------ export

constexpr uint64_t kIoBytes = 4u << 20;         // bytes read from the vdisk at a time
constexpr uint64_t kExtentWindow = 1ull << 30;  // bytes asked of Extents at a time

Status WriteAllAt(int fd, const uint8_t* p, size_t n, std::optional<uint64_t> at,
                  const std::string& what) {
  while (n > 0) {
    ssize_t w = at ? ::pwrite(fd, p, n, static_cast<off_t>(*at)) : ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Status::FromErrno(errno, "writing " + what);
    p += w;
    n -= static_cast<size_t>(w);
    if (at) *at += static_cast<uint64_t>(w);
  }
  return Status::Ok();
}

// Copies `v` to `fd`: at its offsets (a file: holes are skipped, so the output is sparse), or
// as a stream (standard output: holes are written as zeros). `written` counts the bytes
// written to `fd`, also when the copy fails.
Status CopyOut(Vdisk& v, int fd, bool stream, const std::string& what, ProgressBar& bar,
               uint64_t& written) {
  std::vector<uint8_t> buf(kIoBytes);
  for (uint64_t win = 0; win < v.size(); win += kExtentWindow) {
    std::vector<std::pair<uint64_t, uint64_t>> runs;  // (offset, length); data, or a hole
    std::vector<bool> hole;
    CAIRN_RETURN_IF_ERROR(v.Extents(win, std::min(kExtentWindow, v.size() - win),
                                    [&](uint64_t off, uint64_t len, VdiskExtent t) {
                                      runs.emplace_back(off, len);
                                      hole.push_back(t == VdiskExtent::kHole);
                                    }));
    for (size_t r = 0; r < runs.size(); r++) {
      auto [off, len] = runs[r];
      if (hole[r] && !stream) continue;
      for (uint64_t done = 0; done < len;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(kIoBytes, len - done));
        if (hole[r])
          std::fill(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(n), 0);
        else
          CAIRN_RETURN_IF_ERROR(v.Read(off + done, {buf.data(), n}));
        std::optional<uint64_t> at;
        if (!stream) at = off + done;
        CAIRN_RETURN_IF_ERROR(WriteAllAt(fd, buf.data(), n, at, what));
        written += n;
        done += n;
        bar.Update(off + done, v.size());
      }
    }
  }
  return Status::Ok();
}

// Busy when the copy just made of `v` may mix commits (its view moved: Vdisk::view_moved).
Status CopiedFromOneView(const Vdisk& v) {
  if (!v.view_moved()) return Status::Ok();
  return Status::Busy("vdisk '" + v.name() +
                      "' changed while it was being read: another process (a `cairn vdisk "
                      "serve`?) is writing it, and the copy mixed blocks of more than one flush");
}

// Exports into `out` through a temporary file beside it (OutputFile: random O_EXCL name, no
// symbolic link followed), renamed into place once complete, and only from a copy of one view.
Status ExportToFile(Vdisk& v, const std::string& out, ProgressBar& bar) {
  CAIRN_ASSIGN_OR_RETURN(OutputFile file, OutputFile::Create(out));
  if (::ftruncate(file.fd(), static_cast<off_t>(v.size())) != 0)
    return Status::FromErrno(errno, "sizing " + out);
  uint64_t written = 0;
  CAIRN_RETURN_IF_ERROR(CopyOut(v, file.fd(), false, out, bar, written));
  CAIRN_RETURN_IF_ERROR(CopiedFromOneView(v));
  return file.Commit(true);
}

struct ExportArgs {
  std::string repo, name, out;
};

// Where an export goes. A file is written through a temporary file renamed into place
// (ExportToFile). A stream is written in order from its start, holes as zeros: standard output
// ("-"), or an existing FILE that is no regular file, followed through symbolic links (a block
// or character device, a FIFO), which is written into as dd or qemu-img convert would, never
// replaced.
struct ExportTarget {
  bool stream = false;
  int fd = -1;          // a stream's descriptor
  bool owned = false;   // opened here (closed by CmdExport)
  bool device = false;  // a block device: sized, and synced at the end
  std::string what;     // "standard output", or FILE
};

Result<ExportTarget> OpenExportTarget(const std::string& out) {
  ExportTarget t;
  if (out == "-") {
    t.stream = true;
    t.fd = 1;
    t.what = "standard output";
    return t;
  }
  struct stat st;
  if (::stat(out.c_str(), &st) != 0) {
    if (errno == ENOENT) return t;  // a new file (OutputFile says why when it cannot be made)
    return Status::FromErrno(errno, out);
  }
  if (S_ISREG(st.st_mode)) return t;
  if (S_ISDIR(st.st_mode)) return Status::Invalid(out + " is a directory, not a file to export to");
  t.fd = ::open(out.c_str(), O_WRONLY | O_CLOEXEC);
  if (t.fd < 0) return Status::FromErrno(errno, "opening " + out);
  t.stream = true;
  t.owned = true;
  t.device = S_ISBLK(st.st_mode);
  t.what = out;
  return t;
}

// A block device must hold the whole vdisk.
Status CheckDeviceSize(const ExportTarget& t, uint64_t size) {
  if (!t.device) return Status::Ok();
  uint64_t bytes = 0;
  if (::ioctl(t.fd, BLKGETSIZE64, &bytes) != 0)
    return Status::FromErrno(errno, "the size of block device " + t.what);
  if (bytes < size)
    return Status::Invalid(t.what + " is a block device of " + std::to_string(bytes) +
                           " bytes, smaller than the vdisk (" + std::to_string(size) + " bytes)");
  return Status::Ok();
}

// One export on a fresh view of the store, opened with `password`; `size` gets the vdisk's
// size, `streamed` the bytes written to a stream. `raced`: the copy failed because a writer in
// another process changed the vdisk under it.
Status ExportOnce(const Globals& g, const ExportArgs& a, const ExportTarget& t,
                  const std::string& password, ProgressBar& bar, uint64_t& size, uint64_t& streamed,
                  bool& raced) {
  raced = false;
  // The view is pinned: a server writing the vdisk keeps the blocks it names meanwhile.
  CAIRN_ASSIGN_OR_RETURN(auto repo, OpenRepo(a.repo, false, g, password, /*pin_view=*/true));
  CAIRN_ASSIGN_OR_RETURN(auto v, repo->OpenVdisk(a.name, false));
  size = v->size();
  Status s;
  if (t.stream) {
    s = CheckDeviceSize(t, size);
    if (s.ok()) s = CopyOut(*v, t.fd, true, t.what, bar, streamed);
    if (s.ok()) s = CopiedFromOneView(*v);
    if (s.ok() && t.device && ::fsync(t.fd) != 0) s = Status::FromErrno(errno, "syncing " + t.what);
  } else {
    s = ExportToFile(*v, a.out, bar);
  }
  raced = s.code() == Code::kBusy;
  return s;
}

// What a failed export left where it wrote, for the message.
std::string ExportLeft(const ExportArgs& a, const ExportTarget& t, uint64_t streamed, uint64_t size,
                       int attempts) {
  std::string left = !t.stream  ? a.out + " was not written"
                     : streamed ? t.what + " has a partial image (" + std::to_string(streamed) +
                                      " of " + std::to_string(size) + " bytes)"
                                : "nothing was written to " + t.what;
  if (!t.stream || streamed == 0) left += " (tried " + std::to_string(attempts) + " times)";
  return left;
}

// A vdisk that a server in another process writes may change under the export (Busy: blocks
// its view named were released), when its view could not be pinned. A file is exported again
// from a fresh view, up to three times, so that what lands in FILE is the vdisk as one commit
// left it; so is a stream while nothing has been written to it (after that it cannot be). The
// password is read once.
int CmdExport(const Globals& g, const ExportArgs& a) {
  constexpr int kAttempts = 3;
  // A reader of the stream that goes away (`export - | head`) is an error to report, after
  // which the pin and the store are closed (main ignores SIGPIPE).
  auto target = OpenExportTarget(a.out);
  if (!target.ok()) return Fail(target.status());
  const ExportTarget& t = *target;
  auto pw = RepoPassword(g, a.repo);
  if (!pw.ok()) return Fail(pw.status());
  Status s;
  uint64_t size = 0, streamed = 0;
  bool raced = false;
  int attempt = 1;
  for (;; attempt++) {
    ProgressBar bar("export " + a.name, !g.quiet && a.out != "-");
    s = ExportOnce(g, a, t, *pw, bar, size, streamed, raced);
    bar.Finish();
    if (!raced || streamed > 0 || attempt == kAttempts) break;
    if (!g.quiet)
      std::fprintf(stderr,
                   "cairn: vdisk '%s' changed while it was being read; exporting again "
                   "(attempt %d of %d)\n",
                   ShownInTerminal(a.name).c_str(), attempt + 1, kAttempts);
  }
  SecureWipe(*pw);
  if (t.owned) ::close(t.fd);
  if (raced)
    return Fail(Status::Busy(s.message() + "; " + ExportLeft(a, t, streamed, size, attempt) +
                             ": stop the server, or serve the vdisk --readonly, and export again"));
  if (!s.ok()) return Fail(s);
  if (g.json && a.out != "-") PrintJson({{"name", a.name}, {"file", a.out}, {"size", size}});
  return 0;
}

RunFn DefineExport(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<ExportArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("NAME", a->name, "vdisk name")->required();
  cmd.add_option("FILE", a->out,
                 "output raw image (sparse), - for stdout; an existing device or FIFO is "
                 "written into")
      ->required()
      ->check(NotEmpty);
  return [a, &g = ctx.globals] { return CmdExport(g, *a); };
}

// ------------------------------------------------------------------ ls, info

int CmdLs(const Globals& g, const std::string& repo_path) {
  auto repo = OpenRepo(repo_path, false, g);
  if (!repo.ok()) return Fail(repo.status());
  auto list = (*repo)->ListVdisks();
  if (!list.ok()) return Fail(list.status());
  if (g.json) {
    json arr = json::array();
    for (const auto& i : *list) arr.push_back(InfoJson(i, Usage::kNone));
    PrintJson(arr);
    return 0;
  }
  for (const auto& i : *list)
    std::printf("%-32s %-11s %12s %6s  %-20s %s\n", ShownInTerminal(i.name).c_str(),
                std::string(VdiskModeName(i.mode)).c_str(), HumanBytes(i.size).c_str(),
                HumanBytes(i.block_size).c_str(), Flags(i).c_str(),
                ShownInTerminal(TemplateText(i)).c_str());
  return 0;
}

RunFn DefineVdiskLs(CLI::App& cmd, Context& ctx) {
  auto repo = std::make_shared<std::string>();
  cmd.add_option("REPO", *repo)->required();
  return [repo, &g = ctx.globals] { return CmdLs(g, *repo); };
}

void PrintInfo(const VdiskInfo& i) {
  auto line = [](const char* k, const std::string& v) {
    std::printf("%-16s %s\n", k, ShownInTerminal(v).c_str());
  };
  line("name:", i.name);
  line("mode:", std::string(VdiskModeName(i.mode)));
  line("size:", HumanBytes(i.size) + " (" + std::to_string(i.size) + " bytes)");
  line("block size:",
       std::to_string(i.block_size) + " bytes, " + std::to_string(i.blocks) + " blocks");
  line("flags:", Flags(i));
  line("template:", i.template_name.empty() ? "none" : TemplateText(i));
  line("blocks written:", std::to_string(i.blocks_written));
  line("stored bytes:", HumanBytes(i.stored_bytes) + " (" + std::to_string(i.stored_bytes) + ")");
  if (i.mode == VdiskMode::kSemideduped)
    line("bitmap:", std::to_string(i.bitmap_bits_set) + " of " + std::to_string(i.blocks) +
                        " bits set, " + std::to_string(i.bitmap_bytes) + " bytes stored");
  line("created:", TimeString(i.created_ns));
  line("generation:", std::to_string(i.generation));
  line("id:", i.id);
}

int CmdInfo(const Globals& g, const VdiskNameArgs& a) {
  auto repo = OpenRepo(a.repo, false, g);
  if (!repo.ok()) return Fail(repo.status());
  auto info = (*repo)->VdiskStat(a.name, true);
  if (!info.ok()) return Fail(info.status());
  if (g.json)
    PrintJson(InfoJson(*info, Usage::kAll));
  else
    PrintInfo(*info);
  return 0;
}

RunFn DefineInfo(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<VdiskNameArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("NAME", a->name, "vdisk name")->required();
  return [a, &g = ctx.globals] { return CmdInfo(g, *a); };
}

// ------------------------------------------------------------------ rm, resize, flatten

int CmdRm(const Globals& g, const VdiskNameArgs& a) {
  auto repo = OpenRepo(a.repo, true, g);
  if (!repo.ok()) return Fail(repo.status());
  Status s = (*repo)->RemoveVdisk(a.name);
  if (!s.ok()) return Fail(s);
  if (g.json)
    PrintJson({{"removed", a.name}});
  else if (!g.quiet)
    std::printf("removed vdisk %s\n", ShownInTerminal(a.name).c_str());
  return 0;
}

RunFn DefineVdiskRm(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<VdiskNameArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("NAME", a->name, "vdisk name")->required();
  return [a, &g = ctx.globals] { return CmdRm(g, *a); };
}

struct ResizeArgs {
  std::string repo, name, size;
};

int CmdResize(const Globals& g, const ResizeArgs& a) {
  auto size = ParseVdiskSize(a.size);
  if (!size.ok()) return Fail(size.status());
  auto repo = OpenRepo(a.repo, true, g);
  if (!repo.ok()) return Fail(repo.status());
  Status s = (*repo)->ResizeVdisk(a.name, *size);
  if (!s.ok()) return Fail(s);
  // The size it has now: a size that is not a whole number of blocks is rounded up.
  auto info = (*repo)->VdiskStat(a.name, false);
  if (!info.ok()) return Fail(info.status());
  return Done(
      g, **repo, a.name,
      "resized vdisk " + a.name + " to " + HumanBytes(info->size) + RoundingNote(*info, *size));
}

RunFn DefineResize(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<ResizeArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("NAME", a->name, "vdisk name")->required();
  cmd.add_option("SIZE", a->size, "the new size (it can only grow)")
      ->required()
      ->check(ValueCheck("SIZE", ParseVdiskSize));
  return [a, &g = ctx.globals] { return CmdResize(g, *a); };
}

int CmdFlatten(const Globals& g, const VdiskNameArgs& a) {
  auto repo = OpenRepo(a.repo, true, g);
  if (!repo.ok()) return Fail(repo.status());
  ProgressBar bar("flatten " + a.name, !g.quiet);
  Status s = (*repo)->FlattenVdisk(a.name, [&](uint64_t d, uint64_t t) { bar.Update(d, t); });
  bar.Finish();
  if (!s.ok()) return Fail(s);
  return Done(g, **repo, a.name, "flattened vdisk " + a.name + ": it no longer needs a template");
}

RunFn DefineFlatten(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<VdiskNameArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("NAME", a->name, "vdisk name")->required();
  return [a, &g = ctx.globals] { return CmdFlatten(g, *a); };
}

// ------------------------------------------------------------------ snapshot, clone

struct PairArgs {
  std::string repo, from, to;
};

int CmdSnapshot(const Globals& g, const PairArgs& a) {
  auto repo = OpenRepo(a.repo, true, g);
  if (!repo.ok()) return Fail(repo.status());
  Status s = (*repo)->SnapshotVdisk(a.from, a.to);
  if (!s.ok()) return Fail(s);
  return Done(g, **repo, a.to, "snapshot " + a.to + " of vdisk " + a.from);
}

RunFn DefineSnapshot(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<PairArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("NAME", a->from, "the vdisk")->required();
  cmd.add_option("SNAP", a->to, "the snapshot's name")
      ->required()
      ->check(ValueCheck("NAME", CheckNewVdiskName));
  return [a, &g = ctx.globals] { return CmdSnapshot(g, *a); };
}

int CmdClone(const Globals& g, const PairArgs& a) {
  auto [tmpl, in_system] = ParseTemplateRef(a.from);
  auto repo = OpenRepo(a.repo, true, g);
  if (!repo.ok()) return Fail(repo.status());
  Status s = (*repo)->CloneVdisk(tmpl, in_system, a.to);
  if (!s.ok()) return Fail(s);
  return Done(g, **repo, a.to, "cloned " + a.from + " as vdisk " + a.to + " (semideduped)");
}

RunFn DefineClone(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<PairArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("TEMPLATE", a->from, "[system:]VDISK: a template or snapshot")->required();
  cmd.add_option("NAME", a->to, "the new vdisk")
      ->required()
      ->check(ValueCheck("NAME", CheckNewVdiskName));
  return [a, &g = ctx.globals] { return CmdClone(g, *a); };
}

// ------------------------------------------------------------------ the group

constexpr CommandSpec kVdiskCommands[] = {
    {"create", "create a vdisk", DefineCreate},
    {"import", "import a raw image as a deduped vdisk (zero blocks become holes)", DefineImport},
    {"export", "write a vdisk out as a raw image (sparse)", DefineExport},
    {"ls", "list vdisks", DefineVdiskLs},
    {"info", "a vdisk's mode, size, template, blocks written and stored bytes", DefineInfo},
    {"rm", "remove a vdisk", DefineVdiskRm},
    {"resize", "grow a vdisk", DefineResize},
    {"snapshot", "a read-only point-in-time copy sharing every block", DefineSnapshot},
    {"clone", "a new semi-deduped vdisk on a template", DefineClone},
    {"flatten", "copy the template's blocks in: the vdisk no longer needs it", DefineFlatten},
    {"serve", "serve vdisks over NBD (nbdkit and the cairn plugin)", DefineVdiskServe},
};

RunFn DefineVdisk(CLI::App& cmd, Context& ctx) {
  cmd.require_subcommand(1);
  AddCommands(cmd, kVdiskCommands, ctx);
  return {};
}

constexpr CommandSpec kVdiskGroup[] = {
    {"vdisk", "virtual disks: block devices served over NBD", DefineVdisk},
};

}  // namespace

std::span<const CommandSpec> VdiskCommands() { return kVdiskGroup; }

}  // namespace cairn::cli
