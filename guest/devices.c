/*
 * Workloads on the monitor's BAR devices, found in the device tree:
 *
 * shm (vCPU 0): write=LEN [woff=OFF] fills LEN bytes of the data window
 *   from OFF with 16-byte records "shm:<11 hex digits of the record's
 *   offset>\n" and prints their CRC-32; ring=V rings the doorbell with V;
 *   read=LEN [roff=OFF] prints the CRC-32 of LEN bytes from OFF, so that a
 *   test compares them with the host file.
 * vram (every vCPU, each on the pages i with i % vCPUs == its index):
 *   passes=P (3) times, writes every word of its pages with a pattern of
 *   the page and pass, after checking the previous pass's; then checks the
 *   last. Pages migrate between the pool and system memory under it.
 */
#include <libfdt.h>

#include "guest.h"

#define SHM_MAGIC 0x0100004d48534c46UL
#define SHM_REGS  4 /* magic, size, doorbell, rings */

static char shm_record_byte(uint64_t off)
{
	static const char hex[] = "0123456789abcdef";
	uint64_t rec = off & ~15UL;
	unsigned j = off & 15;

	if (j < 4)
		return "shm:"[j];
	if (j == 15)
		return '\n';
	return hex[(rec >> (4 * (14 - j))) & 15];
}

static int shm_args(const struct guest *g, uint64_t size, uint64_t *wlen, uint64_t *woff,
		    uint64_t *rlen, uint64_t *roff)
{
	if (guest_arg_u64(g, "write", 0, wlen) || guest_arg_u64(g, "woff", 0, woff) ||
	    guest_arg_u64(g, "read", 0, rlen) || guest_arg_u64(g, "roff", 0, roff))
		return -1;
	if (*woff > size || *wlen > size - *woff || *roff > size || *rlen > size - *roff) {
		gprintf("shm: the range is outside the %lu-byte data window\n", size);
		return -1;
	}
	return 0;
}

int shm_workload(const struct guest *g, uint32_t cpu)
{
	uint64_t rbase, rsize, data, size, wlen, woff, rlen, roff, ring, i;
	volatile uint64_t *reg;
	volatile char *p;
	uint32_t crc = 0;
	char c;

	if (cpu != 0)
		return GUEST_EXIT_OK;
	if (fdt_mmio(g, "faultline,shm", 0, &rbase, &rsize) ||
	    fdt_mmio(g, "faultline,shm", 1, &data, &size) || rsize < SHM_REGS * 8) {
		gprintf("shm: no faultline,shm device in the device tree\n");
		return GUEST_EXIT_FDT;
	}
	if (shm_args(g, size, &wlen, &woff, &rlen, &roff))
		return GUEST_EXIT_ARGS;
	reg = (volatile uint64_t *)rbase;
	if (reg[0] != SHM_MAGIC || reg[1] != size) {
		gprintf("shm: unexpected registers: magic 0x%lx, size %lu\n", reg[0], reg[1]);
		return GUEST_EXIT_VERIFY;
	}
	p = (volatile char *)data;
	if (wlen) {
		for (i = 0; i < wlen; i++) {
			c = shm_record_byte(woff + i);
			p[woff + i] = c;
			crc = crc32_update(crc, &c, 1);
		}
		gprintf("shm: wrote %lu bytes at offset 0x%lx, crc32 %08x\n", wlen, woff, crc);
	}
	if (guest_arg(g, "ring")) {
		if (guest_arg_u64(g, "ring", 0, &ring))
			return GUEST_EXIT_ARGS;
		reg[2] = ring;
		gprintf("shm: rang the doorbell with %lu, %lu rings so far\n", reg[2], reg[3]);
	}
	if (rlen)
		gprintf("shm: read %lu bytes at offset 0x%lx, crc32 %08x\n", rlen, roff,
			crc32_of(p + roff, rlen));
	return GUEST_EXIT_OK;
}

static uint64_t vram_word(uint64_t page, uint64_t pass, uint64_t w)
{
	uint64_t x = (page << 20 | pass << 12 | w) * 0x9e3779b97f4a7c15ULL;

	return x ^ (x >> 31);
}

/* Check every word of @page against pass @pass, then write pass @pass + 1's (unless last). */
static int vram_page(volatile uint64_t *page, uint64_t idx, int64_t pass, int write)
{
	uint64_t w;

	for (w = 0; pass >= 0 && w < PAGE_SIZE / 8; w++)
		if (page[w] != vram_word(idx, (uint64_t)pass, w)) {
			gprintf("vram: page %lu word %lu is 0x%lx, expected 0x%lx (pass %ld)\n",
				idx, w, page[w], vram_word(idx, (uint64_t)pass, w), pass);
			return -1;
		}
	for (w = 0; write && w < PAGE_SIZE / 8; w++)
		page[w] = vram_word(idx, (uint64_t)(pass + 1), w);
	return 0;
}

int vram_workload(const struct guest *g, uint32_t cpu)
{
	uint64_t base, size, n, passes, p, i, idx, mine = 0;
	const fdt64_t *pool;
	int node, len;

	if (fdt_mmio(g, "faultline,vram", 0, &base, &size)) {
		gprintf("vram: no faultline,vram device in the device tree\n");
		return GUEST_EXIT_FDT;
	}
	if (guest_arg_u64(g, "passes", 3, &passes) || !passes)
		return GUEST_EXIT_ARGS;
	n = size / PAGE_SIZE;
	if (cpu == 0) {
		node = fdt_node_offset_by_compatible(g->fdt, -1, "faultline,vram");
		pool = fdt_getprop(g->fdt, node, "faultline,pool-size", &len);
		gprintf("vram: BAR of %lu pages at GPA 0x%lx, pool of %lu pages\n", n, base,
			pool && len == 8 ? fdt64_ld(pool) / PAGE_SIZE : 0);
	}
	/* Pass p checks pass p - 1's words and writes its own: sequential, then reversed. */
	for (p = 0; p <= passes; p++)
		for (i = 0; i < n; i++) {
			idx = p & 1 ? n - 1 - i : i;
			if (idx % g->ncpus != cpu)
				continue;
			if (vram_page((volatile uint64_t *)(base + idx * PAGE_SIZE), idx,
				      (int64_t)p - 1, p < passes))
				return GUEST_EXIT_VERIFY;
			mine += p == passes;
		}
	gprintf("vram: vCPU %u verified %lu pages after %lu passes\n", cpu, mine, passes);
	return GUEST_EXIT_OK;
}
