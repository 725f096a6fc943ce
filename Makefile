# fulcrum -- build, test, run.  `make help` lists the targets.
CC      ?= gcc
BUILD   := build
PKGS    := libxxhash yaml-0.1 jansson libsystemd
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lxxhash -lyaml -ljansson)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla
BASE    := -std=c11 -D_GNU_SOURCE -Isrc $(PKG_CFLAGS) $(WARN) -MMD -MP
LIBS    := $(PKG_LIBS) -lpthread -lm

# Release: hardened (FORTIFY, stack protector, PIE, full RELRO).
REL_CFLAGS  := $(BASE) -O2 -g -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIE
REL_LDFLAGS := -pie -Wl,-z,relro,-z,now
# Tests: ASan + UBSan (LeakSanitizer is on by default with ASan).
SAN         := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ASAN_CFLAGS := $(BASE) -O1 -g $(SAN)
TSAN_CFLAGS := $(BASE) -O1 -g -fsanitize=thread

SRCS      := $(shell find src -name '*.c' | sort)
LIB_SRCS  := $(filter-out src/main.c,$(SRCS))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_NAMES := $(UNIT_SRCS:tests/unit/%.c=%)
EMBED     := $(shell find src -name '*.html' 2>/dev/null | sort)

REL_OBJS  := $(SRCS:%.c=$(BUILD)/rel/%.o)
ASAN_LIB  := $(LIB_SRCS:%.c=$(BUILD)/asan/%.o)
TSAN_LIB  := $(LIB_SRCS:%.c=$(BUILD)/tsan/%.o)
UNIT_BINS := $(UNIT_NAMES:%=$(BUILD)/asan/bin/%)
TSAN_UNIT := $(UNIT_NAMES:%=$(BUILD)/tsan/bin/%)

PYTEST := /usr/bin/python3 -m pytest

# Quiet by default (one line per file); `make V=1` shows the full commands.
ifeq ($(V),1)
Q :=
else
Q := @
endif
# Test objects are intermediate files; keep them so a rerun does not recompile.
.SECONDARY:

.PHONY: fuzz-build all deps test unit integration run bench tsan fuzz format format-check clean help
all: $(BUILD)/fulcrum

help:
	@echo "make deps     install the Debian packages the build and tests need"
	@echo "make          build build/fulcrum (release, hardened)"
	@echo "make test     build with ASan+UBSan and run every test"
	@echo "make run      run the demo"
	@echo "make bench    run the benchmarks"
	@echo "make tsan     run the unit tests and the threaded integration tests under TSan"
	@echo "make fuzz     run each libFuzzer target (FUZZ_SECONDS=60)"
	@echo "make format   apply .clang-format"

deps:
	@scripts/deps.sh

$(BUILD)/fulcrum: $(REL_OBJS)
	@$(if $(Q),echo "  LD $@")
	$(Q)$(CC) $(REL_CFLAGS) $(REL_LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/rel/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC $<")
	$(Q)$(CC) $(REL_CFLAGS) -c -o $@ $<

$(BUILD)/asan/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC $<")
	$(Q)$(CC) $(ASAN_CFLAGS) -c -o $@ $<

$(BUILD)/tsan/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC $<")
	$(Q)$(CC) $(TSAN_CFLAGS) -c -o $@ $<

$(BUILD)/asan/fulcrum: $(ASAN_LIB) $(BUILD)/asan/src/main.o
	@$(if $(Q),echo "  LD $@")
	$(Q)$(CC) $(ASAN_CFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tsan/fulcrum: $(TSAN_LIB) $(BUILD)/tsan/src/main.o
	@$(if $(Q),echo "  LD $@")
	$(Q)$(CC) $(TSAN_CFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/asan/bin/%: $(BUILD)/asan/tests/unit/%.o $(ASAN_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD $@")
	$(Q)$(CC) $(ASAN_CFLAGS) -o $@ $^ $(LIBS) -lcmocka

$(BUILD)/tsan/bin/%: $(BUILD)/tsan/tests/unit/%.o $(TSAN_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD $@")
	$(Q)$(CC) $(TSAN_CFLAGS) -o $@ $^ $(LIBS) -lcmocka

# test and run set themselves up (deps) first, so a fresh machine needs nothing else.
test:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory unit integration

unit: $(UNIT_BINS)
	@scripts/run-unit.sh $(UNIT_BINS)

integration: $(BUILD)/asan/fulcrum
	@if ls tests/integration/test_*.py >/dev/null 2>&1; then \
	  FULCRUM_BIN=$(CURDIR)/$(BUILD)/asan/fulcrum $(PYTEST) -q tests/integration; \
	else echo "integration: no tests yet"; fi

# The threads meet in reloads (workers, admin, health, runtime) and in the admin API:
# those integration tests run against a TSan binary too.
TSAN_INTEGRATION := tests/integration/test_reload.py tests/integration/test_admin.py \
                    tests/integration/test_health.py

tsan: $(TSAN_UNIT) $(BUILD)/tsan/fulcrum
	@scripts/run-unit.sh $(TSAN_UNIT)
	@FULCRUM_BIN=$(CURDIR)/$(BUILD)/tsan/fulcrum $(PYTEST) -q $(TSAN_INTEGRATION)

run:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory $(BUILD)/fulcrum
	$(BUILD)/fulcrum demo

bench: $(BUILD)/fulcrum
	@bench/run.sh

format:
	clang-format -i $(SRCS) $(shell find src tests -name '*.h') $(UNIT_SRCS)

format-check:
	clang-format --dry-run --Werror $(SRCS) $(shell find src tests -name '*.h') $(UNIT_SRCS)

# dashboard.c embeds dashboard.html with .incbin: -MMD does not see it.
$(foreach v,rel asan tsan fuzz,$(BUILD)/$(v)/src/admin/dashboard.o): $(EMBED)

# Fuzzing: clang + libFuzzer; each tests/fuzz/fuzz_NAME.c is one target.
FUZZ_SRCS   := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS   := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/bin/%)
FUZZ_CFLAGS := $(BASE) -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
FUZZ_LIB    := $(LIB_SRCS:%.c=$(BUILD)/fuzz/%.o)
FUZZ_SECONDS ?= 60

$(BUILD)/fuzz/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC $<")
	$(Q)clang $(FUZZ_CFLAGS) -c -o $@ $<

$(BUILD)/fuzz/bin/%: $(BUILD)/fuzz/tests/fuzz/%.o $(FUZZ_LIB)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD $@")
	$(Q)clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS)

fuzz-build: $(FUZZ_BINS)

fuzz: $(FUZZ_BINS)
	@scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
