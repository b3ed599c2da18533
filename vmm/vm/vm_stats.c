/*
 * --stats: the fault engine's, the devices' and the buses' counters, the
 * host's memory and KVM's binary stats, as text or one JSON object.
 */
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/inject.h"
#include "lib/log.h"
#include "lib/status.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/sys/host_mem.h"
#include "vmm/vm/vm.h"

#define VM_PROC_MAX (4U << 20) /* bytes read of a /proc file at most */

void vm__counter_text(FILE *out, const char *name, const uint64_t *v, const char *help)
{
	fprintf(out, "  %-24s %12llu  %s\n", name,
		(unsigned long long)__atomic_load_n(v, __ATOMIC_RELAXED), help);
}

void vm__counter_json(json_t *o, const char *name, const uint64_t *v)
{
	json_object_set_new(o, name,
			    json_integer((json_int_t)__atomic_load_n(v, __ATOMIC_RELAXED)));
}

/* Where the process's time went so far: seconds of setup, guest, stop, and in all. */
struct vm_times {
	double setup, guest, stop, total;
};

static void vm_read_times(const struct vm *vm, struct vm_times *t)
{
	uint64_t now = mmu__now_ns();
	uint64_t run = __atomic_load_n(&vm->run_ns, __ATOMIC_ACQUIRE);
	uint64_t stopped = __atomic_load_n(&vm->stopped_ns, __ATOMIC_ACQUIRE);
	uint64_t ended = __atomic_load_n(&vm->ended_ns, __ATOMIC_ACQUIRE);
	uint64_t setup_end = run ? run : stopped ? stopped : now;

	t->setup = (double)(setup_end - vm->start_ns) / 1e9;
	t->guest = run ? (double)((stopped ? stopped : now) - run) / 1e9 : 0.0;
	t->stop = ended && stopped ? (double)(ended - stopped) / 1e9 : 0.0;
	t->total = (double)(now - vm->start_ns) / 1e9;
}

static json_t *vm_times_json(const struct vm *vm)
{
	struct vm_times t;

	vm_read_times(vm, &t);
	return json_pack("{s:f,s:f,s:f,s:f}", "setup", t.setup, "guest", t.guest, "stop", t.stop,
			 "total", t.total);
}

/* The whole of a /proc file opened before (@fd), NUL-terminated; NULL with -errno in *err. */
static char *vm_read_proc(int fd, const char *site, int *err)
{
	size_t len = 0, cap = 16384;
	char *buf = malloc(cap), *bigger;
	ssize_t n;

	*err = inject__check(site);
	while (buf && !*err) {
		n = pread(fd, buf + len, cap - len - 1, (off_t)len);
		if (n < 0) {
			*err = errno;
		} else if (n == 0) {
			buf[len] = '\0';
			return buf;
		} else if ((len += (size_t)n) < cap - 1) {
			continue;
		} else if (cap >= VM_PROC_MAX) {
			*err = EFBIG;
		} else if (!(bigger = realloc(buf, cap * 2))) {
			*err = ENOMEM;
		} else {
			buf = bigger;
			cap *= 2;
		}
	}
	*err = buf ? *err : ENOMEM;
	free(buf);
	*err = -*err;
	return NULL;
}

/*
 * What the VM costs the host in memory now (vmm/sys/host_mem.h). Returns 0, or
 * -errno when it cannot be known (@m is then untouched).
 */
static int vm_host_mem(struct vm *vm, struct host_mem *m)
{
	struct host_mem_status s;
	uint64_t guest = 0, shared = 0, anon = 0;
	char *text;
	int err;

	if (vm->status_fd < 0)
		return -vm->status_err;
	text = vm_read_proc(vm->status_fd, "pread.proc", &err);
	if (!text)
		return err;
	err = host_mem__parse_status(text, &s);
	free(text);
	if (err)
		return err;
	/* Anonymous pages of the guest view: the kernel's, or a shared file's copies. */
	if (vm->mmu.cfg.handler == MMU_HANDLER_KERNEL || vm->mmu.shared) {
		if (vm->smaps_fd < 0)
			return -vm->smaps_err;
		text = vm_read_proc(vm->smaps_fd, "pread.proc", &err);
		if (!text)
			return err;
		err = host_mem__parse_smaps_anon(text, (uintptr_t)vm->mmu.ram.host, &anon);
		free(text);
		guest = anon * 1024;
	} else {
		err = mmu__host_bytes(&vm->mmu, &guest);
	}
	if (!err && vm->dedup)
		err = dedup__shared_bytes(vm->dedup, &shared);
	if (err)
		return err;
	host_mem__combine(&s, (guest + shared) / 1024, anon, m);
	return 0;
}

static void vm_host_mem_json(struct vm *vm, json_t *root)
{
	struct host_mem m;
	int err = vm_host_mem(vm, &m);

	if (err) {
		json_object_set_new(root, "host_memory_kib", json_null());
		json_object_set_new(root, "host_memory_error", json_string(strerror(-err)));
		return;
	}
	json_object_set_new(root, "host_memory_kib",
			    json_pack("{s:I,s:I,s:I,s:I}", "guest", (json_int_t)m.guest_kib,
				      "monitor", (json_int_t)m.monitor_kib, "page_tables",
				      (json_int_t)m.page_tables_kib, "program",
				      (json_int_t)m.program_kib));
}

