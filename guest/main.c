/*
 * Test guest entry: vCPU 0 reads the device tree, every vCPU runs the
 * workload named by the "workload" guest argument, and vCPU 0 reports the
 * worst status through the exit device once all are done.
 */
#include <libfdt.h>

#include "guest.h"

extern char _end[];

unsigned char guest_stacks[GUEST_MAX_CPUS << GUEST_STACK_SHIFT] __attribute__((aligned(4096)));
struct percpu guest_percpu[GUEST_MAX_CPUS];

struct guest the_guest;
static volatile int guest_ready;
static volatile uint32_t cpus_done;
static volatile int worst_status;

void guest_main(const void *fdt, uint64_t cpu, uint64_t ncpus);

const char *guest_arg(const struct guest *g, const char *key)
{
	const char *v;
	int node, len;

	node = fdt_path_offset(g->fdt, "/chosen/guest-args");
	if (node < 0)
		return NULL;
	v = fdt_getprop(g->fdt, node, key, &len);
	if (!v || len < 1 || v[len - 1] != '\0')
		return NULL;
	return v;
}

/* 0 and *out on success (or @def when absent), -1 on a malformed number. */
int guest_arg_u64(const struct guest *g, const char *key, uint64_t def, uint64_t *out)
{
	const char *v = guest_arg(g, key);
	char *end;

	*out = def;
	if (!v)
		return 0;
	*out = strtoul(v, &end, 0);
	if (end == v || *end || *out == ~0UL) {
		gprintf("guest: argument %s=%s is not a number\n", key, v);
		return -1;
	}
	return 0;
}

void guest_exit(const struct guest *g, int status)
{
	outb(g->exit_port, (uint8_t)status);
	halt_forever();
}

static int fdt_pio(const void *fdt, const char *compatible, uint16_t *port)
{
	const fdt32_t *p;
	int node, len;

	node = fdt_node_offset_by_compatible(fdt, -1, compatible);
	if (node < 0)
		return -1;
	p = fdt_getprop(fdt, node, "faultline,pio", &len);
	if (!p || len != 8 || fdt32_to_cpu(p[0]) > 0xffff)
		return -1;
	*port = (uint16_t)fdt32_to_cpu(p[0]);
	return 0;
}

int fdt_mmio(const struct guest *g, const char *compatible, int index, uint64_t *gpa,
	     uint64_t *size)
{
	const fdt32_t *reg;
	int node, len;

	node = fdt_node_offset_by_compatible(g->fdt, -1, compatible);
	if (node < 0)
		return -1;
	reg = fdt_getprop(g->fdt, node, "reg", &len);
	if (!reg || index < 0 || len < (index + 1) * 16)
		return -1;
	reg += index * 4;
	*gpa = (uint64_t)fdt32_to_cpu(reg[0]) << 32 | fdt32_to_cpu(reg[1]);
	*size = (uint64_t)fdt32_to_cpu(reg[2]) << 32 | fdt32_to_cpu(reg[3]);
	return 0;
}

/* First memory bank: GPA 0 up to its size (the monitor puts RAM at 0). */
static int fdt_ram_end(const void *fdt, uint64_t *end)
{
	const fdt32_t *reg;
	int node, len;

	node = fdt_path_offset(fdt, "/memory@0");
	if (node < 0)
		return -1;
	reg = fdt_getprop(fdt, node, "reg", &len);
	if (!reg || len < 16)
		return -1;
	if (fdt32_to_cpu(reg[0]) || fdt32_to_cpu(reg[1]))
		return -1;
	*end = (uint64_t)fdt32_to_cpu(reg[2]) << 32 | fdt32_to_cpu(reg[3]);
	return 0;
}

static int guest_setup(struct guest *g, const void *fdt, uint32_t ncpus)
{
	const char *cmdline;
	uint16_t serial;
	int node, len;

	g->fdt = fdt;
	g->ncpus = ncpus;
	g->exit_port = 0x501;
	if (fdt_check_header(fdt)) {
		gprintf("guest: no valid device tree at %p\n", fdt);
		return GUEST_EXIT_FDT;
	}
	if (fdt_pio(fdt, "ns16550a", &serial) == 0)
		console_init(serial);
	if (fdt_pio(fdt, "faultline,exit", &g->exit_port)) {
		gprintf("guest: device tree has no faultline,exit device\n");
		return GUEST_EXIT_FDT;
	}
	if (fdt_pio(fdt, "faultline,clone", &g->clone_port))
		g->clone_port = 0;
	if (fdt_ram_end(fdt, &g->ram_end)) {
		gprintf("guest: device tree has no usable /memory@0\n");
		return GUEST_EXIT_FDT;
	}
	g->ram_start = ALIGN_UP((uint64_t)_end, 2UL << 20);
	node = fdt_path_offset(fdt, "/chosen");
	cmdline = node < 0 ? NULL : fdt_getprop(fdt, node, "bootargs", &len);
	g->cmdline = cmdline && len > 0 && cmdline[len - 1] == '\0' ? cmdline : "";
	return 0;
}

static const struct workload *find_workload(const char *name)
{
	const struct workload *w;

	for (w = workloads; w->name; w++)
		if (!strcmp(w->name, name))
			return w;
	return NULL;
}

static void report(int status)
{
	int old = worst_status;

	while (status > old && !__atomic_compare_exchange_n(&worst_status, &old, status, 0,
							    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		;
}

void guest_main(const void *fdt, uint64_t cpu, uint64_t ncpus)
{
	struct guest *g = &the_guest;
	const struct workload *w;
	const char *name;
	int status;

	guest_percpu[cpu].self = (uint64_t)&guest_percpu[cpu];
	guest_percpu[cpu].canary = 0x2f8e1d4c6b5a3979ULL ^ (cpu << 17);
	guest_percpu[cpu].index = cpu;
	if (cpu == 0) {
		if (ncpus > GUEST_MAX_CPUS) {
			gprintf("guest: %lu vCPUs, at most %d supported\n", ncpus, GUEST_MAX_CPUS);
			guest_exit(g, GUEST_EXIT_ARGS);
		}
		status = guest_setup(g, fdt, (uint32_t)ncpus);
		if (status)
			guest_exit(g, status);
		__atomic_store_n(&guest_ready, 1, __ATOMIC_RELEASE);
	} else {
		while (!__atomic_load_n(&guest_ready, __ATOMIC_ACQUIRE))
			cpu_relax();
	}

	name = guest_arg(g, "mce");
	trap_init((uint32_t)cpu, !name || strcmp(name, "off"));
	name = guest_arg(g, "workload");
	w = find_workload(name ? name : "hello");
	if (w) {
		status = w->run(g, (uint32_t)cpu);
	} else {
		if (cpu == 0)
			gprintf("guest: unknown workload '%s'\n", name);
		status = GUEST_EXIT_ARGS;
	}
	report(status);
	__atomic_add_fetch(&cpus_done, 1, __ATOMIC_ACQ_REL);
	if (cpu != 0)
		halt_forever();
	while (__atomic_load_n(&cpus_done, __ATOMIC_ACQUIRE) < g->ncpus)
		cpu_relax();
	guest_exit(g, worst_status);
}
