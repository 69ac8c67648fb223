# SPDX-License-Identifier: GPL-2.0
#
# membroker top level.  Subdirectories own their Makefiles; this one only
# calls them in the right order and drives the VM rig.
#
#   make            library, tools, membrokerd, selftests (and the module if
#                   KDIR exists)
#   make deps       install build/test dependencies (Debian 12, idempotent)
#   make module     membroker.ko against KDIR
#   make check      deps + everything + host tests (install and the
#                   packages' contents among them) + VM selftests
#   make check-kernels  the module selftests on 6.12 and 7.3 too (each
#                   kernel's own module build; KERNELS="6.12" picks)
#   make bench      host benches, then notify_latency, membrokerd and the
#                   system broker in the VM (bench/)
#   make perf       tails, outcome, cost and scale (bench/perf.sh)
#   make lint       checkpatch --strict, sparse and W=1 on kmod/, kernel-doc
#                   on kmod/ and the uapi and library headers, lintian
#                   on the Debian packages
#   make stress     the module selftests on a debug kernel built from
#                   linux-source-6.1 (KASAN, lockdep, kmemleak, UBSAN ...);
#                   its first run builds that kernel, ~20 min or more
#   make demo       boot the VM and play the demo scenario: a memory hog,
#                   a balloon, virtio-mem; a timeline and a plot
#   make install    PREFIX=/usr/local DESTDIR=: library, headers, .pc,
#                   man pages, membrokerctl, membrokerd with its unit and
#                   bus policy, the module's DKMS source tree and the
#                   modules-load.d/modprobe.d examples (below)
#   make uninstall  the same variables: removes what install put there
#   make deb        Debian packages into build/deb/ (dpkg-buildpackage)
#   make check-packages  install them into a fresh Debian root (12 for
#                   6.1 and 6.12, 13 for 7.3), DKMS, pkg-config, then
#                   boot the DKMS-built module (scripts/pkg/;
#                   PKG_KERNELS, default "6.1 6.12 7.3", picks kernels)
#   make clean
#
# The repository is also a Kbuild project: `make -C KDIR M=$PWD` builds
# kmod/membroker.ko (Kbuild at the top), as DKMS does.
#
# V=1 shows commands and the VM console.

BUILD	:= $(CURDIR)/build
ABI	:= $(shell cat $(BUILD)/vm/abi 2>/dev/null)
ifneq ($(ABI),)
KDIR	?= /usr/src/linux-headers-$(ABI)-amd64
else
KDIR	?= /lib/modules/$(shell uname -r)/build
endif
HAVE_KDIR := $(wildcard $(KDIR)/Makefile)

V	?= 0
# Not KDIR: a sub-make run after deps must compute it from the new ABI.
export V
ifneq ($(V),1)
MAKEFLAGS += --no-print-directory -s
endif

# Other engineers' subdirectories may not have a Makefile yet.
subdir = $(if $(wildcard $(1)/Makefile),$(MAKE) -C $(1) $(2), \
	   echo "make: $(1)/Makefile missing, $(1) skipped" >&2)

all: lib tools daemon selftests examples $(if $(HAVE_KDIR),module)

# One version for the library, the packages and the DKMS tree.
VERSION	:= $(shell sed -n 's/^VERSION[[:space:]]*:= *//p' lib/Makefile)

deps:
	scripts/vm/deps.sh

ksrc:
	scripts/vm/ksrc.sh

lib:
	+$(call subdir,lib)

tools: lib hog
	+$(call subdir,tools)

# membrokerd; its sanitizer builds are made by check
daemon: lib
	+$(call subdir,daemon)

# mb-hog needs only libc: the VM tests and the demo can have it even
# while the rest of tools/ waits for lib/.
hog:
	+$(call subdir,tools,$(BUILD)/tools/mb-hog)

selftests: ksrc
	+$(MAKE) -C selftests/membroker
	+$(MAKE) -C selftests/membroker SAN=asan
	+$(MAKE) -C selftests/membroker SAN=tsan
	+$(call subdir,selftests/lib)
	+$(call subdir,selftests/tools)
	+$(call subdir,selftests/daemon)

module:
	+$(MAKE) -C kmod KDIR=$(KDIR)

# The SQLite example, static for the VM's demo scenario
examples: lib
	+$(MAKE) -C examples/sqlite-cache static

# deps first, then a fresh make: KDIR depends on the ABI deps.sh records.
# The module is required here: kernel tests that skip prove nothing.
# The build's chatter (linker notes about static glibc, Kbuild) goes to
# build/build.log unless V=1 or it fails.
check: deps
ifeq ($(V),1)
	+$(MAKE) all module
else
	@mkdir -p $(BUILD)
	+@$(MAKE) all module >$(BUILD)/build.log 2>&1 || \
		{ tail -n 40 $(BUILD)/build.log; echo "make: build failed," \
		  "see build/build.log" >&2; exit 1; }
endif
	scripts/check.sh

# The other kernels (scripts/vm/README.md): their first run fetches them
# and makes a Debian 13 build root, minutes that would take make check
# past its budget.  The summary line counts make check's results too.
check-kernels: deps
ifeq ($(V),1)
	+$(MAKE) selftests
else
	@mkdir -p $(BUILD)
	+@$(MAKE) selftests >$(BUILD)/build-kernels.log 2>&1 || \
		{ tail -n 40 $(BUILD)/build-kernels.log; echo "make: build" \
		  "failed, see build/build-kernels.log" >&2; exit 1; }
endif
	scripts/check.sh kernels

# The module's selftests on the debug kernel (scripts/stress.sh): any
# report in its kernel log fails the run.  Its first run builds the
# kernel (cached in build/vm/kernel-6.1-debug/), far too long for check.
stress: deps
ifeq ($(V),1)
	+$(MAKE) selftests hog
