#include <errno.h>
#include <string.h>

#include "mmu/gpa_map.h"

static bool ranges_overlap(uint64_t a, uint64_t an, uint64_t b, uint64_t bn)
{
	return a < b + bn && b < a + an;
}

int gpa_map__add(struct gpa_map *map, const struct gpa_region *r)
{
	unsigned i, at = map->nr;

	if (!r->size || r->gpa + r->size < r->gpa)
		return -EINVAL;
	if (map->nr == GPA_MAP_MAX)
		return -ENOSPC;
	for (i = 0; i < map->nr; i++) {
		const struct gpa_region *o = &map->regions[i];

		if (ranges_overlap(r->gpa, r->size, o->gpa, o->size) ||
		    (r->host && o->host &&
		     ranges_overlap((uintptr_t)r->host, r->size, (uintptr_t)o->host, o->size)))
			return -EEXIST;
		if (at == map->nr && r->gpa < o->gpa)
			at = i;
	}
	memmove(&map->regions[at + 1], &map->regions[at], (map->nr - at) * sizeof(map->regions[0]));
	map->regions[at] = *r;
	map->nr++;
	return 0;
}

const struct gpa_region *gpa_map__find(const struct gpa_map *map, uint64_t gpa)
{
	unsigned lo = 0, hi = map->nr;

	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;
		const struct gpa_region *r = &map->regions[mid];

		if (gpa < r->gpa)
			hi = mid;
		else if (gpa - r->gpa >= r->size)
			lo = mid + 1;
		else
			return r;
	}
	return NULL;
}

const struct gpa_region *gpa_map__find_host(const struct gpa_map *map, const void *hva,
					    uint64_t *gpa)
{
	uintptr_t h = (uintptr_t)hva;
	unsigned i;

	for (i = 0; i < map->nr; i++) {
		const struct gpa_region *r = &map->regions[i];

		if (r->host && h >= (uintptr_t)r->host && h - (uintptr_t)r->host < r->size) {
			*gpa = r->gpa + (h - (uintptr_t)r->host);
			return r;
		}
	}
	return NULL;
}

const char *gpa_map__kind_name(enum gpa_kind kind)
{
	switch (kind) {
	case GPA_RAM: return "RAM";
	case GPA_ROM: return "ROM";
	case GPA_BAR: return "BAR";
	}
	return "unknown";
}
