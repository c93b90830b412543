// The floor for a persistent namespace: unshare + bind mount + umount + unlink,
// N cycles in one process. Usage: netns-raw DIR N ; prints ms per cycle.
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char** argv) {
  if (argc != 3) return 2;
  int n = atoi(argv[2]);
  int host = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  char path[4096];
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  for (int i = 0; i < n; i++) {
    snprintf(path, sizeof path, "%s/pn-bench-raw-%d", argv[1], i);
    int fd = open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
    if (fd < 0) {
      perror("open");
      return 1;
    }
    close(fd);
    if (unshare(CLONE_NEWNET) || mount("/proc/self/ns/net", path, "none", MS_BIND, NULL) || setns(host, CLONE_NEWNET) ||
        umount2(path, 0) || unlink(path)) {
      perror("cycle");
      return 1;
    }
  }
  clock_gettime(CLOCK_MONOTONIC, &b);
  printf("%.4f\n", ((b.tv_sec - a.tv_sec) * 1e3 + (b.tv_nsec - a.tv_nsec) / 1e6) / n);
  return 0;
}