static void vm_host_mem_text(struct vm *vm, FILE *out)
{
	struct host_mem m;
	int err = vm_host_mem(vm, &m);

	if (err) {
		fprintf(out, "  %-24s %12s  host memory cannot be read: %s\n", "host_memory", "-",
			strerror(-err));
		return;
	}
	fprintf(out, "  %-24s %12llu  KiB of host memory holding guest RAM\n", "host_guest_kib",
		(unsigned long long)m.guest_kib);
	fprintf(out, "  %-24s %12llu  KiB of the monitor's own memory (heap, stacks, buffers)\n",
		"host_monitor_kib", (unsigned long long)m.monitor_kib);
	fprintf(out, "  %-24s %12llu  KiB of the process's page tables\n", "host_page_tables_kib",
		(unsigned long long)m.page_tables_kib);
	fprintf(out, "  %-24s %12llu  KiB of the program's file pages, shared between VMs\n",
		"host_program_kib", (unsigned long long)m.program_kib);
}

/* "kvm": KVM's own counters, or null and "kvm_error" saying why there are none. */
static void vm_kvm_stats_json(struct vm *vm, json_t *root)
{
	json_t *kvm = kvm_stats__json(&vm->kvm_stats);

	json_object_set_new(root, "kvm", kvm ?: json_null());
	if (!kvm)
		json_object_set_new(root, "kvm_error", json_string(vm->kvm_stats.why));
}

json_t *vm__stats_json(struct vm *vm)
{
	uint64_t pio = __atomic_load_n(&vm->pio_bus.unclaimed, __ATOMIC_RELAXED);
	uint64_t mmio = __atomic_load_n(&vm->mmio_bus.unclaimed, __ATOMIC_RELAXED);
	unsigned i;
	struct mmu_pages pages;
	json_t *root, *devices;

	mmu__pages(&vm->mmu, &pages);
	root = mmu_stats__json(&vm->mmu.stats, &pages, vm->nr_vcpus);
	devices = json_object();
	if (!root || !devices) {
		json_decref(root);
		json_decref(devices);
		return NULL;
	}
	json_object_set_new(root, "devices", devices); /* filled below, in its place */
	if (vm->dedup)
		json_object_set_new(root, "dedup", dedup__json(vm->dedup));
	json_object_set_new(
		root, "unclaimed",
		json_pack("{s:I,s:I}", "pio", (json_int_t)pio, "mmio", (json_int_t)mmio));
	json_object_set_new(root, "tsc_khz", json_integer(vm->tsc_khz));
	json_object_set_new(root, "times_s", vm_times_json(vm));
	if (vm->restored)
		json_object_set_new(root, "restore",
				    json_pack("{s:I,s:b}", "backing_reads_before_run",
					      (json_int_t)vm->reads_before_run, "memory_shared",
					      vm->mmu.shared));
	vm_host_mem_json(vm, root);
	vm_kvm_stats_json(vm, root);
	for (i = 0; i < vm->nr_created; i++)
		if (vm->board->devices[i]->stats_json)
			vm->board->devices[i]->stats_json(vm, root, devices);
	return root;
}

void vm__print_stats(struct vm *vm, bool json, FILE *out)
{
	uint64_t pio = __atomic_load_n(&vm->pio_bus.unclaimed, __ATOMIC_RELAXED);
	uint64_t mmio = __atomic_load_n(&vm->mmio_bus.unclaimed, __ATOMIC_RELAXED);
	unsigned i;
	struct mmu_pages pages;
	struct vm_times t;
	json_t *root;

	if (json) {
		root = vm__stats_json(vm);
		if (root && json_dumpf(root, out, JSON_COMPACT | JSON_PRESERVE_ORDER) == 0)
			fputc('\n', out);
		json_decref(root);
		return;
	}
	mmu__pages(&vm->mmu, &pages);
	mmu_stats__print_text(&vm->mmu.stats, &pages, vm->nr_vcpus, out);
	fprintf(out, "  %-24s %12llu  port I/O accesses no device claimed\n", "unclaimed_pio",
		(unsigned long long)pio);
	fprintf(out, "  %-24s %12llu  MMIO accesses no device claimed\n", "unclaimed_mmio",
		(unsigned long long)mmio);
	fprintf(out, "  %-24s %12u  the guest's TSC frequency in kHz (0: unknown)\n", "tsc_khz",
		vm->tsc_khz);
	if (vm->restored)
		fprintf(out,
			"  %-24s %12llu  reads from the snapshot's memory before the vCPUs ran\n",
			"backing_reads_before_run", (unsigned long long)vm->reads_before_run);
	if (vm->restored)
		fprintf(out,
			"  %-24s %12d  1: the memory file's pages are mapped, shared with its "
			"other restores\n",
			"memory_shared", vm->mmu.shared);
	vm_read_times(vm, &t);
	fprintf(out, "  %-24s %12.3f  seconds from faultline's start to the vCPUs'\n", "setup_s",
		t.setup);
	fprintf(out, "  %-24s %12.3f  seconds the guest ran, until the VM stopped\n", "guest_s",
		t.guest);
	fprintf(out, "  %-24s %12.3f  seconds to stop the vCPU and handler threads\n", "stop_s",
		t.stop);
	fprintf(out, "  %-24s %12.3f  seconds from faultline's start to these statistics\n",
		"total_s", t.total);
	vm_host_mem_text(vm, out);
	kvm_stats__print_text(&vm->kvm_stats, out);
	for (i = 0; i < vm->nr_created; i++)
		if (vm->board->devices[i]->stats_text)
			vm->board->devices[i]->stats_text(vm, out);
	if (vm->dedup)
		dedup__print_text(vm->dedup, out);
}
