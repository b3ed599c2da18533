/*
 * Dispatch of KVM exits. Every exit reason is named; the ones the monitor
 * serves (port I/O, MMIO, HLT, system events) go to their handler, the
 * crash reasons (SHUTDOWN, FAIL_ENTRY, INTERNAL_ERROR) stop the VM with
 * their sub-codes, and any other reason stops the VM naming the reason,
 * vCPU and RIP. Nothing is resumed blindly.
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "lib/log.h"
#include "lib/status.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/vm/vm.h"

/* Newer than the kernel headers we build with. */
#define FL_KVM_EXIT_LOONGARCH_IOCSR 38
#define FL_KVM_EXIT_MEMORY_FAULT    39
#define FL_KVM_EXIT_TDX		    40

static const char *const exit_names[] = {
	[KVM_EXIT_UNKNOWN] = "KVM_EXIT_UNKNOWN",
	[KVM_EXIT_EXCEPTION] = "KVM_EXIT_EXCEPTION",
	[KVM_EXIT_IO] = "KVM_EXIT_IO",
	[KVM_EXIT_HYPERCALL] = "KVM_EXIT_HYPERCALL",
	[KVM_EXIT_DEBUG] = "KVM_EXIT_DEBUG",
	[KVM_EXIT_HLT] = "KVM_EXIT_HLT",
	[KVM_EXIT_MMIO] = "KVM_EXIT_MMIO",
	[KVM_EXIT_IRQ_WINDOW_OPEN] = "KVM_EXIT_IRQ_WINDOW_OPEN",
	[KVM_EXIT_SHUTDOWN] = "KVM_EXIT_SHUTDOWN",
	[KVM_EXIT_FAIL_ENTRY] = "KVM_EXIT_FAIL_ENTRY",
	[KVM_EXIT_INTR] = "KVM_EXIT_INTR",
	[KVM_EXIT_SET_TPR] = "KVM_EXIT_SET_TPR",
	[KVM_EXIT_TPR_ACCESS] = "KVM_EXIT_TPR_ACCESS",
	[KVM_EXIT_S390_SIEIC] = "KVM_EXIT_S390_SIEIC",
	[KVM_EXIT_S390_RESET] = "KVM_EXIT_S390_RESET",
	[KVM_EXIT_DCR] = "KVM_EXIT_DCR",
	[KVM_EXIT_NMI] = "KVM_EXIT_NMI",
	[KVM_EXIT_INTERNAL_ERROR] = "KVM_EXIT_INTERNAL_ERROR",
	[KVM_EXIT_OSI] = "KVM_EXIT_OSI",
	[KVM_EXIT_PAPR_HCALL] = "KVM_EXIT_PAPR_HCALL",
	[KVM_EXIT_S390_UCONTROL] = "KVM_EXIT_S390_UCONTROL",
	[KVM_EXIT_WATCHDOG] = "KVM_EXIT_WATCHDOG",
	[KVM_EXIT_S390_TSCH] = "KVM_EXIT_S390_TSCH",
	[KVM_EXIT_EPR] = "KVM_EXIT_EPR",
	[KVM_EXIT_SYSTEM_EVENT] = "KVM_EXIT_SYSTEM_EVENT",
	[KVM_EXIT_S390_STSI] = "KVM_EXIT_S390_STSI",
	[KVM_EXIT_IOAPIC_EOI] = "KVM_EXIT_IOAPIC_EOI",
	[KVM_EXIT_HYPERV] = "KVM_EXIT_HYPERV",
	[KVM_EXIT_ARM_NISV] = "KVM_EXIT_ARM_NISV",
	[KVM_EXIT_X86_RDMSR] = "KVM_EXIT_X86_RDMSR",
	[KVM_EXIT_X86_WRMSR] = "KVM_EXIT_X86_WRMSR",
	[KVM_EXIT_DIRTY_RING_FULL] = "KVM_EXIT_DIRTY_RING_FULL",
	[KVM_EXIT_AP_RESET_HOLD] = "KVM_EXIT_AP_RESET_HOLD",
	[KVM_EXIT_X86_BUS_LOCK] = "KVM_EXIT_X86_BUS_LOCK",
	[KVM_EXIT_XEN] = "KVM_EXIT_XEN",
	[KVM_EXIT_RISCV_SBI] = "KVM_EXIT_RISCV_SBI",
	[KVM_EXIT_RISCV_CSR] = "KVM_EXIT_RISCV_CSR",
	[KVM_EXIT_NOTIFY] = "KVM_EXIT_NOTIFY",
	[FL_KVM_EXIT_LOONGARCH_IOCSR] = "KVM_EXIT_LOONGARCH_IOCSR",
	[FL_KVM_EXIT_MEMORY_FAULT] = "KVM_EXIT_MEMORY_FAULT",
	[FL_KVM_EXIT_TDX] = "KVM_EXIT_TDX",
};

