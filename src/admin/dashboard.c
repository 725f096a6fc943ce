/* dashboard.c -- dashboard.html, embedded in the binary by the assembler (.incbin). */
#include "admin/api.h"

/*
 * The page is included byte for byte at build time, so the binary needs no file at run
 * time and the page needs no build step. The path is relative to the directory make runs
 * in (the repository root). make must rebuild this object when the page changes: the
 * Makefile lists dashboard.html as a prerequisite of dashboard.o (a -MMD dependency file
 * does not see .incbin). A NUL follows the page so it is also a C string.
 */
__asm__(".pushsection .rodata\n"
        ".balign 16\n"
        ".globl fulcrum_dashboard_start\n"
        ".hidden fulcrum_dashboard_start\n"
        "fulcrum_dashboard_start:\n"
        ".incbin \"src/admin/dashboard.html\"\n"
        ".globl fulcrum_dashboard_end\n"
        ".hidden fulcrum_dashboard_end\n"
        "fulcrum_dashboard_end:\n"
        ".byte 0\n"
        ".popsection\n");

__attribute__((visibility("hidden"))) extern const char fulcrum_dashboard_start[];
__attribute__((visibility("hidden"))) extern const char fulcrum_dashboard_end[];

const char *admin_dashboard(size_t *len)
{
    *len = (size_t)(fulcrum_dashboard_end - fulcrum_dashboard_start);
    return fulcrum_dashboard_start;
}
