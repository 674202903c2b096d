// `cairn vdisk create|import|export|ls|info|rm|resize|snapshot|clone|flatten|serve`: virtual
// disks (cairn/vdisk.h, docs/vdisk.md) in the store --user/--system selects, and serving them
// over NBD with nbdkit and the cairn plugin (src/nbd/).
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
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
#include "nbd/export_table.h"

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
  return f;
}

json InfoJson(const VdiskInfo& i) {
  return {{"name", i.name},
          {"id", i.id},
          {"mode", std::string(VdiskModeName(i.mode))},
          {"size", i.size},
          {"block_size", i.block_size},
          {"blocks", i.blocks},
          {"read_only", i.read_only},
          {"snapshot", i.snapshot},
          {"template", i.is_template},
          {"template_name", i.template_name},
          {"template_in_system", i.template_in_system},
          {"blocks_written", i.blocks_written},
          {"stored_bytes", i.stored_bytes},
          {"bitmap_bits_set", i.bitmap_bits_set},
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
    CAIRN_ASSIGN_OR_RETURN(o.size, ParseSize(a.size));
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
    PrintJson(InfoJson(*info));
  } else if (!g.quiet) {
    std::printf("%s\n", what.c_str());
  }
  return 0;
}

int CmdCreate(const Globals& g, const CreateArgs& a) {
  auto o = CreateOptions(a);
  if (!o.ok()) return Fail(o.status());
  auto repo = OpenRepo(a.repo, true, g);
  if (!repo.ok()) return Fail(repo.status());
  Status s = (*repo)->CreateVdisk(a.name, *o);
  if (!s.ok()) return Fail(s);
  return Done(g, **repo, a.name,
              "created vdisk " + a.name + " (" + std::string(VdiskModeName(o->mode)) + ")");
}

RunFn DefineCreate(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<CreateArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("NAME", a->name, "vdisk name")->required();
  cmd.add_option("--size", a->size, "size (e.g. 10G); default: the template's");
  cmd.add_option("--mode", a->mode, "deduped, nondeduped or semideduped")
      ->check(CLI::IsMember({"deduped", "nondeduped", "semideduped"}));
  cmd.add_option("--block-size", a->block_size,
                 "block size, 512 to 64K (default: the template's, else 4K)");
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
  FdSource src(fd, a.image == "-" ? "stdin" : a.image, size);
  ProgressBar bar("import " + a.name, !g.quiet);
  auto r = (*repo)->ImportVdisk(a.name, src, *bs, a.as_template,
                                [&](uint64_t d, uint64_t t) { bar.Update(d, t); });
  bar.Finish();
  if (fd > 0) ::close(fd);
  if (!r.ok()) return Fail(r.status());
  if (g.json) {
    PrintJson(InfoJson(*r));
  } else if (!g.quiet) {
    std::printf("imported %s as vdisk %s%s: %llu of %llu blocks hold data\n", a.image.c_str(),
                a.name.c_str(), a.as_template ? " (a template)" : "",
                (unsigned long long)r->blocks_written, (unsigned long long)r->blocks);
    if (size && r->size != size)  // a regular file that is not a whole number of blocks
      std::printf("the vdisk is %llu bytes: the image's %llu, its last block padded with zeros\n",
                  (unsigned long long)r->size, (unsigned long long)size);
  }
  return 0;
}

