/* demo.h -- `fulcrum demo`: built-in demo backends and a balancer in front, no file needed. */
#ifndef FULCRUM_DEMO_H
#define FULCRUM_DEMO_H

/* The embedded configuration the demo runs (YAML, NUL-terminated). */
extern const char demo_config_yaml[];

/*
 * Starts three demo HTTP servers of different speeds on 127.0.0.1:9101..9103 (in a thread
 * of this process), and the balancer on the embedded config; prints what to try; runs
 * until SIGINT/SIGTERM. argv[0] is "demo"; no other argument is accepted. Returns the
 * process exit status (0, 1 when a port is taken, 2 for bad arguments).
 */
int demo_main(int argc, char **argv);

#endif
