#include <errno.h>
#include <jansson.h>

#include "mmu/stats.h"

void mmu_stats__record(struct mmu_stats *s, int vcpu, uint64_t ns)
{
	unsigned b = ns ? 63 - (unsigned)__builtin_clzll(ns) : 0;
	uint64_t max = __atomic_load_n(&s->latency_max_ns, __ATOMIC_RELAXED);

	if (b >= MMU_STATS_BUCKETS)
		b = MMU_STATS_BUCKETS - 1;
	__atomic_add_fetch(&s->latency[b], 1, __ATOMIC_RELAXED);
	while (ns > max && !__atomic_compare_exchange_n(&s->latency_max_ns, &max, ns, 0,
							__ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	if (vcpu >= 0 && vcpu < MMU_STATS_MAX_VCPUS)
		__atomic_add_fetch(&s->vcpu_faults[vcpu], 1, __ATOMIC_RELAXED);
}

uint64_t mmu_stats__percentile(const struct mmu_stats *s, unsigned pct)
{
	uint64_t total = 0, seen = 0, want;
	unsigned b;

	for (b = 0; b < MMU_STATS_BUCKETS; b++)
		total += s->latency[b];
	if (!total)
		return 0;
	want = (total * pct + 99) / 100;
	for (b = 0; b < MMU_STATS_BUCKETS; b++) {
		seen += s->latency[b];
		if (seen >= want)
			break;
	}
	if (b >= MMU_STATS_BUCKETS - 1)
		return s->latency_max_ns;
	return (2ULL << b) < s->latency_max_ns ? 2ULL << b : s->latency_max_ns;
}

void mmu_stats__print_text(const struct mmu_stats *s, const struct mmu_pages *p, unsigned nr_vcpus,
			   FILE *out)
{
	unsigned i;

	fprintf(out, "faultline stats:\n");
#define MMU_COUNTER_TEXT(name, help)                                                               \
	fprintf(out, "  %-24s %12llu  %s\n", #name, (unsigned long long)s->name, help);
	MMU_COUNTERS(MMU_COUNTER_TEXT)
#undef MMU_COUNTER_TEXT
	fprintf(out, "  %-24s %12llu  pages of guest RAM\n", "pages_ram",
		(unsigned long long)p->ram);
	fprintf(out, "  %-24s %12llu  pages the budget allows (--mem-limit)\n", "pages_budget",
		(unsigned long long)p->budget);
	fprintf(out, "  %-24s %12llu  pages resident now\n", "pages_resident",
		(unsigned long long)p->resident);
	for (i = 0; i < nr_vcpus && i < MMU_STATS_MAX_VCPUS; i++)
		fprintf(out, "  vcpu%-20u %12llu  faults of vCPU %u\n", i,
			(unsigned long long)s->vcpu_faults[i], i);
	fprintf(out, "  fault service time (ns): p50 %llu, p90 %llu, p99 %llu, max %llu\n",
		(unsigned long long)mmu_stats__percentile(s, 50),
		(unsigned long long)mmu_stats__percentile(s, 90),
		(unsigned long long)mmu_stats__percentile(s, 99),
		(unsigned long long)s->latency_max_ns);
}

static json_t *mmu_stats_latency_json(const struct mmu_stats *s)
{
	json_t *buckets = json_array();
	unsigned b;

	for (b = 0; b < MMU_STATS_BUCKETS; b++)
		json_array_append_new(buckets, json_integer((json_int_t)s->latency[b]));
	return json_pack("{s:I,s:I,s:I,s:I,s:o}", "p50", (json_int_t)mmu_stats__percentile(s, 50),
			 "p90", (json_int_t)mmu_stats__percentile(s, 90), "p99",
			 (json_int_t)mmu_stats__percentile(s, 99), "max",
			 (json_int_t)s->latency_max_ns, "log2_buckets", buckets);
}

json_t *mmu_stats__json(const struct mmu_stats *s, const struct mmu_pages *p, unsigned nr_vcpus)
{
	json_t *root = json_object(), *counters = json_object(), *vcpus = json_array();
	unsigned i;

	if (!root || !counters || !vcpus) {
		json_decref(counters);
		json_decref(vcpus);
		json_decref(root);
		return NULL;
	}
#define MMU_COUNTER_JSON(name, help)                                                               \
	json_object_set_new(counters, #name, json_integer((json_int_t)s->name));
	MMU_COUNTERS(MMU_COUNTER_JSON)
#undef MMU_COUNTER_JSON
	for (i = 0; i < nr_vcpus && i < MMU_STATS_MAX_VCPUS; i++)
		json_array_append_new(vcpus, json_integer((json_int_t)s->vcpu_faults[i]));
	json_object_set_new(root, "counters", counters);
	json_object_set_new(root, "pages",
			    json_pack("{s:I,s:I,s:I}", "ram", (json_int_t)p->ram, "budget",
				      (json_int_t)p->budget, "resident", (json_int_t)p->resident));
	json_object_set_new(root, "vcpu_faults", vcpus);
	json_object_set_new(root, "fault_latency_ns", mmu_stats_latency_json(s));
	return root;
}

int mmu_stats__print_json(const struct mmu_stats *s, const struct mmu_pages *p, unsigned nr_vcpus,
			  FILE *out)
{
	json_t *root = mmu_stats__json(s, p, nr_vcpus);
	int ret = -ENOMEM;

	if (root && json_dumpf(root, out, JSON_COMPACT | JSON_PRESERVE_ORDER) == 0) {
		fputc('\n', out);
		ret = 0;
	}
	json_decref(root);
	return ret;
}
