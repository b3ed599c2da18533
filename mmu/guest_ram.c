#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "mmu/guest_ram.h"

int guest_ram__layout(struct guest_ram *ram, uint64_t size)
{
	uint64_t low;

	if (size == 0 || size % 4096)
		return -EINVAL;
	memset(ram, 0, sizeof(*ram));
	ram->size = size;
	low = size < GUEST_RAM_LOW_MAX ? size : GUEST_RAM_LOW_MAX;
	ram->banks[0] = (struct guest_ram_bank){0, low, 0};
	ram->nr_banks = 1;
	if (size > low) {
		ram->banks[1] = (struct guest_ram_bank){GUEST_RAM_HIGH_BASE, size - low, low};
		ram->nr_banks = 2;
	}
	return 0;
}

int guest_ram__init(struct guest_ram *ram, uint64_t size)
{
	void *p;
	int ret;

	ret = guest_ram__layout(ram, size);
	if (ret)
		return ret;
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		 -1, 0);
	if (p == MAP_FAILED)
		return -errno;
	ram->host = p;
	return 0;
}

void guest_ram__exit(struct guest_ram *ram)
{
	if (ram->host)
		munmap(ram->host, ram->size);
	ram->host = NULL;
}

void *guest_ram__ptr(const struct guest_ram *ram, uint64_t gpa, uint64_t len)
{
	unsigned i;
	uint64_t end;

	if (len == 0 || __builtin_add_overflow(gpa, len, &end))
		return NULL;
	for (i = 0; i < ram->nr_banks; i++) {
		const struct guest_ram_bank *b = &ram->banks[i];

		if (gpa >= b->gpa && end <= b->gpa + b->size)
			return ram->host + b->host_offset + (gpa - b->gpa);
	}
	return NULL;
}

uint64_t guest_ram__top(const struct guest_ram *ram)
{
	const struct guest_ram_bank *b = &ram->banks[ram->nr_banks - 1];

	return b->gpa + b->size;
}

uint64_t guest_ram__gpa(const struct guest_ram *ram, uint64_t off)
{
	unsigned i;

	for (i = 0; i < ram->nr_banks; i++) {
		const struct guest_ram_bank *b = &ram->banks[i];

		if (off >= b->host_offset && off < b->host_offset + b->size)
			return b->gpa + (off - b->host_offset);
	}
	return ~0ULL;
}

static void *guest_ram_direct_ptr(void *ctx, uint64_t gpa, uint64_t len, int *err)
{
	void *p = guest_ram__ptr(ctx, gpa, len);

	if (!p)
		*err = -EFAULT;
	return p;
}

struct guest_access guest_ram__direct(struct guest_ram *ram)
{
	return (struct guest_access){.ptr = guest_ram_direct_ptr, .ctx = ram};
}
