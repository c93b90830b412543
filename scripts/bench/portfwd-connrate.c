/* Short-connection benchmark for scripts/bench/portfwd.
 *   server PORT          accept, write one byte, close (forever)
 *   client HOST PORT SEC connect, read to EOF, close, for SEC seconds; prints connections/s */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char** argv) {
  if (argc == 3 && !strcmp(argv[1], "server")) {
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2]))};
    if (bind(s, (struct sockaddr*)&a, sizeof a) || listen(s, 1024)) {
      perror("listen");
      return 1;
    }
    for (;;) {
      int c = accept(s, NULL, NULL);
      if (c < 0) continue;
      if (write(c, "x", 1) < 0) {
      }
      close(c);
    }
  }
  if (argc != 5 || strcmp(argv[1], "client")) {
    fprintf(stderr, "usage: server PORT | client HOST PORT SEC\n");
    return 2;
  }
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[3]))};
  inet_pton(AF_INET, argv[2], &a.sin_addr);
  double end = now() + atof(argv[4]), t0 = now();
  long n = 0, fails = 0;
  char buf[16];
  while (now() < end) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr*)&a, sizeof a) == 0) {
      ssize_t r, got = 0;
      while ((r = read(c, buf, sizeof buf)) > 0) got += r;
      if (got == 1)
        n++;
      else
        fails++;
    } else
      fails++;
    close(c);
  }
  printf("%.0f %ld\n", n / (now() - t0), fails);
  return 0;
}
