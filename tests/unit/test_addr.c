/* test_addr.c -- host:port splitting (no I/O), parsing, resolving and printing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dlfcn.h>
#include <netdb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "net/addr.h"

/*
 * A stand-in resolver, so tests send no DNS query off the machine: the test binary's own
 * getaddrinfo wins over libc's at link time. It answers a few made-up names and hands every
 * other name (localhost: /etc/hosts) to the real one.
 */
typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
typedef void (*fai_fn)(struct addrinfo *);

static struct sockaddr_in6 dual6 = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
static struct sockaddr_in dual4 = {.sin_family = AF_INET};
static struct addrinfo dual_v4 = {.ai_family = AF_INET,
                                  .ai_socktype = SOCK_STREAM,
                                  .ai_addrlen = sizeof(dual4),
                                  .ai_addr = (struct sockaddr *)&dual4};
static struct addrinfo dual_v6 = {.ai_family = AF_INET6,
                                  .ai_socktype = SOCK_STREAM,
                                  .ai_addrlen = sizeof(dual6),
                                  .ai_addr = (struct sockaddr *)&dual6,
                                  .ai_next = &dual_v4};

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    if (node && strcmp(node, "no-such-host.invalid") == 0)
        return EAI_NONAME;
    if (node && strcmp(node, "dns-down.test") == 0)
        return EAI_AGAIN;
    if (node && strcmp(node, "oom.test") == 0)
        return EAI_MEMORY;
    if (node && strcmp(node, "dual.test") == 0) {
        dual4.sin_addr.s_addr = htonl(0x7f000002); /* v6 listed first, as RFC 6724 sorts */
        *res = &dual_v6;
        return 0;
    }
    gai_fn real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
    return real(node, service, hints, res);
}

void freeaddrinfo(struct addrinfo *ai)
{
    if (ai == &dual_v6)
        return;
    fai_fn real = (fai_fn)dlsym(RTLD_NEXT, "freeaddrinfo");
    real(ai);
}

struct split_case {
    const char *in;
    int rc;
    const char *host;
    uint16_t port;
};

static void test_split_good(void **state)
{
    (void)state;
    const struct split_case cases[] = {
        {"127.0.0.1:80", 0, "127.0.0.1", 80},
        {"localhost:8080", 0, "localhost", 8080},
        {"backend-1.example.com:65535", 0, "backend-1.example.com", 65535},
        {"example.com.:443", 0, "example.com.", 443},
        {"svc_a.internal:1", 0, "svc_a.internal", 1},
        {"[::1]:9000", 0, "::1", 9000},
        {"[2001:db8::42]:443", 0, "2001:db8::42", 443},
        {"[::ffff:10.0.0.1]:80", 0, "::ffff:10.0.0.1", 80},
        {"[fe80::1%eth0]:80", 0, "fe80::1%eth0", 80},
        {"[::]:8080", 0, "::", 8080},
        {"*:8080", 0, "*", 8080},
        {":8080", 0, "*", 8080},
        {"host:00080", 0, "host", 80},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char host[ADDR_HOST_MAX + 1];
        uint16_t port = 0;
        int rc = addr_split(cases[i].in, host, sizeof(host), &port);
        if (rc != cases[i].rc)
            fail_msg("%s: got %d (%s)", cases[i].in, rc, addr_strerror(rc));
        assert_string_equal(host, cases[i].host);
        assert_int_equal(port, cases[i].port);
    }
}

