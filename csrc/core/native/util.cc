// Address arithmetic, names and files for the engine.
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "internal.h"

namespace podnet {
namespace native {

unsigned __int128 ToU128(const IpAddr& a) {
  unsigned __int128 v = 0;
  for (int i = 0; i < a.len(); i++) v = (v << 8) | a.b[i];
  return v;
}

IpAddr FromU128(int family, unsigned __int128 v) {
  IpAddr a;
  a.family = family;
  for (int i = a.len() - 1; i >= 0; i--) {
    a.b[i] = static_cast<uint8_t>(v & 0xff);
    v >>= 8;
  }
  return a;
}

static unsigned __int128 Mask(int family, int bits) {
  int width = family == AF_INET ? 32 : 128;
  if (bits == 0) return 0;
  unsigned __int128 all =
      width == 128 ? ~static_cast<unsigned __int128>(0) : ((static_cast<unsigned __int128>(1) << 32) - 1);
  return all & ~((static_cast<unsigned __int128>(1) << (width - bits)) - 1);
}

bool ParsePrefix(const std::string& s, Prefix* out) {
  auto slash = s.find('/');
  if (slash == std::string::npos) return false;
  Prefix p;
  if (!ParseIp(s.substr(0, slash), &p.base)) return false;
  const std::string bits = s.substr(slash + 1);
  if (bits.empty() || bits.size() > 3 || bits.find_first_not_of("0123456789") != std::string::npos) return false;
  p.bits = std::atoi(bits.c_str());
  if (p.bits > p.base.len() * 8) return false;
  if ((ToU128(p.base) & ~Mask(p.base.family, p.bits)) != 0) return false;
  *out = p;
  return true;
}

std::string FormatPrefix(const Prefix& p) { return FormatIp(p.base) + "/" + std::to_string(p.bits); }

bool Contains(const Prefix& p, const IpAddr& a) {
  if (a.family != p.base.family) return false;
  return (ToU128(a) & Mask(a.family, p.bits)) == ToU128(p.base);
}

bool Overlaps(const Prefix& a, const Prefix& b) {
  if (a.base.family != b.base.family) return false;
  int bits = a.bits < b.bits ? a.bits : b.bits;
  auto m = Mask(a.base.family, bits);
  return (ToU128(a.base) & m) == (ToU128(b.base) & m);
}

// Same rule as lib/validate.ts and the CNI spec for names and container ids.
bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > 253 || !isalnum(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s)
    if (!isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') return false;
  return true;
}

bool ValidIfname(const std::string& s) {
  if (s.empty() || s.size() > 15 || s == "." || s == "..") return false;
  for (char c : s)
    if (c == '/' || c == ':' || isspace(static_cast<unsigned char>(c))) return false;
  return true;
}

int Fail(Error* err, ErrorKind kind, int code, const std::string& message) {
  if (err) {
    err->kind = kind;
    err->code = code;
    err->message = message;
  }
  return code < 0 ? code : -EINVAL;
}

int MkdirP(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) == 0 || errno == EEXIST) return 0;
  if (errno != ENOENT) return -errno;
  auto slash = path.rfind('/');
  if (slash == std::string::npos || slash == 0) return -ENOENT;
  int rc = MkdirP(path.substr(0, slash), mode);
  if (rc < 0) return rc;
  return mkdir(path.c_str(), mode) == 0 || errno == EEXIST ? 0 : -errno;
}

static int WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    off += n;
  }
  return 0;
}

std::string TempName(const std::string& dir) {
  static std::atomic<unsigned> counter{0};
  return dir + "/.tmp-" + std::to_string(getpid()) + "-" + std::to_string(gettid()) + "-" + std::to_string(counter++);
}

int SweepDeadTemps(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (!d) return 0;
  int removed = 0;
  while (dirent* e = readdir(d)) {
    if (strncmp(e->d_name, ".tmp-", 5) != 0) continue;
    const long pid = strtol(e->d_name + 5, nullptr, 10);
    if (pid <= 0 || kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    if (unlink((dir + "/" + e->d_name).c_str()) == 0) removed++;
  }
  closedir(d);
  return removed;
}

int WriteFileAtomic(const std::string& path, const std::string& data) {
  auto slash = path.rfind('/');
  std::string tmp = TempName(path.substr(0, slash));
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return -errno;
  int rc = WriteAll(fd, data);
  close(fd);
  if (rc == 0 && rename(tmp.c_str(), path.c_str()) < 0) rc = -errno;
  if (rc < 0) unlink(tmp.c_str());
  return rc;
}

int ReadFile(const std::string& path, std::string* out) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  out->clear();
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = -errno;
      close(fd);
      return e;
    }
    if (n == 0) break;
    out->append(buf, n);
  }
  close(fd);
  return 0;
}

}  // namespace native
}  // namespace podnet