else
	@mkdir -p $(BUILD)
	+@$(MAKE) selftests hog >$(BUILD)/build-stress.log 2>&1 || \
		{ tail -n 40 $(BUILD)/build-stress.log; echo "make: build" \
		  "failed, see build/build-stress.log" >&2; exit 1; }
endif
	scripts/stress.sh

# Figures, not tests: the host benches, then the VM's notify_latency
# (bench/README.md).  No threshold is checked; a broken result fails.
bench: deps
	+$(MAKE) lib module
	+$(MAKE) -C bench all
	+$(MAKE) -C bench run
	bench/vm.sh
	+$(MAKE) -C daemon programs
	bench/daemon_latency.py
	bench/daemon_vm.sh
	+$(MAKE) tools selftests
	bench/sys_vm.sh
.PHONY: bench

# Issue 12's benches: tails of detection latency, the outcome for an
# application, the cost, the library's scale (bench/perf.sh, about an
# hour under TCG); build/bench/*.json and build/bench/summary.md.
perf: deps
	+$(MAKE) lib module
	bench/perf.sh
.PHONY: perf

lint: deps ksrc
	scripts/lint.sh

# The build's chatter goes to build/build.log, as for check.
demo: deps
ifeq ($(V),1)
	+$(MAKE) selftests tools examples module
else
	@mkdir -p $(BUILD)
	+@$(MAKE) selftests tools examples module >$(BUILD)/build.log 2>&1 || \
		{ tail -n 40 $(BUILD)/build.log; echo "make: build failed," \
		  "see build/build.log" >&2; exit 1; }
endif
	@scripts/vm/demo.sh

# ---- install ----
# Command-line variables reach the sub-makes by themselves; these are the
# ones the top level installs with.  DKMS wants its source trees in
# /usr/src (PREFIX=/usr); the examples are documentation.
PREFIX	?= /usr/local
DATADIR	?= $(PREFIX)/share
DOCDIR	?= $(DATADIR)/doc/membroker
SRCDIR	?= $(PREFIX)/src
DKMSDIR	:= $(SRCDIR)/membroker-$(VERSION)
KMOD_SRCS := $(filter-out %.mod.c,$(wildcard kmod/*.[ch]))

man: ksrc
	+$(MAKE) -C lib man

install: lib man daemon
	+$(MAKE) -C lib install
	+$(MAKE) -C tools SHARED=1 install
	+$(MAKE) -C daemon install
	install -d $(DESTDIR)$(DKMSDIR)/kmod \
		$(DESTDIR)$(DKMSDIR)/include/uapi/linux \
		$(DESTDIR)$(DOCDIR)/examples/modules-load.d \
		$(DESTDIR)$(DOCDIR)/examples/modprobe.d
	install -m 644 Kbuild $(DESTDIR)$(DKMSDIR)/
	sed 's/@VERSION@/$(VERSION)/' kmod/dkms.conf \
		>$(DESTDIR)$(DKMSDIR)/dkms.conf
	install -m 644 $(KMOD_SRCS) kmod/Kbuild kmod/Makefile \
		$(DESTDIR)$(DKMSDIR)/kmod/
	install -m 644 include/uapi/linux/membroker.h \
		$(DESTDIR)$(DKMSDIR)/include/uapi/linux/
	install -m 644 kmod/modules-load.conf \
		$(DESTDIR)$(DOCDIR)/examples/modules-load.d/membroker.conf
	install -m 644 kmod/modprobe.conf \
		$(DESTDIR)$(DOCDIR)/examples/modprobe.d/membroker.conf

uninstall:
	+$(MAKE) -C lib uninstall
	+$(MAKE) -C tools SHARED=1 uninstall
	+$(MAKE) -C daemon uninstall
	rm -rf $(DESTDIR)$(DKMSDIR)
	rm -f $(DESTDIR)$(DOCDIR)/examples/modules-load.d/membroker.conf \
		$(DESTDIR)$(DOCDIR)/examples/modprobe.d/membroker.conf
	-rmdir $(DESTDIR)$(DOCDIR)/examples/modules-load.d \
		$(DESTDIR)$(DOCDIR)/examples/modprobe.d \
		$(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(DOCDIR) 2>/dev/null

# ---- Debian packages (debian/) ----
deb:
	scripts/pkg/deb.sh

# Not in make check: a Debian root per kernel, DKMS builds and a boot
# each, minutes (scripts/pkg/check.sh).  The summary counts these only.
check-packages: deps
ifeq ($(V),1)
	+$(MAKE) selftests
else
	@mkdir -p $(BUILD)
	+@$(MAKE) selftests >$(BUILD)/build-packages.log 2>&1 || \
		{ tail -n 40 $(BUILD)/build-packages.log; echo "make: build" \
		  "failed, see build/build-packages.log" >&2; exit 1; }
endif
	scripts/check.sh packages

clean:
	+$(call subdir,lib,clean)
	+$(call subdir,tools,clean)
	+$(call subdir,daemon,clean)
	+$(MAKE) -C selftests/membroker clean
	+$(MAKE) -C selftests/membroker SAN=asan clean
	+$(MAKE) -C selftests/membroker SAN=tsan clean
	+$(call subdir,selftests/lib,clean)
	+$(call subdir,selftests/tools,clean)
	+$(call subdir,selftests/daemon,clean)
	+$(MAKE) -C examples/sqlite-cache clean
	+$(if $(HAVE_KDIR),$(MAKE) -C kmod KDIR=$(KDIR) clean)
	rm -rf $(BUILD)

.PHONY: all deps ksrc lib tools daemon hog selftests module examples check \
	check-kernels stress lint demo man install uninstall deb check-packages \
	clean
