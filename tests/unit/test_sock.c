/* test_sock.c -- listeners, accept, non-blocking connect and options, on 127.0.0.1 only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "net/addr.h"
#include "net/sock.h"

#define WAIT_MS 2000 /* upper bound for any single wait in these tests */

static struct sockaddr_in loopback(uint16_t port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sin;
}

static uint16_t local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len;
    assert_int_equal(sock_local_addr(fd, &ss, &len), 0);
    return addr_port((struct sockaddr *)&ss);
}

static int listen_loopback(uint16_t port, unsigned flags)
{
    struct sockaddr_in sin = loopback(port);
    return sock_listen((struct sockaddr *)&sin, sizeof(sin), 16, flags);
}

static void wait_for(int fd, short events)
{
    struct pollfd pfd = {.fd = fd, .events = events};
    assert_int_equal(poll(&pfd, 1, WAIT_MS), 1);
}

/* Connects to 127.0.0.1:port and waits until the handshake is done. */
static int connect_loopback(uint16_t port)
{
    struct sockaddr_in sin = loopback(port);
    int fd = -1;
    int rc = sock_connect((struct sockaddr *)&sin, sizeof(sin), &fd);
    assert_true(rc == 0 || rc == SOCK_INPROGRESS);
    assert_true(fd >= 0);
    if (rc == SOCK_INPROGRESS) {
        wait_for(fd, POLLOUT);
        assert_int_equal(sock_error(fd), 0);
    }
    return fd;
}

static void test_listen_accept_connect(void **state)
{
    (void)state;
    int lfd = listen_loopback(0, 0);
    assert_true(lfd >= 0);
    assert_true(fcntl(lfd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
    uint16_t port = local_port(lfd);
    assert_true(port != 0);
    assert_int_equal(sock_accept(lfd, NULL, NULL), -EAGAIN);

    int cfd = connect_loopback(port);
    wait_for(lfd, POLLIN);
    struct sockaddr_storage peer;
    socklen_t peerlen = 0;
    int afd = sock_accept(lfd, &peer, &peerlen);
    assert_true(afd >= 0);
    assert_int_equal(peerlen, sizeof(struct sockaddr_in));
    assert_true(fcntl(afd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(afd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(addr_port((struct sockaddr *)&peer), local_port(cfd));

    char want[ADDR_STRLEN], got[ADDR_STRLEN];
    snprintf(want, sizeof(want), "127.0.0.1:%u", port);
    assert_int_equal(sock_peer_string(cfd, got, sizeof(got)), 0);
    assert_string_equal(got, want);
    assert_int_equal(sock_peer_string(cfd, got, 5), -ENOSPC);
    assert_int_equal(sock_accept(lfd, NULL, NULL), -EAGAIN); /* queue drained */

    assert_int_equal(write(cfd, "hi", 2), 2);
    wait_for(afd, POLLIN);
    char c[2];
    assert_int_equal(read(afd, c, 2), 2);
    close(afd);
    close(cfd);
    close(lfd);
}

static void test_reuseport_two_listeners_share_port(void **state)
{
    (void)state;
    int l1 = listen_loopback(0, SOCK_REUSEPORT);
    assert_true(l1 >= 0);
    uint16_t port = local_port(l1);
    int l2 = listen_loopback(port, SOCK_REUSEPORT);
    assert_true(l2 >= 0);
    assert_int_equal(local_port(l2), port);
    /* Without SO_REUSEPORT the address is taken. */
    assert_int_equal(listen_loopback(port, 0), -EADDRINUSE);

    /* Every connection reaches exactly one of the two. */
    enum { N = 16 };
    int cfd[N];
    for (int i = 0; i < N; i++)
        cfd[i] = connect_loopback(port);
    int accepted = 0;
    for (int round = 0; round < 100 && accepted < N; round++) {
        struct pollfd pfd[2] = {{.fd = l1, .events = POLLIN}, {.fd = l2, .events = POLLIN}};
        assert_true(poll(pfd, 2, WAIT_MS) > 0);
        for (int k = 0; k < 2; k++) {
            int fd;
            while ((fd = sock_accept(pfd[k].fd, NULL, NULL)) >= 0) {
                accepted++;
                close(fd);
            }
            assert_int_equal(fd, -EAGAIN);
        }
    }
    assert_int_equal(accepted, N);
    for (int i = 0; i < N; i++)
        close(cfd[i]);
    close(l1);
    close(l2);
}

static void test_connect_refused(void **state)
{
    (void)state;
    /* A bound, non-listening socket holds the port, so nothing can be listening there. */
    struct sockaddr_in sin = loopback(0);
    int hold = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(hold >= 0);
    assert_int_equal(bind(hold, (struct sockaddr *)&sin, sizeof(sin)), 0);
    sin = loopback(local_port(hold));
    int fd = -1;
    int rc = sock_connect((struct sockaddr *)&sin, sizeof(sin), &fd);
    if (rc == SOCK_INPROGRESS) {
        wait_for(fd, POLLOUT);
        rc = sock_error(fd);
        assert_int_equal(sock_error(fd), 0); /* reading SO_ERROR clears it */
        close(fd);
    }
    assert_int_equal(rc, -ECONNREFUSED);
    close(hold);
}

static void test_options(void **state)
{
    (void)state;
    int lfd = listen_loopback(0, 0);
    int fd = connect_loopback(local_port(lfd));
    int v = 0;
    socklen_t len = sizeof(v);
    assert_int_equal(sock_set_nodelay(fd, true), 0);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
    assert_true(v != 0);
    assert_int_equal(sock_set_nodelay(fd, false), 0);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
    assert_int_equal(v, 0);
    assert_int_equal(sock_set_keepalive(fd, 30, 5, 4), 0);
    assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &v, &len), 0);
    assert_true(v != 0);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &v, &len), 0);
    assert_int_equal(v, 30);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &v, &len), 0);
    assert_int_equal(v, 5);
    assert_int_equal(getsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &v, &len), 0);
    assert_int_equal(v, 4);
    assert_int_equal(sock_set_nodelay(-1, true), -EBADF);
    assert_int_equal(sock_error(-1), -EBADF);
    close(fd);
    close(lfd);
}