const char *vcpu__exit_name(uint32_t reason)
{
	if (reason < sizeof(exit_names) / sizeof(exit_names[0]) && exit_names[reason])
		return exit_names[reason];
	return "unknown";
}

static const char *internal_error_name(uint32_t suberror)
{
	switch (suberror) {
	case KVM_INTERNAL_ERROR_EMULATION: return "instruction emulation failed";
	case KVM_INTERNAL_ERROR_SIMUL_EX: return "exception while delivering an exception";
	case KVM_INTERNAL_ERROR_DELIVERY_EV: return "event delivery failed";
	case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON: return "unexpected exit reason";
	default: return "unknown suberror";
	}
}

#define VCPU_STOP(vcpu, status, fmt, ...)                                                          \
	vm__stop((vcpu)->vm, status, fmt " (vCPU %u, RIP 0x%" PRIx64 ")", ##__VA_ARGS__,           \
		 (vcpu)->id, vcpu__rip(vcpu))

#define VCPU_UNCLAIMED_REPORTS 8 /* per bus; --stats counts them all */

/*
 * An access no device claims: counted by the bus, reported for the first
 * few, and the guest goes on (a read found all ones). A device that
 * rejects an access stops the VM naming it.
 */
static bool vcpu_bus_error(struct vcpu *vcpu, struct bus *bus, int ret, uint64_t addr, unsigned len,
			   bool is_write, const char *dev)
{
	bool pio = bus == &vcpu->vm->pio_bus;
	const char *space = pio ? "port I/O" : "MMIO", *at = pio ? "port" : "GPA";
	const char *dir = is_write ? "write" : "read";
	uint64_t n;

	if (ret == -ENOENT) {
		n = __atomic_load_n(&bus->unclaimed, __ATOMIC_RELAXED);
		/* Linux probes ports for hardware a microVM lacks: count those, quietly. */
		if (n <= VCPU_UNCLAIMED_REPORTS && !(pio && vcpu->vm->boot_linux))
			pr_err("unclaimed %s %s: no device at %s 0x%" PRIx64 ", %u bytes; %s (vCPU "
			       "%u, RIP 0x%" PRIx64 ")%s",
			       space, dir, at, addr, len,
			       is_write ? "the write is dropped" : "the read returns all ones",
			       vcpu->id, vcpu__rip(vcpu),
			       n == VCPU_UNCLAIMED_REPORTS
				       ? "; further ones are only counted (--stats)"
				       : "");
		return true;
	}
	VCPU_STOP(vcpu, FL_EXIT_GUEST,
		  "%s %s rejected by device %s: %s (%s 0x%" PRIx64 ", %u bytes)", space, dir, dev,
		  strerror(-ret), at, addr, len);
	return false;
}

static bool vcpu_handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;
	uint64_t end;
	uint32_t i;

	if (run->io.size != 1 && run->io.size != 2 && run->io.size != 4)
		return VCPU_STOP(vcpu, FL_EXIT_INTERNAL, "KVM_EXIT_IO with size %u", run->io.size),
		       false;
	if (__builtin_mul_overflow((uint64_t)run->io.size, run->io.count, &end) ||
	    __builtin_add_overflow(end, run->io.data_offset, &end) || end > vcpu->vm->kvm.run_size)
		return VCPU_STOP(vcpu, FL_EXIT_INTERNAL, "KVM_EXIT_IO data outside kvm_run"), false;
	for (i = 0; i < run->io.count; i++) {
		uint8_t *data = (uint8_t *)run + run->io.data_offset + i * run->io.size;
		const char *dev;
		int ret;

		ret = bus__access(&vcpu->vm->pio_bus, run->io.port, data, run->io.size, is_write,
				  &dev);
		if (ret && !vcpu_bus_error(vcpu, &vcpu->vm->pio_bus, ret, run->io.port,
					   run->io.size, is_write, dev))
			return false;
	}
	return true;
}

