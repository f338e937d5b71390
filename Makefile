# ivs-autoscaler — plain GNU Makefile.
#
# Sources are found by pattern, so adding a file needs no edit here:
#   common/*.c                  -> build/libcommon.a  (pure code and I/O clients)
#   controller/*.c (not main.c, ctl.c) -> build/libcontroller.a
#   controller/main.c           -> build/ivs-autoscaler
#   controller/ctl.c            -> build/ivs-autoscalerctl
#   tests/unit/test_*.c         -> build/tests/test_*   (cmocka, run by `make check`)
#   tests/tools/*.c             -> build/tests/*        (test helpers such as sigv4-suite)
#   tests/fuzz/fuzz_*.c         -> build/tests/fuzz_*   (standalone replay drivers; libFuzzer with `make fuzz`)
#
# `make check` builds everything twice: build/ (-O2) and build/asan/ (ASan+UBSan),
# and runs the unit, simulator and integration tests against both.

VERSION     := 0.1.0
PREFIX      ?= /usr/local
DESTDIR     ?=
PYTHON      ?= $(shell test -x /usr/bin/python3 && echo /usr/bin/python3 || echo python3)
B           ?= build
SANITIZE    ?=

PKGS        := libcurl openssl hiredis yaml-0.1 jansson libsystemd expat libmicrohttpd
TEST_PKGS   := cmocka

# Debian 12 packages that build and test the project (make deps).
DEB_BUILD   := gcc make pkg-config libc6-dev libcurl4-openssl-dev libssl-dev libhiredis-dev \
               libyaml-dev libjansson-dev libsystemd-dev libexpat1-dev libmicrohttpd-dev libcmocka-dev
DEB_TEST    := redis-server python3 python3-pytest python3-botocore prometheus mandoc groff-base \
               systemd procps iproute2 util-linux
DEB_ALL     := $(DEB_BUILD) $(DEB_TEST)

CC          ?= cc
CFLAGS      ?= -O2 -g
WARN        := -std=c11 -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes \
               -Wmissing-prototypes -Wpointer-arith -Wvla \
               -Wno-format-truncation   # bounded snprintf truncation is deliberate (names, messages)
DEFS        := -D_GNU_SOURCE -DIVS_AUTOSCALER_VERSION='"$(VERSION)"'
ifneq ($(SANITIZE),)
CFLAGS      := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDSAN       := -fsanitize=address,undefined
endif
PKG_CFLAGS   = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS     = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
TEST_CFLAGS  = $(shell pkg-config --cflags $(TEST_PKGS) 2>/dev/null)
TEST_LIBS    = $(shell pkg-config --libs $(TEST_PKGS) 2>/dev/null)
ALL_CFLAGS   = $(WARN) $(DEFS) $(CFLAGS) -Icommon -Icontroller $(PKG_CFLAGS)

COMMON_SRC  := $(sort $(wildcard common/*.c))
CTRL_SRC    := $(filter-out controller/main.c controller/ctl.c,$(sort $(wildcard controller/*.c)))
UNIT_SRC    := $(sort $(wildcard tests/unit/test_*.c))
TOOL_SRC    := $(sort $(wildcard tests/tools/*.c))
FUZZ_SRC    := $(sort $(wildcard tests/fuzz/fuzz_*.c))

COMMON_OBJ  := $(COMMON_SRC:%.c=$(B)/obj/%.o)
CTRL_OBJ    := $(CTRL_SRC:%.c=$(B)/obj/%.o)
UNIT_BIN    := $(UNIT_SRC:tests/unit/%.c=$(B)/tests/%)
TOOL_BIN    := $(TOOL_SRC:tests/tools/%.c=$(B)/tests/%)
FUZZ_BIN    := $(FUZZ_SRC:tests/fuzz/%.c=$(B)/tests/%)
DAEMON      := $(B)/ivs-autoscaler
CTL         := $(B)/ivs-autoscalerctl

.PHONY: all tests check check-fast check-asan deps have-deps demo bench soak install uninstall fuzz clean
.DELETE_ON_ERROR:

all: $(DAEMON) $(CTL)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(TEST_CFLAGS) -MMD -MP -c $< -o $@

$(B)/libcommon.a: $(COMMON_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/libcontroller.a: $(CTRL_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^ $(if $(CTRL_OBJ),,)

$(DAEMON): $(B)/obj/controller/main.o $(B)/libcontroller.a $(B)/libcommon.a
	$(CC) $(LDSAN) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(CTL): $(B)/obj/controller/ctl.o $(B)/libcommon.a
	$(CC) $(LDSAN) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(B)/tests/%: $(B)/obj/tests/unit/%.o $(B)/libcontroller.a $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDSAN) $(LDFLAGS) -o $@ $^ $(PKG_LIBS) $(TEST_LIBS)

$(TOOL_BIN): $(B)/tests/%: $(B)/obj/tests/tools/%.o $(B)/libcontroller.a $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDSAN) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

$(FUZZ_BIN): $(B)/tests/%: $(B)/obj/tests/fuzz/%.o $(B)/obj/tests/fuzz/replay_main.o $(B)/libcontroller.a $(B)/libcommon.a
	@mkdir -p $(dir $@)
	$(CC) $(LDSAN) $(LDFLAGS) -o $@ $^ $(PKG_LIBS)

tests: all $(UNIT_BIN) $(TOOL_BIN) $(FUZZ_BIN)

# ---- dependencies ---------------------------------------------------------------------------
have-deps:
	@pkg-config --exists $(PKGS) $(TEST_PKGS) && command -v redis-server >/dev/null \
	  && $(PYTHON) -c 'import pytest' 2>/dev/null || $(MAKE) --no-print-directory deps

deps:
	@missing=$$(for p in $(DEB_ALL); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null \
	    | grep -q 'install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then echo "deps: all Debian packages present"; exit 0; fi; \
	echo "deps: installing:" $$missing; \
	if [ "$$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi; \
	$$SUDO apt-get update -qq && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing

# ---- tests ----------------------------------------------------------------------------------
# tests/run-checks runs every runner, prints each summary and a total line; non-zero on failure.
check: have-deps
	$(MAKE) --no-print-directory tests
	$(MAKE) --no-print-directory tests B=build/asan SANITIZE=1
	$(PYTHON) tests/run-checks --build build --asan-build build/asan

check-fast: have-deps tests
	$(PYTHON) tests/run-checks --build build

fuzz: have-deps
	@command -v clang >/dev/null || { echo "fuzz: installing clang"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang libclang-rt-dev; }
	$(MAKE) --no-print-directory -f tests/fuzz/Makefile.fuzz

# ---- demo, bench, install -------------------------------------------------------------------
demo: have-deps all
	$(PYTHON) tests/demo/demo.py --build $(B)

bench: have-deps all
	$(PYTHON) tests/bench/bench.py --build $(B)

# The soak (tests/soak/soak.py): SOAK_SECONDS (default 600), SOAK_SEED (default 1).
soak: have-deps all
	$(PYTHON) tests/soak/soak.py --build $(B)

install: all
	@sh systemd/install.sh install "$(DESTDIR)" "$(PREFIX)" "$(B)"

uninstall:
	@sh systemd/install.sh uninstall "$(DESTDIR)" "$(PREFIX)" "$(B)"

clean:
	rm -rf build

-include $(shell find $(B)/obj -name '*.d' 2>/dev/null)
