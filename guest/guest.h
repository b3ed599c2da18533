/*
 * The faultline test guest: a freestanding 64-bit program that the monitor
 * enters directly on every vCPU. It reads its parameters from the device
 * tree, runs one named workload on every vCPU (each on its own slice of
 * memory) and reports through the serial port and the exit device.
 */
#ifndef FAULTLINE_GUEST_H
#define FAULTLINE_GUEST_H

#define GUEST_MAX_CPUS	   64
#define GUEST_STACK_SHIFT  14 /* 16 KiB per vCPU */
#define GUEST_PERCPU_SHIFT 7  /* 128 bytes per vCPU */

/* Guest exit statuses (0-63 pass through the monitor unchanged). */
#define GUEST_EXIT_OK	  0
#define GUEST_EXIT_VERIFY 1 /* a workload found wrong data */
#define GUEST_EXIT_ARGS	  2 /* bad or missing guest arguments */
#define GUEST_EXIT_NOMEM  3 /* the workload does not fit in RAM */
#define GUEST_EXIT_FDT	  4 /* the device tree is unusable */

#ifndef __ASSEMBLER__
#include "order.h"
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define PAGE_SIZE      4096UL
#define ALIGN_UP(x, a) (((x) + (a)-1) & ~((uint64_t)(a)-1))

struct percpu {
	uint64_t self;
	uint64_t reserved[4];
	uint64_t canary; /* %fs:0x28 */
	uint64_t index;
} __attribute__((aligned(1 << GUEST_PERCPU_SHIFT)));

/* What a workload sees. Read-only after vCPU 0 parsed the device tree. */
struct guest {
	const void *fdt;
	uint32_t ncpus;
	uint16_t exit_port;
	uint16_t clone_port; /* faultline,clone; 0: none, the clone number is 0 */
	uint64_t ram_start;  /* first byte after the image */
	uint64_t ram_end;    /* end of the first memory bank */
	const char *cmdline;
};

struct workload {
	const char *name;
	/* Runs on every vCPU; returns a guest exit status. */
	int (*run)(const struct guest *g, uint32_t cpu);
};

extern const struct workload workloads[];
extern struct guest the_guest;

/*
 * trap.c: load an IDT with a machine-check handler and, when @mce, turn
 * machine checks on (CR4.MCE). Every vCPU, before its workload.
 */
void trap_init(uint32_t cpu, int mce);

/* console.c */
void console_init(uint16_t port);
int gprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void console_lock(void);
void console_unlock(void);

/* main.c */
const char *guest_arg(const struct guest *g, const char *key);
int guest_arg_u64(const struct guest *g, const char *key, uint64_t def, uint64_t *out);
void guest_exit(const struct guest *g, int status) __attribute__((noreturn));

/*
 * main.c: entry @index of the "reg" of the first node compatible with
 * @compatible (64-bit GPA and size). 0, or -1 when there is none.
 */
int fdt_mmio(const struct guest *g, const char *compatible, int index, uint64_t *gpa,
	     uint64_t *size);

/* workloads.c: helpers the workloads share. */
/* A permutation of 0..n-1: i -> (i * stride + offset) mod n, gcd(stride, n) = 1. */
/* The word a touch writes at @gpa. */
uint64_t pattern(uint64_t gpa);
/* Guest argument @key is @a (or absent: *is_b = 0) or @b (*is_b = 1); -1 otherwise. */
int guest_choice(const struct guest *g, const char *key, const char *a, const char *b, int *is_b);

/* bench.c: the timing workloads of `faultline bench`. */
int bench_workload(const struct guest *g, uint32_t cpu);

/* devices.c: workloads on the BAR devices. */
int shm_workload(const struct guest *g, uint32_t cpu);
int vram_workload(const struct guest *g, uint32_t cpu);
int dedup_workload(const struct guest *g, uint32_t cpu);

/* lib.c */
/* CRC-32 (IEEE 802.3, as zlib and `busybox crc32` compute it) of @len bytes. */
uint32_t crc32_of(const volatile void *p, uint64_t len);
/* Continue a CRC-32 (0 to start) over @len more bytes, as zlib's crc32(). */
uint32_t crc32_update(uint32_t crc, const volatile void *p, uint64_t len);
void *memset(void *s, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
unsigned long strtoul(const char *s, char **end, int base);
int vsnprintf_(char *buf, size_t len, const char *fmt, va_list ap);

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* Which clone of a snapshot this guest is (faultline run --clone). */
static inline uint32_t guest_clone(const struct guest *g)
{
	return g->clone_port ? inl(g->clone_port) : 0;
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;

	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return (uint64_t)hi << 32 | lo;
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}

static inline __attribute__((noreturn)) void halt_forever(void)
{
	for (;;)
		__asm__ volatile("cli; hlt" ::: "memory");
}
#endif
#endif