RunFn DefineImport(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<ImportArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("NAME", a->name, "vdisk name")->required();
  cmd.add_option("IMAGE", a->image, "a raw image, or - for stdin")->required();
  cmd.add_flag("--template", a->as_template, "read-only, usable as a template");
  cmd.add_option("--block-size", a->block_size, "block size, 512 to 64K (default 4K)");
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
// as a stream (standard output: holes are written as zeros).
Status CopyOut(Vdisk& v, int fd, bool stream, const std::string& what, ProgressBar& bar) {
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
  CAIRN_RETURN_IF_ERROR(CopyOut(v, file.fd(), false, out, bar));
  CAIRN_RETURN_IF_ERROR(CopiedFromOneView(v));
  return file.Commit(true);
}

struct ExportArgs {
  std::string repo, name, out;
};

// One export on a fresh view of the store; `size` gets the vdisk's size. `raced`: the copy
// failed because a writer in another process changed the vdisk under it.
Status ExportOnce(const Globals& g, const ExportArgs& a, ProgressBar& bar, uint64_t& size,
                  bool& raced) {
  raced = false;
  CAIRN_ASSIGN_OR_RETURN(auto repo, OpenRepo(a.repo, false, g));
  CAIRN_ASSIGN_OR_RETURN(auto v, repo->OpenVdisk(a.name, false));
  size = v->size();
  Status s =
      a.out == "-" ? CopyOut(*v, 1, true, "standard output", bar) : ExportToFile(*v, a.out, bar);
  if (s.ok() && a.out == "-") s = CopiedFromOneView(*v);
  raced = s.code() == Code::kBusy;
  return s;
}

// A vdisk that a server in another process writes may change under the export (Busy: blocks
// its view named were released). A file is exported again from a fresh view, up to three
// times, so that what lands in FILE is the vdisk as one commit left it; standard output,
// already partly written, cannot be.
int CmdExport(const Globals& g, const ExportArgs& a) {
  const bool to_stdout = a.out == "-";
  constexpr int kAttempts = 3;
  Status s;
  uint64_t size = 0;
  bool raced = false;
  for (int attempt = 1; attempt <= kAttempts; attempt++) {
    ProgressBar bar("export " + a.name, !g.quiet && !to_stdout);
    s = ExportOnce(g, a, bar, size, raced);
    bar.Finish();
    if (!raced || to_stdout) break;
  }
  if (raced)
    return Fail(Status::Busy(s.message() +
                             (to_stdout ? "; standard output has a partial image"
                                        : "; " + a.out + " was not written (tried " +
                                              std::to_string(kAttempts) + " times)") +
                             ": stop the server, or serve the vdisk --readonly, and export again"));
  if (!s.ok()) return Fail(s);
  if (g.json && !to_stdout) PrintJson({{"name", a.name}, {"file", a.out}, {"size", size}});
  return 0;
}

RunFn DefineExport(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<ExportArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("NAME", a->name, "vdisk name")->required();
  cmd.add_option("FILE", a->out, "output raw image (sparse), or - for stdout")->required();
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
    for (const auto& i : *list) arr.push_back(InfoJson(i));
    PrintJson(arr);
    return 0;
  }
  for (const auto& i : *list)
    std::printf("%-32s %-11s %12s %6s  %-20s %s\n", i.name.c_str(),
                std::string(VdiskModeName(i.mode)).c_str(), HumanBytes(i.size).c_str(),
                HumanBytes(i.block_size).c_str(), Flags(i).c_str(), TemplateText(i).c_str());
  return 0;
}

RunFn DefineVdiskLs(CLI::App& cmd, Context& ctx) {
  auto repo = std::make_shared<std::string>();
  cmd.add_option("REPO", *repo)->required();
  return [repo, &g = ctx.globals] { return CmdLs(g, *repo); };
}

void PrintInfo(const VdiskInfo& i) {
  auto line = [](const char* k, const std::string& v) { std::printf("%-16s %s\n", k, v.c_str()); };
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
    PrintJson(InfoJson(*info));
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
    std::printf("removed vdisk %s\n", a.name.c_str());
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
  auto size = ParseSize(a.size);
  if (!size.ok()) return Fail(size.status());
  auto repo = OpenRepo(a.repo, true, g);
  if (!repo.ok()) return Fail(repo.status());
  Status s = (*repo)->ResizeVdisk(a.name, *size);
  if (!s.ok()) return Fail(s);
  // The size it has now: a size that is not a whole number of blocks is rounded up.
  auto info = (*repo)->VdiskStat(a.name, false);
  if (!info.ok()) return Fail(info.status());
  std::string what = "resized vdisk " + a.name + " to " + HumanBytes(info->size);
  if (info->size != *size)
    what += " (" + std::to_string(info->size) + " bytes: rounded up to whole " +
            std::to_string(info->block_size) + "-byte blocks)";
  return Done(g, **repo, a.name, what);
}

RunFn DefineResize(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<ResizeArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("NAME", a->name, "vdisk name")->required();
  cmd.add_option("SIZE", a->size, "the new size (it can only grow)")->required();
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
  cmd.add_option("SNAP", a->to, "the snapshot's name")->required();
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
  cmd.add_option("NAME", a->to, "the new vdisk")->required();
  return [a, &g = ctx.globals] { return CmdClone(g, *a); };
}