/* Out of descriptors, accept says pause; once one is freed the queued client gets in. */
static void test_accept_emfile_pauses(void **state)
{
    (void)state;
    int lfd = listen_loopback(0, 0);
    int cfd = connect_loopback(local_port(lfd));
    wait_for(lfd, POLLIN);
    struct rlimit old, low;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int probe = dup(lfd);
    assert_true(probe >= 0);
    close(probe);
    low = old;
    low.rlim_cur = (rlim_t)probe + 8;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int fill[16];
    int nfill = 0;
    while (nfill < 16 && (fill[nfill] = dup(lfd)) >= 0)
        nfill++;
    assert_true(nfill < 16); /* the table is full */
    assert_int_equal(sock_accept(lfd, NULL, NULL), SOCK_EPAUSE);
    assert_int_equal(sock_accept(lfd, NULL, NULL), SOCK_EPAUSE); /* still queued */
    close(fill[--nfill]);
    int afd = sock_accept(lfd, NULL, NULL);
    assert_true(afd >= 0);
    close(afd);
    while (nfill > 0)
        close(fill[--nfill]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    close(cfd);
    close(lfd);
}

static void test_ipv6_loopback(void **state)
{
    (void)state;
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int lfd = sock_listen((struct sockaddr *)&sin6, sizeof(sin6), 0, SOCK_REUSEPORT);
    if (lfd == -EAFNOSUPPORT || lfd == -EADDRNOTAVAIL)
        skip(); /* no IPv6 on this machine */
    assert_true(lfd >= 0);
    int v = 0;
    socklen_t len = sizeof(v);
    assert_int_equal(getsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &len), 0);
    assert_true(v != 0);
    uint16_t port = local_port(lfd);
    sin6.sin6_port = htons(port);
    int fd = -1;
    int rc = sock_connect((struct sockaddr *)&sin6, sizeof(sin6), &fd);
    assert_true(rc == 0 || rc == SOCK_INPROGRESS);
    wait_for(fd, POLLOUT);
    assert_int_equal(sock_error(fd), 0);
    char want[ADDR_STRLEN], got[ADDR_STRLEN];
    snprintf(want, sizeof(want), "[::1]:%u", port);
    assert_int_equal(sock_peer_string(fd, got, sizeof(got)), 0);
    assert_string_equal(got, want);
    wait_for(lfd, POLLIN);
    int afd = sock_accept(lfd, NULL, NULL);
    assert_true(afd >= 0);
    close(afd);
    close(fd);
    close(lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_listen_accept_connect),
        cmocka_unit_test(test_reuseport_two_listeners_share_port),
        cmocka_unit_test(test_connect_refused),
        cmocka_unit_test(test_options),
        cmocka_unit_test(test_accept_emfile_pauses),
        cmocka_unit_test(test_ipv6_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
