// `cairn vdisk serve`: serves vdisks over NBD by running nbdkit with the cairn plugin
// (src/nbd/plugin.cc). cairn opens the listening sockets itself and hands them to nbdkit by
// socket activation (LISTEN_PID / LISTEN_FDS, nbdkit-service(1)), so that everything that can
// stop a server (an address in use, a socket path in a missing directory, a locked store, a
// wrong password, a damaged vdisk) is reported, with a non-zero exit, before it says "serving".
// In the background (the default) it starts nbdkit and returns once the plugin has opened the
// store for real and says so through a pipe (CAIRN_SERVE_READY_FD).
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cairn/secure.h"
#include "cli/common.h"
#include "nbd/export_table.h"

namespace cairn::cli {
namespace {

// How long a server started in the background may take to open its store before serve gives up
// (and stops it): a store on an unreachable cluster fails sooner than this on its own.
constexpr std::chrono::seconds kReadyTimeout{120};

// The signal (SIGINT, SIGTERM, SIGHUP) that interrupted serve before it served; 0 if none.
volatile sig_atomic_t g_interrupted = 0;

void OnInterrupt(int sig) { g_interrupted = sig; }

// From here until serve returns or execs, an interrupt (Ctrl-C) is noted rather than fatal, so
// that serve stops what it started (the socket file it made, a server not yet serving) and says
// so. No SA_RESTART: a wait (poll) returns at once.
void CatchInterrupts() {
  struct sigaction sa {};
  sa.sa_handler = OnInterrupt;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
}

Status Interrupted() {
  return Status::Busy(std::string("interrupted (") + ::strsignal(g_interrupted) +
                      "): nothing is served");
}

struct ServeArgs {
  std::string repo, socket, bind, pidfile;
  std::vector<std::string> names;
  int port = 0;
  unsigned nbd_threads = 0;
  bool readonly = false, foreground = false;
};

// A listening socket, closed when dropped; the file of a Unix socket this process bound is
// removed with it, unless Keep() was called (a server serves on it).
class Listener {
 public:
  explicit Listener(int fd) : fd_(fd) {}
  Listener(Listener&& o) noexcept
      : fd_(std::exchange(o.fd_, -1)), path_(std::exchange(o.path_, "")) {}
  Listener& operator=(Listener&&) = delete;
  ~Listener() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  int fd() const { return fd_; }
  void RemoveOnDrop(std::string path) { path_ = std::move(path); }
  void Keep() { path_.clear(); }

