/*
 * Traps of the test guest: only the machine check (#MC, vector 18) has a
 * handler. Every other exception meets a not-present gate and ends in a
 * triple fault, which the monitor reports as a crash. The #MC handler does
 * what a guest kernel would do for an action-required memory error in a
 * process (report the page, end the "process"): it prints the GPA from the
 * bank that holds the error and ends the workload with status 0.
 */
#include "guest.h"

#define MC_VECTOR      18
#define KERNEL_CS      0x08
#define CR4_MCE	       (1UL << 6)
#define MSR_MCG_CAP    0x179
#define MSR_MC0_STATUS 0x401 /* bank i: STATUS 0x401 + 4i, ADDR 0x402 + 4i */
#define MCI_VAL	       (1ULL << 63)
#define MCI_ADDRV      (1ULL << 58)

struct idt_gate {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t ist;
	uint8_t type; /* 0x8e: present, DPL 0, 64-bit interrupt gate */
	uint16_t offset_mid;
	uint32_t offset_hi;
	uint32_t reserved;
} __attribute__((packed));

static struct idt_gate idt[MC_VECTOR + 1] __attribute__((aligned(16)));

void machine_check_entry(void);
void guest_machine_check(void) __attribute__((noreturn, used));

__asm__(".text\n"
	".globl machine_check_entry\n"
	"machine_check_entry:\n"
	"	and $-16, %rsp\n"
	"	call guest_machine_check\n");

void guest_machine_check(void)
{
	uint64_t banks = rdmsr(MSR_MCG_CAP) & 0xff, i, cpu;

	__asm__ volatile("mov %%fs:0x30, %0" : "=r"(cpu));
	for (i = 0; i < banks; i++) {
		uint64_t status = rdmsr(MSR_MC0_STATUS + 4 * (uint32_t)i);

		if (!(status & MCI_VAL))
			continue;
		gprintf("guest: machine check on vCPU %lu: GPA 0x%lx (bank %lu, status 0x%lx)\n",
			cpu, status & MCI_ADDRV ? rdmsr(MSR_MC0_STATUS + 4 * (uint32_t)i + 1) : 0,
			i, status);
		guest_exit(&the_guest, GUEST_EXIT_OK);
	}
	gprintf("guest: machine check on vCPU %lu with no valid bank\n", cpu);
	guest_exit(&the_guest, GUEST_EXIT_VERIFY);
}

void trap_init(uint32_t cpu, int mce)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = {sizeof(idt) - 1, (uint64_t)idt};
	uint64_t entry = (uint64_t)machine_check_entry, cr4;

	if (cpu == 0) {
		idt[MC_VECTOR] = (struct idt_gate){
			.offset_lo = (uint16_t)entry,
			.selector = KERNEL_CS,
			.type = 0x8e,
			.offset_mid = (uint16_t)(entry >> 16),
			.offset_hi = (uint32_t)(entry >> 32),
		};
	} else {
		while (!__atomic_load_n(&idt[MC_VECTOR].type, __ATOMIC_ACQUIRE))
			cpu_relax();
	}
	__asm__ volatile("lidt %0" : : "m"(idtr));
	if (!mce)
		return; /* guest-arg mce=off: a guest that cannot take machine checks */
	__asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
	__asm__ volatile("mov %0, %%cr4" : : "r"(cr4 | CR4_MCE));
}
