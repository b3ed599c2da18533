# faultline: one non-recursive Makefile.
#
#   make            build/faultline, the test guest, the unit tests
#   make run        boot the default Linux microVM (configs/default.json; guest/linux/build)
#   make test       unit tests (plain, ASan+UBSan, TSan), the fuzz targets' regression
#                   corpora and a short fixed fuzz run, and the KVM end-to-end tests
#   make deps       install the Debian packages the build needs (scripts/deps)
#   make bench-dedup  faultline's dedup against the host's KSM (root)
#   make bench-uffd   the fault engine's userfaultfd cost per first touch, without KVM
#   make bench-share  host memory of clones sharing a snapshot's pages against copies, without KVM
#   make bench-seccomp  the seccomp filter's cost per system call on the fast paths
#   make fuzz       fuzz every target for FUZZ_TIME seconds (default 300) from a random seed
#   make format     clang-format the C sources in place

BUILD   := build
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)

CC      ?= gcc
WARN    := -Wall -Wextra -Wformat=2 -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wwrite-strings -Werror
HARDEN  := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fstack-clash-protection \
           -fcf-protection
CFLAGS  := -std=gnu11 -O2 -g $(WARN) $(HARDEN) -I. -DFAULTLINE_VERSION='"$(VERSION)"'
DEPFLAGS = -MMD -MP

# The monitor is linked statically so that it runs unchanged inside the nested
# harness and on hosts without our -dev packages.
MON_LDFLAGS := -static-pie -Wl,-z,relro,-z,now
MON_LIBS    := -lfdt -ljansson -lseccomp -lxxhash -pthread

# The layers, lowest first (docs/hacking.md): lib/, mmu/, devices/, vmm/.
SRC_DIRS := lib mmu devices devices/legacy devices/virtio devices/bar \
            vmm/sys vmm/boot vmm/kvm vmm/vm vmm/api vmm/cmd vmm
LIB_SRCS := $(filter-out vmm/main.c,$(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.c)))
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)

