// cairn-nbdkit.so: an nbdkit plugin (API version 2, nbdkit-plugin(3)) serving cairn vdisks over
// NBD:  nbdkit PATH/cairn-nbdkit.so repo=REPO [vdisk=NAME]... [user=U] [readonly=true]
//       [password-file=FILE] [cache-size=SIZE] [threads=N]
// One export per vdisk (export name = vdisk name; list_exports lists them). The password comes
// from password-file= or CAIRN_PASSWORD, never from the command line. Docs: docs/vdisk.md.
//
// Life cycle: .get_ready checks, in a short-lived child process, that the store and every named
// vdisk open (so a damaged bitmap or a locked store stops the server with a message naming the
// vdisk before nbdkit forks into the background); .after_fork opens the store for real (the
// store starts threads, which must not exist across nbdkit's fork). Every connection to an
// export shares one Vdisk handle (ExportTable), hence multi-conn. .cleanup flushes every vdisk
// and logs its statistics and the hot cache's. Started by `cairn vdisk serve` in the background
// (CAIRN_SERVE_READY_FD set), the plugin skips the child check (serve made it moments before)
// and reports the outcome of .after_fork through that pipe: "R", or "E" and the message.
#define NBDKIT_API_VERSION 2
#define THREAD_MODEL NBDKIT_THREAD_MODEL_PARALLEL
#include <fcntl.h>
#include <malloc.h>
#include <nbdkit-plugin.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "cairn/repository.h"
#include "cairn/secure.h"
#include "cairn/utf8.h"
#include "cairn/version.h"
#include "nbd/export_table.h"