enum vcpu_fault vcpu__serve_fault(struct vcpu *vcpu, uint64_t gpa, bool write,
				  enum fault_source source)
{
	struct mmu *mmu = &vcpu->vm->mmu;
	struct fault_ctx ctx;

	fault_ctx__init(&ctx, mmu, gpa, write ? FAULT_WRITE : FAULT_READ, source, (int)vcpu->id,
			FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_INTERRUPTIBLE);
	if (!ctx.hva)
		return VCPU_FAULT_STOP;
	if (mmu__handle_fault(&ctx) & FAULT_DONE)
		return VCPU_FAULT_DONE;
	return ctx.resume ? VCPU_FAULT_RESUME : VCPU_FAULT_STOP;
}

/*
 * Some hosts (PVM) report an access to RAM they could not serve as an MMIO
 * exit. Resuming would drop a write or invent a read: serve the page
 * through the fault path, then complete the access on it.
 */
static bool vcpu_mmio_in_ram(struct vcpu *vcpu, uint64_t gpa, uint8_t *data, unsigned len,
			     bool is_write)
{
	struct mmu *mmu = &vcpu->vm->mmu;
	uint64_t last = gpa + len - 1;
	enum vcpu_fault f;
	void *p;

	f = vcpu__serve_fault(vcpu, gpa, is_write, FAULT_SRC_MMIO_EXIT);
	if (f == VCPU_FAULT_DONE && (last ^ gpa) >= MMU_PAGE_SIZE)
		f = vcpu__serve_fault(vcpu, last, is_write, FAULT_SRC_MMIO_EXIT);
	if (f == VCPU_FAULT_RESUME) {
		/* The guest takes a machine check for it; a read finds all ones. */
		if (!is_write)
			memset(data, 0xff, len);
		return true;
	}
	if (f == VCPU_FAULT_STOP || mmu__access(mmu, gpa, len, &p))
		return false;
	if (is_write)
		memcpy(p, data, len);
	else
		memcpy(data, p, len);
	return true;
}

/*
 * An access to a device BAR: the BAR's nopage machinery serves it; a
 * failure goes to the VM's policy. With a machine check injected, the
 * access is dropped and a read finds all ones.
 */
static bool vcpu_handle_bar(struct vcpu *vcpu, struct bar *bar, uint64_t gpa, uint8_t *data,
			    unsigned len, bool is_write)
{
	struct fault_ctx ctx;
	char why[256];
	fault_t r;

	fault_ctx__init(&ctx, &vcpu->vm->mmu, gpa, is_write ? FAULT_WRITE : FAULT_READ,
			FAULT_SRC_MMIO_EXIT, (int)vcpu->id,
			FAULT_FLAG_ALLOW_RETRY | FAULT_FLAG_INTERRUPTIBLE);
	do {
		ctx.refault = false;
		r = bar__access(bar, &ctx, gpa - bar->gpa, data, len, is_write, why, sizeof(why));
		if (r == FAULT_DONE)
			return true;
		vm__bar_failed(vcpu->vm, &ctx, r, why);
	} while (ctx.refault); /* --on-oom pause: resumed with room */
	if (!ctx.resume)
		return false;
	if (!is_write)
		memset(data, 0xff, len);
	return true;
}

static bool vcpu_handle_mmio(struct vcpu *vcpu)
{
	const struct gpa_region *region;
	struct kvm_run *run = vcpu->run;
	uint64_t gpa = run->mmio.phys_addr;
	const char *dev;
	int ret;

	if (run->mmio.len == 0 || run->mmio.len > sizeof(run->mmio.data))
		return VCPU_STOP(vcpu, FL_EXIT_INTERNAL, "KVM_EXIT_MMIO with length %u",
				 run->mmio.len),
		       false;
	region = gpa_map__find(&vcpu->vm->mmu.map, gpa);
	if (region && region->kind == GPA_RAM &&
	    guest_ram__ptr(&vcpu->vm->mmu.ram, gpa, run->mmio.len))
		return vcpu_mmio_in_ram(vcpu, gpa, run->mmio.data, run->mmio.len,
					run->mmio.is_write);
	if (region && region->kind == GPA_BAR)
		return vcpu_handle_bar(vcpu, region->priv, gpa, run->mmio.data, run->mmio.len,
				       run->mmio.is_write);
	ret = bus__access(&vcpu->vm->mmio_bus, gpa, run->mmio.data, run->mmio.len,
			  run->mmio.is_write, &dev);
	return !ret || vcpu_bus_error(vcpu, &vcpu->vm->mmio_bus, ret, gpa, run->mmio.len,
				      run->mmio.is_write, dev);
}

