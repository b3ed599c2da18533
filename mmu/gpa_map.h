/*
 * The guest-physical map: what lives at each guest-physical address.
 *
 * A region is a GPA range of one kind (RAM, ROM, a device BAR) with its
 * host mapping (if any), its backing and the ops that serve faults on it.
 * RAM regions are the banks of guest RAM, served by the MMU's fault engine;
 * ROM and BAR regions are added by the devices that own them. Lookups go by
 * GPA (what a vCPU or an exit reports) and by host address (what
 * userfaultfd and SIGBUS report). Regions are added while the VM is built
 * and never change while vCPUs run, so lookups take no lock. No KVM headers
 * here.
 */
#ifndef FAULTLINE_GPA_MAP_H
#define FAULTLINE_GPA_MAP_H

#include <stdbool.h>
#include <stdint.h>

#include "mmu/fault.h"

#define GPA_MAP_MAX 32

enum gpa_kind {
	GPA_RAM, /* guest RAM: lazily backed, faults served by mmu__handle_fault() */
	GPA_ROM, /* read-only memory */
	GPA_BAR, /* a device BAR: faults go to the device's nopage handler */
};

struct gpa_region {
	enum gpa_kind kind;
	const char *name;
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;	     /* guest-view host mapping; NULL when nothing is mapped */
	const char *backing; /* "zero", "file:PATH", a device's name: for messages */
	void *priv;
};

struct gpa_map {
	unsigned nr;
	struct gpa_region regions[GPA_MAP_MAX]; /* sorted by gpa, no overlaps */
};

/*
 * Add @r. Returns 0, -EINVAL (empty, or past the end of the address
 * space), -EEXIST (it overlaps a region, in GPA or in host address) or
 * -ENOSPC (the map is full).
 */
int gpa_map__add(struct gpa_map *map, const struct gpa_region *r)
	__attribute__((warn_unused_result));

/* The region holding @gpa, or NULL. */
const struct gpa_region *gpa_map__find(const struct gpa_map *map, uint64_t gpa);

/* The region whose host mapping holds @hva, or NULL; *gpa is its GPA. */
const struct gpa_region *gpa_map__find_host(const struct gpa_map *map, const void *hva,
					    uint64_t *gpa);

/* The kind's name: "RAM", "ROM", "BAR". */
const char *gpa_map__kind_name(enum gpa_kind kind);

#endif
