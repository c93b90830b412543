/* The floor for a userspace TCP relay, for scripts/bench/portfwd: the plainest
 * setns + splice forwarder (no event loop, no batching, no limits).
 *
 *   portfwd-splice NETNS TARGET_IP LPORT:CPORT [LPORT:CPORT ...]
 *
 * Listens on 127.0.0.1:LPORT; per accepted connection a thread joins NETNS,
 * makes the upstream socket there, connects (blocking) to TARGET_IP:CPORT and
 * starts a second thread: each thread moves one direction with blocking
 * splice() through its own pipe (PODNET_SPLICE_PIPE bytes, default 1 MiB) and
 * passes EOF on as shutdown(SHUT_WR). The last thread out closes both sockets.
 * The upstream socket uses reno, as podnet's forwarder does on legs inside the
 * host (no per-segment pacing when the host default is bbr); PODNET_SPLICE_CC
 * names another ("" keeps the system default).
 * Runs until killed. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int netns_fd;
static struct in_addr target;
static int pipe_size = 1 << 20;
static const char* cc = "reno";

struct conn {
  int client, upstream, cport;
  atomic_int refs;
};

struct dir {
  struct conn* c;
  int src, dst;
};

static void put(struct conn* c) {
  if (atomic_fetch_sub(&c->refs, 1) == 1) {
    close(c->client);
    close(c->upstream);
    free(c);
  }
}

static void pump(int src, int dst) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return;
  fcntl(p[1], F_SETPIPE_SZ, pipe_size); /* best effort */
  for (;;) {
    ssize_t n = splice(src, NULL, p[1], NULL, pipe_size, SPLICE_F_MOVE);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    while (n > 0) {
      ssize_t m = splice(p[0], NULL, dst, NULL, n, SPLICE_F_MOVE);
      if (m < 0 && errno == EINTR) continue;
      if (m <= 0) goto out;
      n -= m;
    }
  }
out:
  shutdown(dst, SHUT_WR);
  close(p[0]);
  close(p[1]);
}

static void* reverse_main(void* arg) {
  struct dir* d = arg;
  pump(d->src, d->dst);
  put(d->c);
  free(d);
  return NULL;
}

static void* conn_main(void* arg) {
  struct conn* c = arg;
  /* This thread lives in the namespace from here on: the socket it makes
   * belongs there; splice does not care which namespace the thread is in. */
  if (setns(netns_fd, CLONE_NEWNET) != 0) goto fail;
  c->upstream = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (c->upstream >= 0 && *cc) setsockopt(c->upstream, IPPROTO_TCP, TCP_CONGESTION, cc, strlen(cc));
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(c->cport), .sin_addr = target};
  if (c->upstream < 0 || connect(c->upstream, (struct sockaddr*)&a, sizeof a) != 0) goto fail;
  struct dir* d = malloc(sizeof *d);
  *d = (struct dir){c, c->upstream, c->client};
  atomic_store(&c->refs, 2);
  pthread_t t;
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&at, 64 << 10);
  if (pthread_create(&t, &at, reverse_main, d) != 0) {
    free(d);
    atomic_store(&c->refs, 1);
    put(c);
    return NULL;
  }
  pump(c->client, c->upstream);
  put(c);
  return NULL;
fail:
  close(c->client);
  if (c->upstream >= 0) close(c->upstream);
  free(c);
  return NULL;
}

struct listener {
  int fd, cport;
};

static void* accept_main(void* arg) {
  struct listener* l = arg;
  pthread_attr_t at;
  pthread_attr_init(&at);
  pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&at, 64 << 10);
  for (;;) {
    int cfd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
    if (cfd < 0) continue;
    struct conn* c = calloc(1, sizeof *c);
    c->client = cfd;
    c->upstream = -1;
    c->cport = l->cport;
    pthread_t t;
    if (pthread_create(&t, &at, conn_main, c) != 0) {
      close(cfd);
      free(c);
    }
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: portfwd-splice NETNS TARGET_IP LPORT:CPORT [LPORT:CPORT ...]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  if (getenv("PODNET_SPLICE_PIPE")) pipe_size = atoi(getenv("PODNET_SPLICE_PIPE"));
  if (getenv("PODNET_SPLICE_CC")) cc = getenv("PODNET_SPLICE_CC");
  netns_fd = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (netns_fd < 0 || inet_pton(AF_INET, argv[2], &target) != 1) {
    perror(argv[1]);
    return 1;
  }
  pthread_t t = 0;
  for (int i = 3; i < argc; i++) {
    struct listener* l = malloc(sizeof *l);
    int lport = atoi(argv[i]), one = 1;
    char* colon = strchr(argv[i], ':');
    l->cport = colon ? atoi(colon + 1) : lport;
    l->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(lport), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(l->fd, (struct sockaddr*)&a, sizeof a) != 0 || listen(l->fd, 4096) != 0) {
      perror("listen");
      return 1;
    }
    if (pthread_create(&t, NULL, accept_main, l) != 0) return 1;
  }
  printf("ready\n");
  fflush(stdout);
  pthread_join(t, NULL);
  return 0;
}