 private:
  int fd_;
  std::string path_;
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

std::string DirOf(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

// --pidfile: nbdkit writes it once it serves, so a directory it cannot write in would stop the
// server after cairn had returned. Checked first instead.
Status CheckPidfile(const std::string& path) {
  std::string dir = DirOf(path);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0)
    return Status::FromErrno(errno, "--pidfile " + path + ": directory " + dir);
  if (!S_ISDIR(st.st_mode))
    return Status::Invalid("--pidfile " + path + ": " + dir + " is not a directory");
  if (::access(dir.c_str(), W_OK) != 0)
    return Status::FromErrno(errno, "--pidfile " + path + ": cannot write in " + dir);
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    return Status::Invalid("--pidfile " + path + " exists and is not a regular file");
  return Status::Ok();
}

// Connects to Unix socket `addr`: 0 when a server accepted, else the errno (ECONNREFUSED: no
// server listens there any more).
int ConnectErrno(const sockaddr_un& addr) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno;
  int e = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 ? 0 : errno;
  ::close(fd);
  return e;
}

// Binds and listens on Unix socket `path`. A socket left by a server that has gone (nbdkit does
// not remove it when it exits, nor when it is killed) is replaced; a live one, or any other
// kind of file, is refused.
Result<std::vector<Listener>> ListenUnix(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof addr.sun_path)
    return Status::Invalid("--socket " + path + ": the path is longer than " +
                           std::to_string(sizeof addr.sun_path - 1) +
                           " bytes, the most a Unix socket can have");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return Status::Invalid("--socket " + path +
                             ": a file that is not a socket is in the way (nothing was "
                             "changed; remove it or give another path)");
    int e = ConnectErrno(addr);
    if (e == 0) return Status::Busy("--socket " + path + ": another server is listening there");
    // Only a refused connection says nobody listens: a socket this user may not connect to
    // (EACCES) may well be another user's live server.
    if (e != ECONNREFUSED)
      return Status::FromErrno(e, "--socket " + path +
                                      ": a socket is there, and whether a server listens on it "
                                      "cannot be told (nothing was changed)");
    ::unlink(path.c_str());  // stale
  }
  Listener l(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (l.fd() < 0) return Status::FromErrno(errno, "socket");
  if (::bind(l.fd(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0)
    return Status::FromErrno(errno, "--socket " + path + ": cannot create the socket");
  l.RemoveOnDrop(path);  // the file is this process's now
  if (::listen(l.fd(), SOMAXCONN) != 0) return Status::FromErrno(errno, "listen on " + path);
  std::vector<Listener> out;
  out.push_back(std::move(l));
  return out;
}

// Binds and listens on TCP `port` of every address `bind` resolves to (every local address when
// empty), IPv4 and IPv6 apart, as nbdkit does. An address family the host lacks is skipped.
Result<std::vector<Listener>> ListenTcp(const std::string& bind, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_ADDRCONFIG;
  addrinfo* res = nullptr;
  std::string service = std::to_string(port);
  int rc = ::getaddrinfo(bind.empty() ? nullptr : bind.c_str(), service.c_str(), &hints, &res);
  if (rc != 0)
    return Status::Invalid("--bind " + (bind.empty() ? std::string("(any)") : bind) + ": " +
                           ::gai_strerror(rc));
  std::vector<Listener> out;
  Status err;
  for (addrinfo* a = res; a; a = a->ai_next) {
    Listener l(::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol));
    if (l.fd() < 0) {
      if (errno == EAFNOSUPPORT) continue;
      err = Status::FromErrno(errno, "socket");
      break;
    }
    int one = 1;
    ::setsockopt(l.fd(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (a->ai_family == AF_INET6) ::setsockopt(l.fd(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (::bind(l.fd(), a->ai_addr, a->ai_addrlen) != 0 || ::listen(l.fd(), SOMAXCONN) != 0) {
      if (errno == EADDRNOTAVAIL && a->ai_family == AF_INET6) continue;
      err = Status::FromErrno(errno, "--port " + service + ": cannot listen" +
                                         (errno == EADDRINUSE ? " (another server has it)" : ""));
      break;
    }
    out.push_back(std::move(l));
  }
  ::freeaddrinfo(res);
  if (!err.ok()) return err;
  if (out.empty()) return Status::Invalid("--port " + service + ": no address to listen on");
  return out;
}

// nbdkit's command line. Never the password: that goes through the environment. The sockets
// are passed by socket activation, so neither --unix nor --port is given.
Result<std::vector<std::string>> NbdkitArgs(const Globals& g, const ServeArgs& a) {
  CAIRN_ASSIGN_OR_RETURN(std::string plugin, FindPlugin());
  std::string repo = a.repo;  // rados:POOL/PREFIX as it is; a local path made absolute
  if (!repo.starts_with("rados:")) {
    CAIRN_ASSIGN_OR_RETURN(repo, AbsolutePath(a.repo));
  }
  std::vector<std::string> args = {"nbdkit"};
  // In the background nbdkit's messages go to syslog, as nbdkit does when it forks itself.
  if (!a.foreground) args.push_back("--log=syslog");
  args.insert(args.end(),
              {"--threads", std::to_string(a.nbd_threads ? a.nbd_threads : DefaultNbdThreads())});
  if (a.readonly) args.push_back("--readonly");
  if (!a.pidfile.empty()) {
    CAIRN_ASSIGN_OR_RETURN(std::string pid, AbsolutePath(a.pidfile));
    CAIRN_RETURN_IF_ERROR(CheckPidfile(pid));
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

Result<std::vector<Listener>> Listen(const ServeArgs& a) {
  if (a.socket.empty() == (a.port == 0)) return Status::Invalid("give --socket PATH or --port N");
  if (!a.socket.empty() && !a.bind.empty())
    return Status::Invalid("--bind goes with --port, not with --socket");
  if (a.port != 0) return ListenTcp(a.bind, a.port);
  CAIRN_ASSIGN_OR_RETURN(std::string sock, AbsolutePath(a.socket));
  return ListenUnix(sock);
}

// `s` percent-encoded for a URI (RFC 3986 section 2.1): every byte but the unreserved ones and
// those in `keep`.
std::string PercentEncode(const std::string& s, std::string_view keep) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' ||
        keep.find(static_cast<char>(c)) != std::string_view::npos) {
      out += static_cast<char>(c);
    } else {
      out += {'%', kHex[c >> 4], kHex[c & 15]};
    }
  }
  return out;
}

// The NBD URI of export `name` (the NBD URI specification, doc/uri.md of the NBD project): the
// export name and the socket path (made absolute) percent-encoded; the host --bind names (IPv6 in
// brackets), or localhost when it is a wildcard or not given.
std::string ExportUri(const ServeArgs& a, const std::string& name) {
  const std::string export_part = "/" + PercentEncode(name, "");
  if (!a.socket.empty()) {
    auto abs = AbsolutePath(a.socket);  // the URI works from any directory
    return "nbd+unix://" + export_part +
           "?socket=" + PercentEncode(abs.ok() ? *abs : a.socket, "/");
  }
  std::string host = a.bind;
  if (host.empty() || host == "0.0.0.0" || host == "::") host = "localhost";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "nbd://" + host + ":" + std::to_string(a.port) + export_part;
}

void PrintServing(const Globals& g, const ServeArgs& a, pid_t pid) {
  std::vector<std::string> uris;
  for (const auto& n : a.names) uris.push_back(ExportUri(a, n));
  if (g.json) {
    PrintJson({{"repo", a.repo},
               {"exports", a.names},
               {"uris", uris},
               {"socket", a.socket},
               {"port", a.port},
               {"readonly", a.readonly},
               {"pid", pid}});
  } else if (!g.quiet) {
    std::printf(
        "serving %s%s (nbdkit pid %d)\n", a.socket.empty() ? "port " : "socket ",
        a.socket.empty() ? std::to_string(a.port).c_str() : ShownInTerminal(a.socket).c_str(),
        static_cast<int>(pid));
    for (const auto& u : uris) std::printf("  %s\n", ShownInTerminal(u).c_str());
    if (uris.empty()) std::printf("  every vdisk of the store, export name = vdisk name\n");
  }
  std::fflush(stdout);
}

// The start-up check the plugin makes (ExportTable::Validate), made here first: a store that
// cannot be served (locked by another writer, a wrong password, a vdisk missing or with a
// damaged bitmap) is refused before cairn says it serves. The store is closed again, so that
// nbdkit takes its lock.
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

// In the process that becomes nbdkit: the sockets on descriptors 3, 4, ... (clearing
// close-on-exec) and LISTEN_PID / LISTEN_FDS naming this process, then exec. Returns only when
// the exec failed.
Status ExecNbdkit(std::vector<std::string>& args, const std::vector<Listener>& socks) {
  std::vector<int> high;
  for (const auto& s : socks) high.push_back(::fcntl(s.fd(), F_DUPFD, 100));
  for (size_t i = 0; i < high.size(); ++i) {
    if (high[i] < 0 || ::dup2(high[i], 3 + static_cast<int>(i)) < 0)
      return Status::FromErrno(errno, "passing the socket to nbdkit");
    ::close(high[i]);
  }
  ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
  ::setenv("LISTEN_FDS", std::to_string(socks.size()).c_str(), 1);
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  const char* nbdkit = std::getenv("CAIRN_NBDKIT");
  ::signal(SIGPIPE, SIG_DFL);  // cairn ignores it; nbdkit sets its own
  ::execvp(nbdkit ? nbdkit : "nbdkit", argv.data());
  return Status::FromErrno(errno, "cannot run nbdkit (install the nbdkit package)");
}

// The server's first word on the ready pipe, "P<pid>\n": once it is all in `msg`, `pid` gets it
// and it leaves `msg`.
void TakePid(std::string& msg, pid_t& pid) {
  size_t nl = msg.find('\n');
  if (pid != 0 || !msg.starts_with("P") || nl == std::string::npos) return;
  pid = static_cast<pid_t>(std::atol(msg.c_str() + 1));
  msg.erase(0, nl + 1);
}

// Serve was interrupted while the server started: it is stopped (SIGTERM; its pid read first if
// it has not been yet), and serve waits, a few seconds at most, until it has gone (end of file
// on `ready`, which the server holds).
Status StopStarting(int ready, pid_t pid, std::string& msg) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  bool signalled = false;
  for (;;) {
    TakePid(msg, pid);
    if (pid > 0 && !signalled) {
      ::kill(pid, SIGTERM);
      signalled = true;
    }
    if (std::chrono::steady_clock::now() >= until) break;
    pollfd p{ready, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char buf[256];
    ssize_t n = ::read(ready, buf, sizeof buf);
    if (n == 0) break;  // the server has gone
    if (n > 0) msg.append(buf, static_cast<size_t>(n));
  }
  Status s = Interrupted();
  if (pid > 0) s = s.WithContext("the server (nbdkit pid " + std::to_string(pid) + ") was stopped");
  return s;
}

// Waits for what the server says on `ready`: "P<pid>\n" before nbdkit starts, then the plugin's
// "R" (it has opened the store and serves) or "E" and why it could not. End of file before "R"
// means nbdkit failed on its own (its messages went to standard error). Returns nbdkit's pid.
Result<pid_t> AwaitReady(int ready) {
  std::string msg;
  pid_t pid = 0;
  const auto deadline = std::chrono::steady_clock::now() + kReadyTimeout;
  for (;;) {
    TakePid(msg, pid);
    if (g_interrupted) return StopStarting(ready, pid, msg);
    if (pid > 0 && msg == "R") return pid;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{ready, POLLIN, 0};
    int rc = ::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    if (rc < 0 && errno == EINTR) continue;
    if (rc == 0) {
      if (pid > 0) ::kill(pid, SIGTERM);
      return Status::Busy("nbdkit (pid " + std::to_string(pid) + ") did not start serving within " +
                          std::to_string(kReadyTimeout.count()) + " s; it was stopped");
    }
    char buf[4096];
    ssize_t n = rc < 0 ? -1 : ::read(ready, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // end of file: the plugin said all it will, or nbdkit has gone
    msg.append(buf, static_cast<size_t>(n));
  }
  if (pid > 0 && msg.starts_with("E")) return Status::IOError(msg.substr(1));
  return Status::IOError(
      "nbdkit exited before it served (its messages are on standard error above, or in the "
      "system log: journalctl -t nbdkit)");
}

// In the background process that becomes nbdkit: says its pid on `ready`, detaches (standard
// input and output on /dev/null, directory /) and execs nbdkit. Never returns.
[[noreturn]] void BecomeServer(std::vector<std::string>& args, const std::vector<Listener>& socks,
                               int ready_fd) {
  int null = ::open("/dev/null", O_RDWR);
  if (null >= 0) {
    ::dup2(null, 0);
    ::dup2(null, 1);
  }
  int ready = ::fcntl(ready_fd, F_DUPFD, 100);  // kept across exec: no close-on-exec
  std::string hello = "P" + std::to_string(::getpid()) + "\n";
  Status s;
  if (ready < 0 || ::write(ready, hello.data(), hello.size()) != static_cast<ssize_t>(hello.size()))
    s = Status::FromErrno(errno, "the pipe to cairn vdisk serve");
  else if (::chdir("/") != 0)
    s = Status::FromErrno(errno, "chdir /");
  else if (::setenv("CAIRN_SERVE_READY_FD", std::to_string(ready).c_str(), 1) != 0)
    s = Status::FromErrno(errno, "setenv");
  else
    s = ExecNbdkit(args, socks);
  std::fprintf(stderr, "cairn: error: %s\n", ShownInTerminal(s.message(), true).c_str());
  ::_exit(127);
}

// The default: nbdkit runs in the background, in a session of its own, and serve returns once
// the plugin says it serves. Its standard error stays until then (so that start-up errors reach
// the caller); the plugin then lets it go. nbdkit ties itself to its parent's exit
// (PR_SET_PDEATHSIG, seen with Debian's 1.32 in the foreground that socket activation implies),
// so it is started by a short-lived intermediate process and execs only once the orphan has
// been handed to init or the subreaper.
int ServeInBackground(const Globals& g, const ServeArgs& a, std::vector<std::string>& args,
                      std::vector<Listener>& socks) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Fail(Status::FromErrno(errno, "pipe"));
  std::fflush(nullptr);
  pid_t mid = ::fork();
  if (mid < 0) return Fail(Status::FromErrno(errno, "fork"));
  if (mid == 0) {
    ::close(fds[0]);
    ::setsid();
    pid_t me = ::getpid();
    pid_t pid = ::fork();
    if (pid != 0) ::_exit(pid < 0 ? 1 : 0);
    while (::getppid() == me) ::usleep(1000);
    BecomeServer(args, socks, fds[1]);
  }
  ::close(fds[1]);
  while (::waitpid(mid, nullptr, 0) < 0 && errno == EINTR) {
  }
  auto pid = AwaitReady(fds[0]);
  ::close(fds[0]);
  if (!pid.ok()) return Fail(pid.status());
  PrintServing(g, a, *pid);
  for (auto& l : socks) l.Keep();
  return 0;
}

int CmdServe(const Globals& g, const ServeArgs& a) {
  if (g.system && !g.user.empty())
    return Fail(Status::Invalid("--user and --system exclude each other"));
  auto args = NbdkitArgs(g, a);
  if (!args.ok()) return Fail(args.status());
  CatchInterrupts();
  auto socks = Listen(a);
  if (!socks.ok()) return Fail(socks.status());
  auto pw = RepoPassword(g, a.repo);  // prompts on a terminal
  if (!pw.ok()) return Fail(pw.status());
  Status servable = CheckServable(g, a, *pw);
  // The password read once (a --password-file may be a pipe that reads only once, a prompt
  // cannot be asked twice) goes to the plugin in its environment, never on its command line.
  if (servable.ok() && !pw->empty() && ::setenv("CAIRN_PASSWORD", pw->c_str(), 1) != 0)
    servable = Status::FromErrno(errno, "setenv");
  SecureWipe(*pw);
  if (servable.ok() && g_interrupted) servable = Interrupted();
  if (!servable.ok()) return Fail(servable);
  if (!a.foreground) return ServeInBackground(g, a, *args, *socks);
  PrintServing(g, a, ::getpid());
  return Fail(ExecNbdkit(*args, *socks));
}

}  // namespace

RunFn DefineVdiskServe(CLI::App& cmd, Context& ctx) {
  auto a = std::make_shared<ServeArgs>();
  cmd.add_option("REPO", a->repo)->required();
  cmd.add_option("NAME", a->names, "vdisks to serve (default: every vdisk of the store)");
  cmd.add_option("--socket", a->socket, "serve on this Unix socket");
  cmd.add_option("--port", a->port, "serve on this TCP port")->check(CLI::Range(1, 65535));
  cmd.add_option("--bind", a->bind, "with --port: listen on this address only");
  cmd.add_option("--pidfile", a->pidfile, "write nbdkit's pid here once it serves");
  cmd.add_option("--nbd-threads", a->nbd_threads,
                 "nbdkit's threads per connection, 1 to 1024 (default: twice the cores, at "
                 "least 4)")
      ->check(CLI::Range(1u, 1024u));
  cmd.add_flag("--readonly", a->readonly, "no writes; the store is opened read-only");
  cmd.add_flag("--foreground", a->foreground,
               "run nbdkit in this process, in the foreground (default: in the background; "
               "serve returns once it serves)");
  return [a, &g = ctx.globals] {
    std::vector<std::string> names;  // each vdisk once, in the order given
    for (const auto& n : a->names)
      if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    a->names = std::move(names);
    return CmdServe(g, *a);
  };
}

}  // namespace cairn::cli