static void test_split_bad(void **state)
{
    (void)state;
    static char long_label[80], long_name[300];
    memset(long_label, 'a', 64);
    strcpy(long_label + 64, ".com:80");
    for (int i = 0; i < 260; i += 2) {
        long_name[i] = 'a';
        long_name[i + 1] = '.';
    }
    strcpy(long_name + 260, "com:80");
    const struct split_case cases[] = {
        {"", ADDR_EEMPTY, NULL, 0},
        {"127.0.0.1", ADDR_ENOPORT, NULL, 0},
        {"localhost:", ADDR_ENOPORT, NULL, 0},
        {"[::1]", ADDR_ENOPORT, NULL, 0},
        {"[::1]:", ADDR_ENOPORT, NULL, 0},
        {"host:0", ADDR_EPORT, NULL, 0},
        {"host:65536", ADDR_EPORT, NULL, 0},
        {"host:999999", ADDR_EPORT, NULL, 0},
        {"host:-1", ADDR_EPORT, NULL, 0},
        {"host:+80", ADDR_EPORT, NULL, 0},
        {"host:80 ", ADDR_EPORT, NULL, 0},
        {"host:http", ADDR_EPORT, NULL, 0},
        {"::1:80", ADDR_EBRACKET, NULL, 0},
        {"2001:db8::1", ADDR_EBRACKET, NULL, 0},
        {"[::1:80", ADDR_EBRACKET, NULL, 0},
        {"::1]:80", ADDR_EBRACKET, NULL, 0},
        {"[::1]80", ADDR_EBRACKET, NULL, 0},
        {"[]:80", ADDR_EBRACKET, NULL, 0},
        {"[1.2.3.4]:80", ADDR_EBRACKET, NULL, 0},
        {"[::g]:80", ADDR_EBRACKET, NULL, 0},
        {"[fe80::1%]:80", ADDR_EBRACKET, NULL, 0},
        {"256.1.1.1:80", ADDR_EHOST, NULL, 0},
        {"1.2.3:80", ADDR_EHOST, NULL, 0},
        {"1234:80", ADDR_EHOST, NULL, 0},
        {"bad host:80", ADDR_EHOST, NULL, 0},
        {"-lead.example:80", ADDR_EHOST, NULL, 0},
        {"a..b:80", ADDR_EHOST, NULL, 0},
        {".:80", ADDR_EHOST, NULL, 0},
        {"**:80", ADDR_EHOST, NULL, 0},
        {long_label, ADDR_EHOST, NULL, 0},
        {long_name, ADDR_ETOOLONG, NULL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char host[ADDR_HOST_MAX + 1];
        uint16_t port = 0;
        int rc = addr_split(cases[i].in, host, sizeof(host), &port);
        if (rc != cases[i].rc)
            fail_msg("%s: got %d (%s), want %d", cases[i].in, rc, addr_strerror(rc), cases[i].rc);
    }
    char small[4];
    uint16_t port;
    assert_int_equal(addr_split("longhost:80", small, sizeof(small), &port), ADDR_ETOOLONG);
    assert_int_equal(addr_split(NULL, small, sizeof(small), &port), ADDR_EEMPTY);
}

static void test_parse_numeric(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    assert_int_equal(addr_parse("10.1.2.3:8080", 0, &ss, &len), 0);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(ntohl(sin->sin_addr.s_addr), 0x0a010203u);
    assert_int_equal(ntohs(sin->sin_port), 8080);

    assert_int_equal(addr_parse("[2001:db8::1]:443", 0, &ss, &len), 0);
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
    struct in6_addr want;
    inet_pton(AF_INET6, "2001:db8::1", &want);
    assert_int_equal(sin6->sin6_family, AF_INET6);
    assert_memory_equal(&sin6->sin6_addr, &want, sizeof(want));
    assert_int_equal(addr_port((struct sockaddr *)&ss), 443);

    assert_int_equal(addr_parse("[fe80::1%1]:80", 0, &ss, &len), 0);
    assert_int_equal(sin6->sin6_scope_id, 1);

    /* Wildcards only for listeners. */
    assert_int_equal(addr_parse("*:80", 0, &ss, &len), ADDR_EWILDCARD);
    assert_int_equal(addr_parse(":80", ADDR_PASSIVE, &ss, &len), 0);
    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(sin->sin_addr.s_addr, htonl(INADDR_ANY));
    assert_int_equal(ntohs(sin->sin_port), 80);

    /* Split errors come through unchanged. */
    assert_int_equal(addr_parse("[::1", 0, &ss, &len), ADDR_EBRACKET);
    assert_int_equal(addr_parse("1.2.3.4:70000", 0, &ss, &len), ADDR_EPORT);
}

static void test_parse_resolves_localhost(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    /* Answered from /etc/hosts: no DNS query leaves the machine. */
    assert_int_equal(addr_parse("localhost:9001", 0, &ss, &len), 0);
    assert_int_equal(addr_port((struct sockaddr *)&ss), 9001);
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)&ss;
        assert_int_equal(len, sizeof(*sin));
        assert_int_equal(ntohl(sin->sin_addr.s_addr) >> 24, 127);
    } else {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&ss;
        assert_int_equal(ss.ss_family, AF_INET6);
        assert_true(IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr));
    }
}

static void test_parse_resolver_answers(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    assert_int_equal(addr_parse("no-such-host.invalid:80", 0, &ss, &len), ADDR_ERESOLVE);
    assert_int_equal(addr_parse("dns-down.test:80", 0, &ss, &len), ADDR_ERESOLVE);
    assert_int_equal(addr_parse("oom.test:80", 0, &ss, &len), ADDR_ENOMEM);
    /* Both families: IPv4 unless asked otherwise, whatever the resolver's order. */
    assert_int_equal(addr_parse("dual.test:81", 0, &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    assert_int_equal(ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr), 0x7f000002u);
    assert_int_equal(addr_port((struct sockaddr *)&ss), 81);
    assert_int_equal(addr_parse("dual.test:82", ADDR_PREFER_IPV6, &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_INET6);
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    assert_int_equal(addr_port((struct sockaddr *)&ss), 82);
    /* The resolver's own storage is not touched by the port. */
    assert_int_equal(dual6.sin6_port, 0);
}

static void test_to_string(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len;
    char out[ADDR_STRLEN];
    assert_int_equal(addr_parse("192.168.0.1:80", 0, &ss, &len), 0);
    assert_int_equal(addr_to_string((struct sockaddr *)&ss, out, sizeof(out)), 0);
    assert_string_equal(out, "192.168.0.1:80");
    assert_int_equal(addr_parse("[2001:DB8:0:0::1]:65535", 0, &ss, &len), 0);
    assert_int_equal(addr_to_string((struct sockaddr *)&ss, out, sizeof(out)), 0);
    assert_string_equal(out, "[2001:db8::1]:65535"); /* canonical form */
    assert_int_equal(addr_parse("[fe80::1%3]:80", 0, &ss, &len), 0);
    assert_int_equal(addr_to_string((struct sockaddr *)&ss, out, sizeof(out)), 0);
    assert_string_equal(out, "[fe80::1%3]:80");
    assert_int_equal(addr_to_string((struct sockaddr *)&ss, out, 8), ADDR_ENOSPC);
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    assert_int_equal(addr_to_string((struct sockaddr *)&sun, out, sizeof(out)), ADDR_EFAMILY);
    assert_int_equal(addr_port((struct sockaddr *)&sun), 0);
}

static void test_strerror_names_every_code(void **state)
{
    (void)state;
    for (int err = ADDR_ENOSPC; err <= ADDR_OK; err++) {
        const char *msg = addr_strerror(err);
        assert_non_null(msg);
        assert_string_not_equal(msg, addr_strerror(-1000));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_split_good),
        cmocka_unit_test(test_split_bad),
        cmocka_unit_test(test_parse_numeric),
        cmocka_unit_test(test_parse_resolves_localhost),
        cmocka_unit_test(test_parse_resolver_answers),
        cmocka_unit_test(test_to_string),
        cmocka_unit_test(test_strerror_names_every_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