namespace cairn::nbd {
namespace {

constexpr uint32_t kMaxRequest = 32u << 20;       // advertised maximum block size, bytes
constexpr uint64_t kMaxExtentsSpan = 1ull << 30;  // block status answered per request, bytes

ServerConfig g_cfg;
int g_ready_fd = -1;  // CAIRN_SERVE_READY_FD: `cairn vdisk serve` waits on it
std::string g_password_file;
std::string g_password;
std::unique_ptr<ExportTable> g_table;

// One connection.
struct Handle {
  Export* e;
  bool readonly;  // nbdkit -r
};

// Logs `message` as an error with what a terminal or a log reader would act on escaped: export
// names come from clients, and the log is a terminal (--foreground) or syslog, where a newline
// would start a forged line (ShownInTerminal, newlines included).
void LogError(const std::string& message) { nbdkit_error("%s", ShownInTerminal(message).c_str()); }

int Fail(Export& e, const Status& s) {
  e.stats.errors++;
  LogError(MessageFor(e.name, s));
  nbdkit_set_error(RequestErrnoOf(s));
  return -1;
}

// --- configuration

int Config(const char* key, const char* value) {
  std::string k = key;
  if (k == "repo" && std::string_view(value).starts_with("rados:")) {
    g_cfg.repo = value;  // rados:POOL/PREFIX names no local path
  } else if (k == "repo") {
    char* abs = nbdkit_absolute_path(value);  // nbdkit changes directory to / when serving
    if (!abs) return -1;
    g_cfg.repo = abs;
    std::free(abs);
  } else if (k == "vdisk") {
    g_cfg.vdisks.emplace_back(value);
  } else if (k == "user") {
    g_cfg.user = value;
  } else if (k == "readonly") {
    int b = nbdkit_parse_bool(value);
    if (b < 0) return -1;
    g_cfg.readonly = b != 0;
  } else if (k == "password-file") {
    char* abs = nbdkit_absolute_path(value);
    if (!abs) return -1;
    g_password_file = abs;
    std::free(abs);
  } else if (k == "cache-size") {
    int64_t n = nbdkit_parse_size(value);
    if (n < 0) return -1;
    g_cfg.cache_size = static_cast<uint64_t>(n);
  } else if (k == "threads") {
    if (nbdkit_parse_unsigned("threads", value, &g_cfg.threads) < 0) return -1;
  } else if (k == "password") {
    nbdkit_error(
        "the password is never taken from the command line: use password-file=FILE "
        "or the CAIRN_PASSWORD environment variable");
    return -1;
  } else {
    LogError("unknown parameter '" + k + "' (see nbdkit --dump-plugin or docs/vdisk.md)");
    return -1;
  }
  return 0;
}

// The password: the first line of password-file=, else CAIRN_PASSWORD; "" for a plain
// repository.
int ReadPassword() {
  auto enc = Repository::Encrypted(g_cfg.repo);
  if (!enc.ok()) {
    LogError(enc.status().message());
    return -1;
  }
  if (!*enc) return 0;
  if (!g_password_file.empty()) {
    char* pw = nullptr;
    if (nbdkit_read_password(("+" + g_password_file).c_str(), &pw) < 0) return -1;
    g_password = pw;
    SecureWipe(pw, std::strlen(pw));
    std::free(pw);
    size_t nl = g_password.find('\n');
    if (nl != std::string::npos) {
      SecureWipe(g_password.data() + nl, g_password.size() - nl);
      g_password.resize(nl);
    }
    if (!g_password.empty() && g_password.back() == '\r') g_password.pop_back();
  } else if (const char* env = std::getenv("CAIRN_PASSWORD")) {
    g_password = env;
  }
  if (g_password.empty()) {
    LogError("repository " + g_cfg.repo +
             " is encrypted: give password-file=FILE or set CAIRN_PASSWORD");
    return -1;
  }
  return 0;
}

int ConfigComplete() {
  if (g_cfg.repo.empty()) {
    nbdkit_error("repo=PATH is required");
    return -1;
  }
  if (const char* fd = std::getenv("CAIRN_SERVE_READY_FD")) {
    g_ready_fd = std::atoi(fd);
    ::unsetenv("CAIRN_SERVE_READY_FD");
    if (g_ready_fd < 3 || ::fcntl(g_ready_fd, F_SETFD, FD_CLOEXEC) != 0) g_ready_fd = -1;
  }
  return ReadPassword();
}

// Writes `msg` whole to pipe `fd`, best effort (a reader that has gone ends it).
void WriteAll(int fd, const std::string& msg) {
  size_t done = 0;
  while (done < msg.size()) {
    ssize_t n = ::write(fd, msg.data() + done, msg.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<size_t>(n);
  }
}

// Tells `cairn vdisk serve` (when it started this server) whether it serves: "R", or "E" and
// `s`'s message. Once serving, standard error is let go (the caller's terminal or pipe must not
// stay held by a server in the background); nbdkit logs to syslog there.
void ReportReady(const Status& s) {
  if (g_ready_fd < 0) return;
  WriteAll(g_ready_fd, s.ok() ? "R" : "E" + s.message());
  ::close(g_ready_fd);
  g_ready_fd = -1;
  if (!s.ok()) return;
  int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (null >= 0) {
    ::dup2(null, STDERR_FILENO);
    ::close(null);
  }
}

// --- start-up

// Opens the store and every named vdisk in a child process and reports what went wrong: the
// child's threads die with it, nbdkit's own process stays single-threaded until it forks.
int GetReady() {
  if (g_ready_fd >= 0) return 0;  // `cairn vdisk serve` checked; .after_fork reports to it
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    nbdkit_error("pipe: %s", std::strerror(errno));
    return -1;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    nbdkit_error("fork: %s", std::strerror(errno));
    return -1;
  }
  if (pid == 0) {
    ::close(fds[0]);
    Status s;
    {
      ExportTable t(g_cfg);
      s = t.OpenRepository(g_password);
      if (s.ok()) s = t.Validate();
    }
    WriteAll(fds[1], s.message());
    ::_exit(s.ok() ? 0 : 1);
  }
  ::close(fds[1]);
  std::string msg;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(fds[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0) msg.append(buf, static_cast<size_t>(n));
  ::close(fds[0]);
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(st) && WEXITSTATUS(st) == 0) return 0;
  LogError("cannot serve " + g_cfg.repo + ": " + (msg.empty() ? "the start-up check died" : msg));
  return -1;
}

int AfterFork() {
  g_table = std::make_unique<ExportTable>(g_cfg);
  Status s = g_table->OpenRepository(g_password);
  SecureWipe(g_password);
  g_password.clear();
  for (size_t i = 0; s.ok() && i < g_cfg.vdisks.size(); ++i) {  // named exports: opened now
    auto e = g_table->Acquire(g_cfg.vdisks[i]);
    if (!e.ok()) s = e.status();
  }
  if (!s.ok()) {
    LogError(s.message());
    ReportReady(s);
    return -1;
  }
  ReportReady(s);
  return 0;
}

void Cleanup() {
  if (!g_table) return;
  for (const auto& line : g_table->Close())
    std::fprintf(stderr, "cairn-nbdkit: %s\n", ShownInTerminal(line).c_str());
  g_table.reset();
}

// Before any thread exists: at most two malloc arenas. With one arena per thread (glibc's
// default, up to 8 per core), nbdkit's and the store's threads each kept tens of MiB of freed
// block buffers: a 100 GiB vdisk under random writes peaked at about 140 MiB instead of 110.
void Load() { mallopt(M_ARENA_MAX, 2); }

void Unload() {
  Cleanup();
  SecureWipe(g_password);
}

// --- exports and connections

int ListExports(int, int, struct nbdkit_exports* exports) {
  if (!g_table) return 0;
  auto list = g_table->List();
  if (!list.ok()) {
    LogError(list.status().message());
    return -1;
  }
  for (const auto& [name, desc] : *list)
    if (nbdkit_add_export(exports, name.c_str(), desc.c_str()) < 0) return -1;
  return 0;
}

const char* DefaultExport(int, int) {
  if (!g_table) return "";
  auto r = g_table->Resolve("");
  return r.ok() ? nbdkit_strdup_intern(r->c_str()) : "";
}

void* Open(int readonly) {
  const char* name = nbdkit_export_name();
  if (!g_table || !name) {
    nbdkit_error("the store is not open");
    return nullptr;
  }
  auto e = g_table->Acquire(name);
  if (!e.ok()) {
    LogError(e.status().message());
    nbdkit_set_error(ErrnoOf(e.status()));
    return nullptr;
  }
  (*e)->stats.connections++;
  return new Handle{*e, readonly != 0};
}

void Close(void* h) {
  auto* c = static_cast<Handle*>(h);
  if (c->e->writable) {
    Status s = c->e->disk->Flush();
    if (!s.ok()) LogError("flush on close: " + MessageFor(c->e->name, s));
  }
  nbdkit_debug("%s", ShownInTerminal(StatsLine(*c->e)).c_str());
  delete c;
}

Export& Of(void* h) { return *static_cast<Handle*>(h)->e; }

const char* ExportDescription(void* h) {
  return nbdkit_strdup_intern(("cairn vdisk '" + Of(h).name + "'").c_str());
}

int64_t GetSize(void* h) { return static_cast<int64_t>(Of(h).disk->size()); }

int BlockSize(void* h, uint32_t* minimum, uint32_t* preferred, uint32_t* maximum) {
  *minimum = 1;  // unaligned requests are read-modify-write
  *preferred = Of(h).disk->block_size();
  *maximum = kMaxRequest;
  return 0;
}

int CanWrite(void* h) { return Of(h).writable && !static_cast<Handle*>(h)->readonly; }
int CanTrue(void*) { return 1; }
int CanFalse(void*) { return 0; }
int CanFua(void*) { return NBDKIT_FUA_NATIVE; }

// --- data

int Pread(void* h, void* buf, uint32_t count, uint64_t offset, uint32_t) {
  Export& e = Of(h);
  e.stats.reads++;
  e.stats.bytes_read += count;
  Status s = e.disk->Read(offset, {static_cast<uint8_t*>(buf), count});
  return s.ok() ? 0 : Fail(e, s);
}

int Pwrite(void* h, const void* buf, uint32_t count, uint64_t offset, uint32_t flags) {
  Export& e = Of(h);
  const bool fua = flags & NBDKIT_FLAG_FUA;
  e.stats.writes++;
  e.stats.bytes_written += count;
  if (fua) e.stats.fua++;
  Status s = e.disk->Write(offset, {static_cast<const uint8_t*>(buf), count}, fua);
  return s.ok() ? 0 : Fail(e, s);
}

int Flush(void* h, uint32_t) {
  Export& e = Of(h);
  e.stats.flushes++;
  Status s = e.disk->Flush();
  return s.ok() ? 0 : Fail(e, s);
}

int Trim(void* h, uint32_t count, uint64_t offset, uint32_t flags) {
  Export& e = Of(h);
  e.stats.trims++;
  e.stats.bytes_trimmed += count;
  Status s = e.disk->Trim(offset, count, flags & NBDKIT_FLAG_FUA);
  return s.ok() ? 0 : Fail(e, s);
}

// Whole blocks become holes without writing anything; the partial blocks at the ends are
// written with zeros. A fast zero that covers no whole block would be no faster than a write,
// so it is refused up front (ENOTSUP), as nbdkit-plugin(3) asks.
int Zero(void* h, uint32_t count, uint64_t offset, uint32_t flags) {
  Export& e = Of(h);
  const uint64_t bs = e.disk->block_size();
  if ((flags & NBDKIT_FLAG_FAST_ZERO) && (offset + bs - 1) / bs >= (offset + count) / bs) {
    nbdkit_set_error(ENOTSUP);
    return -1;
  }
  e.stats.zeros++;
  e.stats.bytes_zeroed += count;
  Status s = e.disk->Zero(offset, count, flags & NBDKIT_FLAG_FUA);
  return s.ok() ? 0 : Fail(e, s);
}

int Extents(void* h, uint32_t count, uint64_t offset, uint32_t, struct nbdkit_extents* out) {
  Export& e = Of(h);
  e.stats.extents++;
  uint64_t len = std::min<uint64_t>(count, kMaxExtentsSpan);
  bool failed = false;
  Status s = e.disk->Extents(offset, len, [&](uint64_t off, uint64_t n, VdiskExtent t) {
    uint32_t type = t == VdiskExtent::kHole ? (NBDKIT_EXTENT_HOLE | NBDKIT_EXTENT_ZERO) : 0;
    if (!failed && nbdkit_add_extent(out, off, n, type) < 0) failed = true;
  });
  if (!s.ok()) return Fail(e, s);
  return failed ? -1 : 0;
}

const char kConfigHelp[] =
    "repo=PATH            (required) the cairn repository\n"
    "vdisk=NAME           a vdisk to serve (repeatable; default: every vdisk of the store)\n"
    "user=NAME            serve from this user's store (default: the system store)\n"
    "readonly=true        open the store read-only (no writer lock, no writes)\n"
    "password-file=FILE   the repository password (else CAIRN_PASSWORD)\n"
    "cache-size=SIZE      RAM for the hot cache of verified blocks (default: the\n"
    "                     repository config's cache_size, else 16M; 0 = off)\n"
    "threads=N            the store's worker threads";

struct nbdkit_plugin MakePlugin() {
  struct nbdkit_plugin p {};
  p.name = "cairn";
  p.longname = "cairn virtual disks";
  p.version = kVersionString;
  p.description = "Serves the virtual disks of a cairn repository";
  p.load = Load;
  p.unload = Unload;
  p.config = Config;
  p.config_complete = ConfigComplete;
  p.config_help = kConfigHelp;
  p.magic_config_key = "repo";
  p.get_ready = GetReady;
  p.after_fork = AfterFork;
  p.cleanup = Cleanup;
  p.list_exports = ListExports;
  p.default_export = DefaultExport;
  p.export_description = ExportDescription;
  p.open = Open;
  p.close = Close;
  p.get_size = GetSize;
  p.block_size = BlockSize;
  p.can_write = CanWrite;
  p.can_flush = CanTrue;
  p.is_rotational = CanFalse;
  p.can_trim = CanWrite;
  p.can_zero = CanWrite;
  p.can_fast_zero = CanTrue;
  p.can_fua = CanFua;
  p.can_multi_conn = CanTrue;  // one shared handle per export: see export_table.h
  p.can_extents = CanTrue;
  p.pread = Pread;
  p.pwrite = Pwrite;
  p.flush = Flush;
  p.trim = Trim;
  p.zero = Zero;
  p.extents = Extents;
  return p;
}

struct nbdkit_plugin plugin = MakePlugin();

}  // namespace
}  // namespace cairn::nbd

using cairn::nbd::plugin;
NBDKIT_REGISTER_PLUGIN(plugin)
