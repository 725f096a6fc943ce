/* main.c -- the command line: run, check, demo, simulate. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "demo.h"
#include "runtime.h"
#include "simulate.h"

#ifndef FULCRUM_VERSION
#define FULCRUM_VERSION "0.1.0"
#endif

static void usage(FILE *f)
{
    fprintf(f, "usage: fulcrum COMMAND [ARGS]\n"
               "\n"
               "commands:\n"
               "  run FILE        run the load balancer in the foreground (SIGHUP reloads FILE,\n"
               "                  SIGTERM/SIGINT drain in-flight requests and exit 0)\n"
               "  check FILE      validate FILE: exit 0, or print FILE:LINE: message and exit 1\n"
               "  demo            demo backends, a balancer on 127.0.0.1:8080 and the admin API\n"
               "                  on 127.0.0.1:9090; needs no file\n"
               "  simulate [...]  drive the balancing strategies with no network\n"
               "                  (fulcrum simulate --help for its flags)\n"
               "\n"
               "options:\n"
               "  -h, --help      this text\n"
               "  -V, --version   the version\n");
}

static int cmd_check(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fulcrum check FILE\n");
        return 2;
    }
    struct config *cfg;
    char err[1024];
    if (config_load_file(argv[1], &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    size_t nservers = 0;
    for (size_t i = 0; i < cfg->nbackends; i++)
        nservers += cfg->backends[i].nservers;
    printf("%s: ok (%zu frontends, %zu backends, %zu servers)\n", argv[1], cfg->nfrontends,
           cfg->nbackends, nservers);
    config_free(cfg);
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fulcrum run FILE\n");
        return 2;
    }
    struct config *cfg;
    char err[1024];
    if (config_load_file(argv[1], &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    return runtime_run(cfg, argv[1]); /* takes ownership of cfg */
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
        printf("fulcrum %s\n", FULCRUM_VERSION);
        return 0;
    }
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc - 1, argv + 1);
    if (strcmp(cmd, "demo") == 0)
        return demo_main(argc - 1, argv + 1);
    if (strcmp(cmd, "simulate") == 0)
        return simulate_main(argc - 1, argv + 1);
    fprintf(stderr, "fulcrum: unknown command or flag '%s'\n\n", cmd);
    usage(stderr);
    return 2;
}