// ------------------------------------------------------------------ serve

struct ServeArgs {
  std::string repo, socket, bind, pidfile;
  std::vector<std::string> names;
  int port = 0;
  unsigned nbd_threads = 0;
  bool readonly = false, foreground = false;
};

// nbdkit's worker threads per connection when --nbd-threads is not given: the plugin is CPU
// bound, so more threads than about twice the cores only add context switches (nbdkit's
// default, 16, served 4 KiB random reads about 30% slower than 4 on a 2-core machine).
unsigned DefaultNbdThreads() {
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return static_cast<unsigned>(std::max<long>(4, 2 * std::max<long>(n, 1)));
}

// The plugin: $CAIRN_NBDKIT_PLUGIN, else cairn-nbdkit.so next to this binary, else installed.
Result<std::string> FindPlugin() {
  if (const char* env = std::getenv("CAIRN_NBDKIT_PLUGIN")) return std::string(env);
  std::vector<std::string> tried;
  char exe[PATH_MAX];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    std::string dir(exe, static_cast<size_t>(n));
    dir = dir.substr(0, dir.rfind('/') + 1);
    tried.push_back(dir + "cairn-nbdkit.so");
  }
  tried.push_back(std::string(CAIRN_PLUGIN_INSTALL_DIR) + "/cairn-nbdkit.so");
  for (const auto& p : tried)
    if (::access(p.c_str(), R_OK) == 0) return p;
  std::string list;
  for (const auto& p : tried) list += (list.empty() ? "" : ", ") + p;
  return Status::NotFound("the cairn nbdkit plugin is not installed (looked for " + list +
                          "; set CAIRN_NBDKIT_PLUGIN)");
}

Result<std::string> AbsolutePath(const std::string& p) {
  if (!p.empty() && p[0] == '/') return p;
  char cwd[PATH_MAX];
  if (!::getcwd(cwd, sizeof cwd)) return Status::FromErrno(errno, "getcwd");
  return std::string(cwd) + "/" + p;
}

// nbdkit leaves its Unix socket behind when it exits: a socket nobody listens on any more is
// removed, so that serving again works; a live one is left alone (nbdkit then reports it).
void RemoveStaleSocket(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return;
  struct sockaddr_un addr {};
  if (path.size() >= sizeof addr.sun_path) return;
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  bool refused = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 &&
                 errno == ECONNREFUSED;
  ::close(fd);
  if (refused) ::unlink(path.c_str());
}

// nbdkit's command line. Never the password: that goes through the environment.
Result<std::vector<std::string>> NbdkitArgs(const Globals& g, const ServeArgs& a) {
  if (a.socket.empty() == (a.port == 0)) return Status::Invalid("give --socket PATH or --port N");
  CAIRN_ASSIGN_OR_RETURN(std::string plugin, FindPlugin());
  std::string repo = a.repo;  // rados:POOL/PREFIX as it is; a local path made absolute
  if (!repo.starts_with("rados:")) {
    CAIRN_ASSIGN_OR_RETURN(repo, AbsolutePath(a.repo));
  }
  std::vector<std::string> args = {"nbdkit"};
  if (a.foreground) args.push_back("--foreground");
  args.insert(args.end(),
              {"--threads", std::to_string(a.nbd_threads ? a.nbd_threads : DefaultNbdThreads())});
  if (a.readonly) args.push_back("--readonly");
  if (!a.socket.empty()) {
    CAIRN_ASSIGN_OR_RETURN(std::string sock, AbsolutePath(a.socket));
    RemoveStaleSocket(sock);
    args.insert(args.end(), {"--unix", sock});
  } else {
    args.insert(args.end(), {"--port", std::to_string(a.port)});
    if (!a.bind.empty()) args.insert(args.end(), {"--ipaddr", a.bind});
  }
  if (!a.pidfile.empty()) {
    CAIRN_ASSIGN_OR_RETURN(std::string pid, AbsolutePath(a.pidfile));
    args.insert(args.end(), {"--pidfile", pid});
  }
  args.insert(args.end(), {plugin, "repo=" + repo});
  if (!g.user.empty()) args.push_back("user=" + g.user);
  if (a.readonly) args.push_back("readonly=true");
  if (g.threads) args.push_back("threads=" + std::to_string(g.threads));
  if (g.cache_size) args.push_back("cache-size=" + std::to_string(*g.cache_size));
  for (const auto& n : a.names) args.push_back("vdisk=" + n);
  return args;
}