# ---- the monitor ------------------------------------------------------------
$(BUILD)/faultline: $(BUILD)/obj/vmm/main.o $(LIB_OBJS)
	$(CC) $(CFLAGS) -fPIE $(MON_LDFLAGS) -o $@ $^ $(MON_LIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIE $(DEPFLAGS) -c -o $@ $<

# ---- the test guest -----------------------------------------------------------
GUEST_CFLAGS := -std=gnu11 -O2 -g $(WARN) -ffreestanding -fno-pic -fno-pie -mno-red-zone \
                -mcmodel=kernel -mgeneral-regs-only -fstack-protector-strong -fno-builtin -nostdinc \
                -isystem $(shell $(CC) -print-file-name=include) -Iguest/include \
                -idirafter /usr/include
GUEST_SRCS := $(wildcard guest/*.c) guest/start.S
GUEST_OBJS := $(patsubst %,$(BUILD)/guest/obj/%.o,$(basename $(GUEST_SRCS)))
GUEST_ELF  := $(BUILD)/guest/faultline-guest.elf
LIBFDT_A   := $(shell $(CC) -print-file-name=libfdt.a)

$(GUEST_ELF): $(GUEST_OBJS) guest/guest.ld
	$(CC) -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-z,noexecstack \
		-T guest/guest.ld -o $@ $(GUEST_OBJS) $(LIBFDT_A) -lgcc

$(BUILD)/guest/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(GUEST_CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(BUILD)/guest/obj/%.o: %.S
	@mkdir -p $(@D)
	$(CC) $(GUEST_CFLAGS) $(DEPFLAGS) -c -o $@ $<

# ---- unit tests (Check) -------------------------------------------------------
CHECK_LIBS := $(shell pkg-config --libs check 2>/dev/null || echo -lcheck) -lfdt -ljansson -lxxhash -lseccomp \
              -pthread
UNIT_SRCS  := $(wildcard tests/unit/*.c)
UNIT_BIN   := $(BUILD)/tests/unit
UNIT_ASAN  := $(BUILD)/tests/unit-asan
UNIT_TSAN  := $(BUILD)/tests/unit-tsan
SAN_FLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
TSAN_FLAGS := -fsanitize=thread -fno-omit-frame-pointer

$(UNIT_BIN): $(UNIT_SRCS:%.c=$(BUILD)/obj/%.o) $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ $(CHECK_LIBS)

# The sanitizer build compiles every source again into its own tree.
$(UNIT_ASAN): $(UNIT_SRCS:%.c=$(BUILD)/asan/%.o) $(LIB_SRCS:%.c=$(BUILD)/asan/%.o)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN_FLAGS) -o $@ $^ $(CHECK_LIBS)

$(BUILD)/asan/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(filter-out -D_FORTIFY_SOURCE=2,$(CFLAGS)) $(SAN_FLAGS) $(DEPFLAGS) -c -o $@ $<

# ThreadSanitizer, for the fault engine's threads (tests/unit/test_mmu.c).
$(UNIT_TSAN): $(UNIT_SRCS:%.c=$(BUILD)/tsan/%.o) $(LIB_SRCS:%.c=$(BUILD)/tsan/%.o)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(TSAN_FLAGS) -o $@ $^ $(CHECK_LIBS)

$(BUILD)/tsan/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(filter-out -D_FORTIFY_SOURCE=2,$(CFLAGS)) $(TSAN_FLAGS) $(DEPFLAGS) -c -o $@ $<

# ---- fuzz targets (tests/fuzz/, libFuzzer) ------------------------------------------
# clang, because libFuzzer is clang's; every source again, with ASan and UBSan, into
# an archive so that each target links only what it uses. tests/fuzz/run runs them.
FUZZ_CC     := clang
FUZZ_CFLAGS := $(filter-out -D_FORTIFY_SOURCE=2,$(CFLAGS)) -Wno-gnu-variable-sized-type-not-at-end \
               -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all \
               -fno-omit-frame-pointer
FUZZ_NAMES  := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS   := $(FUZZ_NAMES:%=$(BUILD)/fuzz/fuzz-%)
FUZZ_LIB    := $(BUILD)/fuzz/libfaultline.a

$(FUZZ_LIB): $(LIB_SRCS:%.c=$(BUILD)/fuzz/obj/%.o)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/fuzz/fuzz-%: $(BUILD)/fuzz/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ -lfdt -ljansson -lxxhash -lseccomp -pthread

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(DEPFLAGS) -c -o $@ $<

# ---- benchmarks (bench/) ---------------------------------------------------------
BENCH_DEDUP := $(BUILD)/bench/dedup-ksm
BENCH_UFFD  := $(BUILD)/bench/uffd-touch
BENCH_SECCOMP := $(BUILD)/bench/seccomp-cost
BENCH_SHARE := $(BUILD)/bench/uffd-share

# static, as the monitor: they run in the nested harness's L1 and on the performance host
$(BENCH_DEDUP): $(BUILD)/obj/bench/dedup_ksm.o $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIE $(MON_LDFLAGS) -o $@ $^ $(MON_LIBS)

$(BENCH_UFFD): $(BUILD)/obj/bench/uffd_touch.o $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIE $(MON_LDFLAGS) -o $@ $^ $(MON_LIBS)

$(BENCH_SHARE): $(BUILD)/obj/bench/uffd_share.o
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIE $(MON_LDFLAGS) -o $@ $^ $(MON_LIBS)

$(BENCH_SECCOMP): $(BUILD)/obj/bench/seccomp_cost.o $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $^ -lfdt -ljansson -lxxhash -lseccomp -pthread

# ---- test helpers -----------------------------------------------------------------
PTY_RUN := $(BUILD)/tools/pty-run

$(PTY_RUN): tests/kvm/pty_run.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -static -o $@ $<

# ---- top-level targets ----------------------------------------------------------
.DEFAULT_GOAL := all
.PHONY: all deps run test unit unit-asan unit-tsan kvm-test bench-dedup bench-uffd bench-share bench-seccomp \
	fuzz-build fuzz format clean

all: $(BUILD)/faultline $(GUEST_ELF) $(UNIT_BIN) $(BENCH_DEDUP) $(BENCH_UFFD) $(BENCH_SECCOMP) $(BENCH_SHARE) \
	$(PTY_RUN)

deps:
	scripts/deps

run: deps
	$(MAKE) --no-print-directory $(BUILD)/faultline
	guest/linux/build
	scripts/run-default

test: deps
	$(MAKE) --no-print-directory all $(UNIT_ASAN) $(UNIT_TSAN) $(FUZZ_BINS)
	guest/linux/build
	tests/run-all

unit: $(UNIT_BIN)
	$(UNIT_BIN)

unit-asan: $(UNIT_ASAN)
	$(UNIT_ASAN)

unit-tsan: $(UNIT_TSAN)
	TSAN_OPTIONS=halt_on_error=1 $(UNIT_TSAN)

fuzz-build: $(FUZZ_BINS)

FUZZ_TIME ?= 300
fuzz: $(FUZZ_BINS)
	FUZZ_TIME=$(FUZZ_TIME) tests/fuzz/run

kvm-test: $(BUILD)/faultline $(GUEST_ELF) $(PTY_RUN)
	guest/linux/build
	tests/kvm/with-kvm --with build/linux/vmlinux --resume tests/kvm/run

# faultline's dedup against the host's KSM on the same memory (root; docs/benchmarks.md).
bench-dedup: $(BENCH_DEDUP)
	$(BENCH_DEDUP)

bench-uffd: $(BENCH_UFFD)
	$(BENCH_UFFD)

# Clones of one snapshot sharing its pages (MINOR faults, UFFDIO_CONTINUE) against copies (no KVM).
bench-share: $(BENCH_SHARE)
	$(BENCH_SHARE)

# The seccomp filter's cost on the fast paths' system calls (no KVM).
bench-seccomp: $(BENCH_SECCOMP)
	$(BENCH_SECCOMP)

format:
	clang-format -i $(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.[ch])) $(wildcard guest/*.[ch] guest/include/*.h tests/*.h tests/unit/*.[ch] tests/fuzz/*.[ch] bench/*.c)

clean:
	rm -rf $(BUILD)/obj $(BUILD)/asan $(BUILD)/tsan $(BUILD)/guest $(BUILD)/tests $(BUILD)/faultline \
		$(BUILD)/nested $(BUILD)/fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
