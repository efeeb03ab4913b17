# lanefs build. `make test` and `make demo` install missing Debian packages
# themselves (via `make deps`), so each is the one command a new user runs.

CC      ?= cc
PKGS    := fuse3 liburing sqlite3 openssl libattr inih libcjson
# CFLAGS/LDFLAGS are the user's (e.g. sanitizers); the project's own flags
# are kept apart so a command-line CFLAGS does not drop them.
CFLAGS  ?= -O2 -g
XCFLAGS := -std=c11 -D_GNU_SOURCE -DFUSE_USE_VERSION=312 -Wall -Wextra -Werror -I. \
           $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
BUILD   ?= build

# Debian packages the build, the tests and the demo need.
DEB_PKGS := build-essential pkg-config libfuse3-dev fuse3 liburing-dev \
            libsqlite3-dev libssl-dev libattr1-dev attr libcriterion-dev \
            libinih-dev libcjson-dev util-linux psmisc sqlite3
# Only the benchmarks need these (the peers they compare with, the plot), so
# `make test` does not install them.
BENCH_PKGS := fuse-overlayfs mergerfs gnuplot-nox

FS_SRC    := $(wildcard fs/*.c)
LOCKS_SRC := $(wildcard locks/*.c)
JOURNAL_SRC := $(wildcard journal/*.c)
TOOLS_SRC := $(wildcard tools/*.c)
LIB_OBJ   := $(FS_SRC:%.c=$(BUILD)/%.o) $(LOCKS_SRC:%.c=$(BUILD)/%.o) \
             $(JOURNAL_SRC:%.c=$(BUILD)/%.o)
TOOLS_OBJ := $(TOOLS_SRC:%.c=$(BUILD)/%.o)
# tools/ helpers the unit tests link (not main, not the subcommands)
TOOLS_LIB_OBJ := $(filter-out $(BUILD)/tools/lanefs.o $(BUILD)/tools/cmd_%.o,$(TOOLS_OBJ))
UNIT_SRC  := $(wildcard tests/unit/*.c)
INTEG_SRC := $(wildcard tests/integration/*.c)

LANEFS    := $(BUILD)/lanefs
UNIT_BIN  := $(BUILD)/test_unit
INTEG_BIN := $(BUILD)/test_integration

.PHONY: all deps bench-deps test unit integration demo asan bench bench-quick bench-scale \
        bench-noisy bench-engine clean

all: $(LANEFS)

# $(call install_missing,PACKAGES): apt-get install those not installed.
define install_missing
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' \
	    || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

deps:
	$(call install_missing,$(DEB_PKGS))

bench-deps:
	$(call install_missing,$(BENCH_PKGS))

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(XCFLAGS) -MMD -MP -c $< -o $@

$(LANEFS): $(LIB_OBJ) $(TOOLS_OBJ)
	$(CC) $(CFLAGS) $(XCFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(UNIT_BIN): $(LIB_OBJ) $(TOOLS_LIB_OBJ) $(UNIT_SRC:%.c=$(BUILD)/%.o)
	$(CC) $(CFLAGS) $(XCFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion

$(INTEG_BIN): $(INTEG_SRC:%.c=$(BUILD)/%.o)
	$(CC) $(CFLAGS) $(XCFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcriterion

unit: $(UNIT_BIN)
	$(UNIT_BIN) --jobs 2

integration: $(LANEFS) $(INTEG_BIN)
	LANEFS=$(abspath $(LANEFS)) tests/run-integration.sh $(INTEG_BIN)

test: deps
	$(MAKE) all $(UNIT_BIN) $(INTEG_BIN)
	$(MAKE) unit
	$(MAKE) integration

demo: deps
	$(MAKE) all
	LANEFS=$(abspath $(LANEFS)) scripts/demo.sh

# lanefs, native, fuse-overlayfs and mergerfs side by side: build/bench.md
# and build/bench.png. bench-quick: small sizes, one run, to try it out.
bench: deps bench-deps
	$(MAKE) all
	LANEFS=$(abspath $(LANEFS)) BENCH_CMD="make bench" tests/bench/bench.sh

bench-quick:
	BENCH_QUICK=1 $(MAKE) bench

# Many agents on one daemon against one fuse-overlayfs per agent.
bench-scale: deps bench-deps
	$(MAKE) all
	LANEFS=$(abspath $(LANEFS)) tests/bench/scale.sh

# Noisy neighbour: read shaping next to fuse-overlayfs and a bind mount.
bench-noisy: deps bench-deps
	$(MAKE) all
	LANEFS=$(abspath $(LANEFS)) tests/bench/noisy.sh

# One agent's reads with the read engine on and off, alternating
# (AB_BASE_COMMIT=COMMIT: against lanefs built at that commit instead).
bench-engine: deps
	$(MAKE) all
	LANEFS=$(abspath $(LANEFS)) tests/bench/engine_ab.sh

# AddressSanitizer + UBSan build of everything, then the whole test suite.
asan: deps
	$(MAKE) BUILD=build-asan CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer" \
	  LDFLAGS="-fsanitize=address,undefined" all build-asan/test_unit build-asan/test_integration
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 build-asan/test_unit --jobs 2
	ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 LANEFS=$(abspath build-asan/lanefs) tests/run-integration.sh build-asan/test_integration

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