void PrintServing(const Globals& g, const ServeArgs& a) {
  std::vector<std::string> uris;
  for (const auto& n : a.names)
    uris.push_back(a.socket.empty() ? "nbd://localhost:" + std::to_string(a.port) + "/" + n
                                    : "nbd+unix:///" + n + "?socket=" + a.socket);
  if (g.json) {
    PrintJson({{"repo", a.repo},
               {"exports", a.names},
               {"uris", uris},
               {"socket", a.socket},
               {"port", a.port},
               {"readonly", a.readonly}});
  } else if (!g.quiet) {
    std::printf("serving %s%s\n", a.socket.empty() ? "port " : "socket ",
                a.socket.empty() ? std::to_string(a.port).c_str() : a.socket.c_str());
    for (const auto& u : uris) std::printf("  %s\n", u.c_str());
    if (uris.empty()) std::printf("  every vdisk of the store, export name = vdisk name\n");
  }
  std::fflush(stdout);
}

// The start-up check the plugin makes in nbdkit's get_ready (ExportTable::Validate), made here
// first: a store that cannot be served (locked by another writer, a wrong password, a vdisk
// missing or with a damaged bitmap) is refused before cairn says it serves. The store is
// closed again, so that nbdkit takes its lock; the plugin checks once more.
Status CheckServable(const Globals& g, const ServeArgs& a, const std::string& password) {
  nbd::ServerConfig cfg;
  cfg.repo = a.repo;
  cfg.vdisks = a.names;
  cfg.user = g.user;
  cfg.readonly = a.readonly;
  cfg.threads = g.threads;
  cfg.cache_size = 0;  // nothing is read through it
  nbd::ExportTable t(cfg);
  CAIRN_RETURN_IF_ERROR(t.OpenRepository(password));
  return t.Validate();
}

int CmdServe(const Globals& g, const ServeArgs& a) {
  if (g.system && !g.user.empty())
    return Fail(Status::Invalid("--user and --system exclude each other"));
  auto args = NbdkitArgs(g, a);
  if (!args.ok()) return Fail(args.status());
  auto pw = RepoPassword(g, a.repo);  // prompts on a terminal
  if (!pw.ok()) return Fail(pw.status());
  Status servable = CheckServable(g, a, *pw);
  // The password read once (a --password-file may be a pipe that reads only once, a prompt
  // cannot be asked twice) goes to the plugin in its environment, never on its command line.
  if (servable.ok() && !pw->empty() && ::setenv("CAIRN_PASSWORD", pw->c_str(), 1) != 0)
    servable = Status::FromErrno(errno, "setenv");
  SecureWipe(*pw);
  if (!servable.ok()) return Fail(servable);
  PrintServing(g, a);
  std::vector<char*> argv;
  for (auto& s : *args) argv.push_back(s.data());
  argv.push_back(nullptr);
  const char* nbdkit = std::getenv("CAIRN_NBDKIT");
  ::execvp(nbdkit ? nbdkit : "nbdkit", argv.data());
  return Fail(Status::FromErrno(errno, "cannot run nbdkit (install the nbdkit package)"));
}

RunFn DefineServe(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<ServeArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("NAME", a->names, "vdisks to serve (default: every vdisk of the store)");
  cmd.add_option("--socket", a->socket, "serve on this Unix socket");
  cmd.add_option("--port", a->port, "serve on this TCP port");
  cmd.add_option("--bind", a->bind, "with --port: listen on this address only");
  cmd.add_option("--pidfile", a->pidfile, "write nbdkit's pid here once it serves");
  cmd.add_option("--nbd-threads", a->nbd_threads,
                 "nbdkit's threads per connection (default: twice the cores, at least 4)");
  cmd.add_flag("--readonly", a->readonly, "no writes; the store is opened read-only");
  cmd.add_flag("--foreground", a->foreground, "stay in the foreground (default: background)");
  return [a, &g = ctx.globals] { return CmdServe(g, *a); };
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
    {"serve", "serve vdisks over NBD (nbdkit and the cairn plugin)", DefineServe},
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