/* kvm_run.memory_fault (Linux 6.8), newer than our headers. */
struct fl_kvm_memory_fault {
	uint64_t flags;
	uint64_t gpa;
	uint64_t size;
};

#define FL_KVM_MEMORY_EXIT_FLAG_PRIVATE (1ULL << 3)

bool vcpu__handle_memory_fault(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	const struct fl_kvm_memory_fault *mf = (const void *)&run->mmio;

	if (run->exit_reason != FL_KVM_EXIT_MEMORY_FAULT ||
	    (mf->flags & FL_KVM_MEMORY_EXIT_FLAG_PRIVATE) ||
	    !guest_ram__ptr(&vcpu->vm->mmu.ram, mf->gpa, 1))
		return false;
	return vcpu__serve_fault(vcpu, mf->gpa, true, FAULT_SRC_EFAULT) != VCPU_FAULT_STOP;
}

static bool vcpu_handle_system_event(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	switch (run->system_event.type) {
	case KVM_SYSTEM_EVENT_SHUTDOWN: vm__stop(vcpu->vm, 0, NULL); return false;
	case KVM_SYSTEM_EVENT_RESET:
		VCPU_STOP(vcpu, FL_EXIT_GUEST,
			  "guest asked for a reset, which faultline does not do");
		return false;
	case KVM_SYSTEM_EVENT_CRASH:
		VCPU_STOP(vcpu, FL_EXIT_CRASH, "guest crashed: KVM_SYSTEM_EVENT_CRASH");
		return false;
	default:
		VCPU_STOP(vcpu, FL_EXIT_GUEST, "unhandled KVM_EXIT_SYSTEM_EVENT type %u",
			  run->system_event.type);
		return false;
	}
}

static bool vcpu_handle_internal_error(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	char data[160] = "";
	uint32_t i, n = run->internal.ndata;
	size_t used = 0;

	if (n > sizeof(run->internal.data) / sizeof(run->internal.data[0]))
		n = sizeof(run->internal.data) / sizeof(run->internal.data[0]);
	for (i = 0; i < n && used < sizeof(data); i++)
		used += (size_t)snprintf(data + used, sizeof(data) - used, " 0x%llx",
					 (unsigned long long)run->internal.data[i]);
	VCPU_STOP(vcpu, FL_EXIT_CRASH,
		  "guest crashed: KVM_EXIT_INTERNAL_ERROR suberror %u, %s; data:%s",
		  run->internal.suberror, internal_error_name(run->internal.suberror),
		  n ? data : " none");
	return false;
}

bool vcpu__handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	switch (run->exit_reason) {
	case KVM_EXIT_IO: return vcpu_handle_io(vcpu);
	case KVM_EXIT_MMIO: return vcpu_handle_mmio(vcpu);
	case KVM_EXIT_INTR: return true; /* a kick; the loop checks whether to stop */
	case KVM_EXIT_HLT: vm__vcpu_halted(vcpu->vm, vcpu->id); return false;
	case KVM_EXIT_SHUTDOWN:
		VCPU_STOP(vcpu, FL_EXIT_CRASH, "guest crashed: triple fault (KVM_EXIT_SHUTDOWN)");
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		VCPU_STOP(vcpu, FL_EXIT_CRASH,
			  "guest crashed: KVM_EXIT_FAIL_ENTRY, hardware entry failure reason "
			  "0x%llx on host CPU %u",
			  (unsigned long long)run->fail_entry.hardware_entry_failure_reason,
			  run->fail_entry.cpu);
		return false;
	case KVM_EXIT_INTERNAL_ERROR: return vcpu_handle_internal_error(vcpu);
	case KVM_EXIT_SYSTEM_EVENT: return vcpu_handle_system_event(vcpu);
	default:
		VCPU_STOP(vcpu, FL_EXIT_GUEST, "unhandled KVM exit %s (%u)",
			  vcpu__exit_name(run->exit_reason), run->exit_reason);
		return false;
	}
}
