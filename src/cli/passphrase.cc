// Passphrase sources: password file, environment, or an echo-less terminal prompt (termios).
#include "cli/passphrase.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

#include "cairn/secure.h"

namespace cairn::cli {
namespace {

constexpr size_t kMaxPassword = kMaxPasswordBytes;

void StripLineEnd(std::string& s) {
  size_t nl = s.find('\n');
  if (nl != std::string::npos) {
    SecureWipe(s.data() + nl, s.size() - nl);
    s.resize(nl);
  }
  if (!s.empty() && s.back() == '\r') s.pop_back();
}

// Whether `path` is the file standard input reads (/dev/stdin, or the file redirected to it).
bool IsStandardInput(const std::string& path) {
  struct stat p {
  }, in{};
  return ::stat(path.c_str(), &p) == 0 && ::fstat(0, &in) == 0 && p.st_dev == in.st_dev &&
         p.st_ino == in.st_ino;
}

Result<std::string> FromFile(const std::string& path) {
  // From standard input, one line is read from descriptor 0 itself, a byte at a time: what
  // follows the line stays for the command (`put -`, `vdisk import -`, a second password).
  // Opening /dev/stdin again would start a redirected file at its first byte (the password
  // then stored as data), and reading a pipe by blocks would take the data with the password.
  const bool from_stdin = IsStandardInput(path);
  int fd = from_stdin ? 0 : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "password file " + path);
  std::string s;
  char buf[512];
  const size_t block = from_stdin ? 1 : sizeof buf;
  for (;;) {
    ssize_t n = ::read(fd, buf, block);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      if (!from_stdin) ::close(fd);
      SecureWipe(buf, sizeof buf);
      SecureWipe(s);
      return Status::FromErrno(e, "password file " + path);
    }
    if (n == 0) break;
    s.append(buf, static_cast<size_t>(n));
    if (s.find('\n') != std::string::npos || s.size() > kMaxPassword) break;
  }
  if (!from_stdin) ::close(fd);
  SecureWipe(buf, sizeof buf);
  StripLineEnd(s);
  if (s.size() > kMaxPassword) {
    SecureWipe(s);
    return Status::Invalid("password file " + path + ": first line is longer than " +
                           std::to_string(kMaxPassword) + " bytes");
  }
  if (s.empty()) return Status::Invalid("password file " + path + ": empty password");
  return s;
}

// Restores the terminal's settings when it goes out of scope (also on early return).
class EchoOff {
 public:
  explicit EchoOff(int fd) : fd_(fd) {
    if (::tcgetattr(fd_, &saved_) == 0) {
      struct termios t = saved_;
      t.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL);
      t.c_lflag |= ICANON;
      active_ = ::tcsetattr(fd_, TCSAFLUSH, &t) == 0;
    }
  }
  ~EchoOff() {
    if (active_) ::tcsetattr(fd_, TCSAFLUSH, &saved_);
  }
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;

 private:
  int fd_;
  struct termios saved_ {};
  bool active_ = false;
};

void WriteAll(int fd, std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(fd, s.data(), s.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    s.remove_prefix(static_cast<size_t>(n));
  }
}

Result<std::string> PromptOnce(int fd, std::string_view prompt) {
  WriteAll(fd, prompt);
  std::string s;
  {
    EchoOff guard(fd);
    char c;
    for (;;) {
      ssize_t n = ::read(fd, &c, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 || c == '\n') break;
      if (s.size() < kMaxPassword + 1) s.push_back(c);
    }
    c = 0;
  }
  WriteAll(fd, "\n");
  if (!s.empty() && s.back() == '\r') s.pop_back();
  if (s.size() > kMaxPassword) {
    SecureWipe(s);
    return Status::Invalid("password is longer than " + std::to_string(kMaxPassword) + " bytes");
  }
  if (s.empty()) return Status::Invalid("empty password");
  return s;
}

}  // namespace

Result<std::string> ReadPassphrase(const std::string& password_file, bool confirm,
                                   std::string_view prompt, const char* env_var,
                                   std::string_view file_flag) {
  if (!password_file.empty()) return FromFile(password_file);
  if (const char* env = std::getenv(env_var); env != nullptr && env[0] != '\0') {
    std::string s(env);
    if (s.size() > kMaxPassword) {
      SecureWipe(s);
      return Status::Invalid(std::string(env_var) + " is longer than " +
                             std::to_string(kMaxPassword) + " bytes");
    }
    return s;
  }
  int fd = ::open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    return Status::Invalid("no password: set " + std::string(env_var) + ", use " +
                           std::string(file_flag) + ", or run on a terminal");
  }
  auto first = PromptOnce(fd, prompt);
  if (!first.ok() || !confirm) {
    ::close(fd);
    return first;
  }
  auto second = PromptOnce(fd, "confirm password: ");
  ::close(fd);
  if (!second.ok()) {
    SecureWipe(*first);
    return second.status();
  }
  bool same = *first == *second;
  SecureWipe(*second);
  if (!same) {
    SecureWipe(*first);
    return Status::Invalid("passwords do not match");
  }
  return first;
}

}  // namespace cairn::cli
