// Progress bar rendering.
#include "cli/progress.h"

#include <unistd.h>

#include <cstdio>

#include "cairn/utf8.h"

namespace cairn::cli {

std::string HumanBytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    u++;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.2f %s" : "%.0f %s", v, units[u]);
  return buf;
}

ProgressBar::ProgressBar(std::string label, bool enabled)
    : label_(ShownInTerminal(label)), enabled_(enabled && ::isatty(2)) {
  start_ = last_ = std::chrono::steady_clock::now();
}

void ProgressBar::Update(uint64_t done, uint64_t total) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_ < std::chrono::milliseconds(100) && done != total) return;
  last_ = now;
  double secs = std::chrono::duration<double>(now - start_).count();
  double rate = secs > 0 ? done / secs : 0;
  std::string line = "\r" + label_ + " " + HumanBytes(done);
  if (total) {
    int pct = static_cast<int>(100.0 * double(done) / double(total));
    int width = 24, fill = pct * width / 100;
    line += " / " + HumanBytes(total) + " [" + std::string(fill, '#') +
            std::string(width - fill, '.') + "] " + std::to_string(pct) + "%";
    if (rate > 0 && done < total) {
      int eta = static_cast<int>(double(total - done) / rate);
      char b[32];
      std::snprintf(b, sizeof b, " ETA %d:%02d", eta / 60, eta % 60);
      line += b;
    }
  }
  line += " " + HumanBytes(static_cast<uint64_t>(rate)) + "/s\033[K";
  std::fputs(line.c_str(), stderr);
  drawn_ = true;
}

void ProgressBar::Finish() {
  if (drawn_) std::fputs("\r\033[K", stderr);
  drawn_ = false;
}

}  // namespace cairn::cli
